// Computations of several processes: each test launches a tree of processes, checkpoints it,
// kills every process, restarts the whole tree from its images in one `dmtcp restart`, and
// checks that it goes on (ids, pipes, shared memory, zombies), for two cycles.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  DMTCP, program, ROOT, Sandbox, until, type Computation, type Running,
} from "./harness";

let sandbox: Sandbox;
beforeEach(() => (sandbox = new Sandbox()));
afterEach(() => sandbox.cleanup());

const computation = () => sandbox.computation();
const launch = (c: Computation, argv: string[], stdin: "pipe" | "ignore" = "ignore") =>
  sandbox.launch(c, argv, stdin);

function images(c: Computation): string[] {
  return readdirSync(c.ckptDir).filter((name) => name.endsWith(".dmtcp"))
    .map((name) => join(c.ckptDir, name));
}

interface Timing {
  checkpointMs: number;
  restartMs: number;
}

/// Checkpoint (blocking), kill every process, restart them all; resolves once every worker
/// runs again.
async function cycle(c: Computation, workers: number): Promise<{ restarted: Running } & Timing> {
  await until(() => sandbox.status(Number(c.port)).peers === workers, {
    what: "every worker",
    timeoutMs: 60000,
  });
  const start = performance.now();
  const result = sandbox.run(["command", "-p", c.port, "--bcheckpoint"]);
  const checkpointMs = performance.now() - start;
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
  expect(images(c).length).toBe(workers);
  await sandbox.killWorkers(c.port);
  const restartStart = performance.now();
  const restarted = sandbox.spawn([DMTCP, "restart", "-p", c.port, ...images(c)]);
  await until(() => {
    const status = sandbox.status(Number(c.port));
    return status.peers === workers && status.running;
  }, { what: "the tree to run again", timeoutMs: 60000 }).catch((error: Error) => {
    throw new Error(`${error.message}; the restart said: ${restarted.stderr || "nothing"}`);
  });
  return { restarted, checkpointMs, restartMs: performance.now() - restartStart };
}

interface SocketJson {
  type: number;
  state: number;
  byteCount: number;
  messageCount: number;
}

function inspectJson(file: string): Record<string, unknown> {
  const result = sandbox.run(["inspect", "--json", file]);
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout);
}

/// Lines of `running` whose first field is a number, as numbers.
function rounds(running: Running): number[] {
  return running.lines().map((line) => Number(line.split(" ")[0])).filter((n) => !Number.isNaN(n));
}

/// Two cycles of a program printing "<round> ..." lines; each restart must go on from
/// after the checkpoint's round, contiguously, with no BAD line.
async function twoCycles(c: Computation, first: Running, workers: number): Promise<Running> {
  let running = first;
  for (let round = 0; round < 2; round++) {
    await until(() => rounds(running).length >= 3, { what: "progress" });
    const atRequest = rounds(running).at(-1)!;
    const { restarted } = await cycle(c, workers);
    await until(() => rounds(restarted).length >= 5, { what: "progress after restart" });
    const after = rounds(restarted);
    expect(after[0]!).toBeGreaterThan(atRequest);
    after.forEach((value, index) => expect(value).toBe(after[0]! + index));
    expect(restarted.stdout).not.toContain("BAD");
    expect(restarted.stderr).toBe("");
    running = restarted;
  }
  return running;
}

function fifoAt(name: string): string {
  const path = sandbox.path(name);
  expect(Bun.spawnSync(["mkfifo", path]).exitCode).toBe(0);
  return path;
}

/// Two cycles while every process waits (nothing printed yet): the same waits go on.
async function cyclesWhileWaiting(c: Computation, first: Running, workers: number) {
  let running = first;
  for (let round = 0; round < 2; round++) {
    ({ restarted: running } = await cycle(c, workers));
    expect(running.lines()).toEqual([]);
  }
  return running;
}

describe("process trees", () => {
  test("a parent and two children keep their pids and talk over pipes both ways", async () => {
    const c = await computation();
    const first = launch(c, [program("family"), "20"]);
    const last = await twoCycles(c, first, 3);
    expect(last.lines().every((line) => line.endsWith(" ok"))).toBe(true);
  });

  test("a child made by clone() without CLONE_VM joins and keeps its ids", async () => {
    const c = await computation();
    const last = await twoCycles(c, launch(c, [program("cloner"), "20"]), 2);
    expect(last.lines().every((line) => line.endsWith(" ok"))).toBe(true);
  });

  test("a program exec'd after a restart keeps the ids (its own, its parent's)", async () => {
    const c = await computation();
    const first = launch(c, ["/bin/sh", "-c", `${program("exec_ids")} 20; true`]);
    const last = await twoCycles(c, first, 2);
    expect(last.lines().every((line) => line.endsWith(" ok"))).toBe(true);
  });

  test("a shell pipeline's output stays continuous and ordered", async () => {
    const c = await computation();
    // The filter is a forked shell (no exec), reading a line at a time.
    const filter = "while read n; do echo $((n * 2)); done";
    const pipeline = `${program("counter")} 20 | ${filter} | cat`;
    let running = launch(c, ["/bin/sh", "-c", pipeline]);
    await until(() => sandbox.status(Number(c.port)).peers === 4, { what: "sh and its three" });
    for (let round = 0; round < 2; round++) {
      await until(() => rounds(running).length >= 3);
      const atRequest = rounds(running).at(-1)!;
      const { restarted } = await cycle(c, 4);
      await until(() => rounds(restarted).length >= 5, { what: "the pipeline to go on" });
      const after = rounds(restarted);
      expect(after[0]!).toBeGreaterThan(atRequest);
      after.forEach((value, index) => expect(value).toBe(after[0]! + 2 * index));
      running = restarted;
    }
  });

  test("a multiprocessing pool of 4 workers finishes with the right result", async () => {
    const c = await computation();
    const script = [
      "import multiprocessing as mp, time",
      "def work(x):",
      "    time.sleep(0.005)",
      "    return x * x",
      "if __name__ == '__main__':",
      "    with mp.Pool(4) as pool:",
      "        total = 0",
      "        for i in range(120):",
      "            total += sum(pool.map(work, range(i * 10, i * 10 + 10)))",
      "            print(i, total, flush=True)",
      "            time.sleep(0.02)",
      "    print('done', total, flush=True)",
    ].join("\n");
    let running = launch(c, ["/usr/bin/python3", "-c", script]);
    for (let round = 0; round < 2; round++) {
      await until(() => rounds(running).length >= 3, { what: "the pool to work" });
      ({ restarted: running } = await cycle(c, 5));
    }
    await until(() => running.stdout.includes("done"), {
      what: "the pool to finish",
      timeoutMs: 60000,
    });
    const expected = Array.from({ length: 1200 }, (_, x) => x * x).reduce((a, b) => a + b, 0);
    expect(running.lines().at(-1)).toBe(`done ${expected}`);
    for (const line of running.lines().slice(0, -1)) {
      const [i, total] = line.split(" ").map(Number);
      const sum = Array.from({ length: (i! + 1) * 10 }, (_, x) => x * x).reduce((a, b) => a + b, 0);
      expect(total).toBe(sum);
    }
  }, 180000);

  test("an unreaped child stays a zombie with its exit status", async () => {
    const c = await computation();
    const first = launch(c, [program("zombie"), "20"]);
    const last = await twoCycles(c, first, 1);
    const pids = new Set(last.lines().map((line) => line.split(" ")[2]));
    expect(pids.size).toBe(1);
  });

  test("children add to one anonymous shared counter after restart", async () => {
    const c = await computation();
    const first = launch(c, [program("shared_counter"), "20"]);
    const last = await twoCycles(c, first, 3);
    await until(() => rounds(last).length >= 10);
    const totals = last.lines().map((line) => Number(line.split(" ")[1]));
    expect(totals.at(-1)!).toBeGreaterThan(totals[0]!);
  });

  test("children sharing a counter in a MAP_SHARED file mapping keep sharing it", async () => {
    const c = await computation();
    const file = join(c.ckptDir, "..", "counter.shared");
    const last = await twoCycles(c, launch(c, [program("shared_counter"), "20", file]), 3);
    await until(() => rounds(last).length >= 10);
    const totals = last.lines().map((line) => Number(line.split(" ")[1]));
    expect(totals.at(-1)!).toBeGreaterThan(totals[0]!);
  });

  test("images left by a process that exited before the last checkpoint are left out", async () => {
    const c = await computation();
    const list = () => sandbox.run(["command", "-p", c.port, "--list"]).stdout;
    let running = launch(c, ["/bin/sh", "-c", `sleep 1000 & ${program("counter")} 20`]);
    await until(() => sandbox.status(Number(c.port)).peers === 3, { what: "sh, sleep, counter" });
    await until(() => rounds(running).length >= 3, { what: "progress" });
    expect(sandbox.run(["command", "-p", c.port, "--bcheckpoint"]).code).toBe(0);
    const sleepPid = Number(/sleep\[\d+:(\d+)\]/.exec(list())![1]);
    process.kill(sleepPid, "SIGKILL");
    await until(() => sandbox.status(Number(c.port)).peers === 2, { what: "sleep to leave" });
    const atRequest = rounds(running).at(-1)!;
    expect(sandbox.run(["command", "-p", c.port, "--bcheckpoint"]).code).toBe(0);
    await sandbox.killWorkers(c.port);
    const all = images(c);
    expect(all.length).toBe(3);
    // Without the newest checkpoint's sh, nothing is guessed.
    const partial = all.filter((path) => !path.includes("ckpt_sh_"));
    const refused = sandbox.run(["restart", "-p", c.port, ...partial]);
    expect(refused.code).toBe(99);
    expect(refused.stderr).toMatch(/come from different checkpoints/);
    running = sandbox.spawn([DMTCP, "restart", "-p", c.port, ...all]);
    await until(() => rounds(running).length >= 3, { what: "the counter to go on" });
    expect(rounds(running)[0]!).toBeGreaterThan(atRequest);
    expect(running.stderr).toMatch(/left out 1 image\(s\) of earlier checkpoints/);
    expect(sandbox.status(Number(c.port)).peers).toBe(2);
  });

  test("a pseudo-terminal between parent and child, the child's controlling one", async () => {
    const c = await computation();
    const last = await twoCycles(c, launch(c, [program("pty_pair"), "20"]), 2);
    expect(last.lines().every((line) => line.endsWith(" ok"))).toBe(true);
  });

  test("Python's pty module relays a child's output without a gap", async () => {
    const c = await computation();
    const relay = join(ROOT, "test/integration/pty_relay.py");
    const first = launch(c, ["/usr/bin/python3", relay, program("counter"), "20"]);
    await twoCycles(c, first, 2);
  });

  test("the restart script rebuilds the whole tree", async () => {
    const c = await computation();
    const first = launch(c, [program("family"), "20"]);
    await until(() => sandbox.status(Number(c.port)).peers === 3, { what: "every worker" });
    await until(() => rounds(first).length >= 3, { what: "progress" });
    const result = sandbox.run(["command", "-p", c.port, "--bcheckpoint"]);
    expect(result.code).toBe(0);
    const atRequest = rounds(first).at(-1)!;
    await sandbox.killWorkers(c.port);
    const restarted = sandbox.spawn(["bash", join(c.ckptDir, "dmtcp_restart_script.sh")]);
    await until(() => {
      const status = sandbox.status(Number(c.port));
      return status.peers === 3 && status.running;
    }, { what: "the tree to run again", timeoutMs: 60000 });
    await until(() => rounds(restarted).length >= 5, { what: "progress after restart" });
    const after = rounds(restarted);
    expect(after[0]!).toBeGreaterThan(atRequest);
    after.forEach((value, index) => expect(value).toBe(after[0]! + index));
    expect(restarted.lines().every((line) => line.endsWith(" ok"))).toBe(true);
  });

  test(
    "a program started with dmtcp nocheckpoint from inside a computation stays out",
    async () => {
      const c = await computation();
      const script = `${DMTCP} nocheckpoint ${program("counter")} 20 & wait`;
      const running = launch(c, ["/bin/sh", "-c", script]);
      await until(() => rounds(running).length >= 5, { what: "the program to count" });
      await until(() => sandbox.status(Number(c.port)).peers === 1, { what: "only sh to remain" });
      const list = sandbox.run(["command", "-p", c.port, "--list"]).stdout;
      expect(list).toContain("sh[");
      expect(list).not.toContain("counter");
      expect(list).not.toContain("dmtcp");
    },
  );

  test("socketpairs and an accepted Unix connection come back with their bytes", async () => {
    const c = await computation();
    const path = sandbox.path("listening.sock");
    let running = launch(c, [program("socket_family"), path, "20"]);
    for (let round = 0; round < 2; round++) {
      await until(() => rounds(running).length >= 3, { what: "progress" });
      const atRequest = rounds(running).at(-1)!;
      const { restarted } = await cycle(c, 2);
      // Both processes stored bytes queued for them, on stream and message sockets.
      const queued = images(c).map((file) => inspectJson(file).sockets as SocketJson[]);
      for (const sockets of queued) {
        expect(sockets.some((socket) => socket.type === 1 && socket.byteCount > 0)).toBe(true);
        expect(sockets.some((socket) => socket.messageCount > 0)).toBe(true);
      }
      expect(queued.flat().filter((socket) => socket.state === 2).length).toBe(1);
      await until(() => rounds(restarted).length >= 12, { what: "progress after restart" });
      const after = rounds(restarted);
      expect(after[0]!).toBeGreaterThan(atRequest);
      after.forEach((value, index) => expect(value).toBe(after[0]! + index));
      expect(restarted.stdout).not.toContain("BAD");
      expect(restarted.stderr).toBe("");
      running = restarted;
    }
  });

  test("a descriptor shared across fork keeps one offset: no line is overwritten", async () => {
    const c = await computation();
    const file = sandbox.path("shared.txt");
    const first = launch(c, [program("shared_offset"), file, "20"]);
    const last = await twoCycles(c, first, 2);
    await until(() => rounds(last).length >= 10, { what: "more lines" });
    const described = images(c).map((image) => inspectJson(image).fileDescriptions as unknown[]);
    for (const records of described) expect(records.length).toBe(1);
    const lines = readFileSync(file, "utf8").split("\n").filter((line) => line !== "");
    expect(lines.length).toBeGreaterThan(20);
    lines.forEach((line, index) => expect(line).toBe(`${index} ${index % 2 === 0 ? "p" : "c"}`));
  });

  test("named FIFOs keep the bytes buffered in them", async () => {
    const c = await computation();
    const first = launch(c, [program("fifo_family"), sandbox.dir, "20"]);
    let running = first;
    for (let round = 0; round < 2; round++) {
      await until(() => rounds(running).length >= 3, { what: "progress" });
      const { restarted } = await cycle(c, 2);
      const pipes = images(c).flatMap((file) => inspectJson(file).pipes as { byteCount: number }[]);
      // The reads are timed by the program: at least one FIFO holds bytes at any moment.
      expect(pipes.some((pipe) => pipe.byteCount > 0)).toBe(true);
      running = restarted;
    }
    await until(() => rounds(running).length >= 5, { what: "progress after restart" });
    const after = rounds(running);
    after.forEach((value, index) => expect(value).toBe(after[0]! + index));
    expect(running.stdout).not.toContain("BAD");
    expect(running.stderr).toBe("");
  });

  test("children started by vfork, posix_spawn and system() restart with the parent", async () => {
    const c = await computation();
    let running = launch(c, [program("spawner"), "20"]);
    const labels = ["parent", "vfork", "spawn", "system"];
    const byLabel = (r: Running, label: string) => r.lines().filter((line) =>
      line.endsWith(` ${label}`)).map((line) => Number(line.split(" ")[0]));
    for (let round = 0; round < 2; round++) {
      await until(() => labels.every((label) => byLabel(running, label).length >= 3));
      const before = Object.fromEntries(labels.map((label) =>
        [label, byLabel(running, label).at(-1)!]));
      const { restarted } = await cycle(c, 4);
      await until(() => labels.every((label) => byLabel(restarted, label).length >= 5),
        { what: "every child to go on" });
      for (const label of labels) {
        const after = byLabel(restarted, label);
        expect(after[0]!).toBeGreaterThan(before[label]!);
        after.forEach((value, index) => expect(value).toBe(after[0]! + index));
      }
      expect(restarted.stdout).not.toContain("BAD");
      expect(restarted.stderr).toBe("");
      running = restarted;
    }
  });

  test("a parent blocked in system() gets its shell's exit status after two restarts", async () => {
    const c = await computation();
    const fifo = fifoAt("go");
    const first = launch(c, [program("waiter"), "system", fifo]);
    // Both cycles come while the parent waits in system() for the same shell.
    const restarted = await cyclesWhileWaiting(c, first, 2);
    for (const round of [0, 1]) {
      writeFileSync(fifo, "go\n");
      await until(() => restarted.lines().length > round, { what: `round ${round} to end` });
    }
    expect(restarted.lines()).toEqual(["0 system 7", "1 system 7"]);
    expect(restarted.stderr).toBe("");
  });

  test("waitpid and a raw waitid for a child go on across two restarts", async () => {
    const c = await computation();
    const fifos = { waitpid: fifoAt("waitpid"), raw: fifoAt("raw") };
    launch(c, [program("waiter"), "waitpid", fifos.waitpid]);
    const first = launch(c, [program("waiter"), "raw", fifos.raw]);
    const restarted = await cyclesWhileWaiting(c, first, 4);
    for (const fifo of [fifos.waitpid, fifos.raw]) writeFileSync(fifo, "go\n");
    await until(() => restarted.lines().length >= 2, { what: "both rounds to end" });
    expect(restarted.lines().sort()).toEqual(["0 raw 9", "0 waitpid 9"]);
    expect(restarted.stderr).toBe("");
  });

  test("threads keep their first ids for gettid, tgkill, tkill and /proc/self/task", async () => {
    const c = await computation();
    const first = launch(c, [program("thread_ids"), "20"]);
    await twoCycles(c, first, 1);
  });

  test("/proc/<pid> paths of a process and of its child reach them after restart", async () => {
    const c = await computation();
    const first = launch(c, [program("proc_paths"), "20"]);
    await twoCycles(c, first, 2);
  });

  test("a tree of 50 processes restarts whole, twice", async () => {
    const c = await computation();
    let running = launch(c, [program("tree"), "50", "50"]);
    const timings: Timing[] = [];
    for (let round = 0; round < 2; round++) {
      await until(() => rounds(running).length >= 3, { what: "the tree to run", timeoutMs: 30000 });
      const result = await cycle(c, 50);
      timings.push(result);
      await until(() => rounds(result.restarted).length >= 3, { what: "the tree to go on" });
      expect(result.restarted.stdout).not.toContain("BAD");
      running = result.restarted;
    }
    for (const { checkpointMs, restartMs } of timings) {
      process.stderr.write(`50 processes: checkpoint ${checkpointMs.toFixed(0)} ms, ` +
        `restart ${restartMs.toFixed(0)} ms\n`);
    }
  }, 180000);
});
