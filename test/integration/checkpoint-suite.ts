// Checkpoint and restart of real single-threaded programs, at least two full cycles each: the
// program is checkpointed, killed, restarted from its image, and must continue from where it
// was (not from its start), then again from the restarted process. The same suite runs for
// every architecture (one file each, so the emulated ones can run in parallel): x86_64 and
// i386 natively under the x64 executable, aarch64 and armv7 under the arm64 one through
// qemu-user. `dmtcp command` always comes from the host's executable: it is only a client of
// the coordinator, and an emulated one would make every poll slower.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import {
  DMTCP as DMTCP_X64, DMTCP_ARM64, dmtcpFor, emulated, findImage, numbers, program, ROOT, Sandbox,
  until, type Arch, type Running,
} from "./harness";

let sandbox: Sandbox;
/// The executable that carries the architecture under test, and how much slower it runs.
let DMTCP: string;
let slow = 1;

interface Computation {
  port: string;
  ckptDir: string;
}

async function computation(): Promise<Computation> {
  const ckptDir = sandbox.path("ckpt");
  mkdirSync(ckptDir, { recursive: true });
  const { port } = await sandbox.coordinator(["-c", ckptDir], DMTCP, 10000 * slow);
  return { port: String(port), ckptDir };
}

/// Waits as `until` does, with the deadline stretched for an emulated architecture.
function waitFor<T>(condition: () => T | Promise<T>, what = "condition", timeoutMs = 10000) {
  return until(condition, { timeoutMs: timeoutMs * slow, what });
}

function launch(c: Computation, argv: string[], stdin: "pipe" | "ignore" = "ignore"): Running {
  return sandbox.spawn([DMTCP, "launch", "-p", c.port, "-c", c.ckptDir, ...argv], { stdin });
}

function blockingCheckpoint(c: Computation): void {
  const result = sandbox.run(["command", "-p", c.port, "--bcheckpoint"]);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
}

/// One cycle: checkpoint, kill, restart. Returns the restarted process and the number the
/// program had printed before the checkpoint was asked for and when it was killed.
async function cycle(
  c: Computation,
  running: Running,
  name: string,
  progress: (running: Running) => number,
): Promise<{ restarted: Running; atRequest: number; atKill: number }> {
  await waitFor(() => progress(running) >= 3, `${name} to make progress`);
  const atRequest = progress(running);
  blockingCheckpoint(c);
  const image = findImage(c.ckptDir, name);
  expect(image).toBeDefined();
  expect(statSync(image!).mode & 0o777).toBe(0o600);
  running.child.kill("SIGKILL");
  await running.exited();
  const atKill = progress(running);
  await waitFor(() => sandbox.status(Number(c.port)).peers === 0, "the worker to leave");
  const restarted = sandbox.spawn([DMTCP, "restart", "-p", c.port, image!]);
  await waitFor(() => progress(restarted) >= 2, `${name} to run again after restart`);
  return { restarted, atRequest, atKill };
}

function firstNumber(running: Running): number {
  return numbers(running)[0]!;
}

/// Two cycles of a program printing increasing numbers one by one.
async function twoCyclesOfCounting(c: Computation, first: Running, name: string) {
  let running = first;
  for (let round = 0; round < 2; round++) {
    const { restarted, atRequest, atKill } =
      await cycle(c, running, name, (r) => numbers(r).at(-1) ?? 0);
    const resumedAt = firstNumber(restarted);
    expect(resumedAt).toBeGreaterThan(atRequest);
    expect(resumedAt).toBeLessThanOrEqual(atKill + 1);
    const after = numbers(restarted);
    after.forEach((value, index) => expect(value).toBe(resumedAt + index));
    running = restarted;
  }
  return running;
}

function mix(value: bigint, step: bigint): bigint {
  const mask = (1n << 64n) - 1n;
  value ^= (step + 0x9e3779b97f4a7c15n + ((value << 6n) & mask) + (value >> 2n)) & mask;
  value = (value * 0xff51afd7ed558ccdn) & mask;
  return value ^ (value >> 33n);
}

function checkChain(lines: string[]): void {
  for (const line of lines) {
    const [step, value] = line.split(" ");
    let expected = 0n;
    for (let i = 1n; i <= BigInt(step!); i++) expected = mix(expected, i);
    expect(value).toBe(expected.toString(16).padStart(16, "0"));
  }
}

export function checkpointSuite(arch: Arch): void {
  /// Per test: two cycles of launch, checkpoint, kill and restart, each under emulation.
  const timeoutMs = 120000 * (emulated(arch) ? 6 : 1);
  const cat = arch === "x86_64" ? { argv: ["/bin/cat"], name: "cat" }
    : { argv: [program("echo_lines", arch)], name: "echo_lines" };

  describe(`checkpoint and restart (${arch})`, () => {
    beforeEach(() => {
      sandbox = new Sandbox();
      DMTCP = dmtcpFor(arch);
      slow = emulated(arch) ? 6 : 1;
    });
    afterEach(() => sandbox.cleanup());

    test("a C program printing a hash chain continues it over two cycles", async () => {
      const c = await computation();
      const last = await twoCyclesOfCounting(c, launch(c, [program("chain", arch), "10"]), "chain");
      await waitFor(() => last.lines().length > 5);
      checkChain(last.lines().slice(0, 50));
      const list = sandbox.run(["command", "-p", c.port, "--list"]).stdout;
      expect(list).toContain("chain[40000:");
      expect(sandbox.status(Number(c.port))).toEqual({ peers: 1, running: true });
    }, timeoutMs);

    test("512 MiB of random data is intact after each restart", async () => {
      const c = await computation();
      let running = launch(c, [program("memory_verify", arch), "512", "50"]);
      await waitFor(() => running.stdout.includes("ready"), "the fill", 60000);
      const checksum = running.lines()[0]!.split(" ")[1];
      for (let round = 0; round < 2; round++) {
        const rounds = (r: Running) => r.lines().filter((line) => line.startsWith("ok")).length;
        ({ restarted: running } = await cycle(c, running, "memory_verify", rounds));
        await waitFor(() => rounds(running) >= 2, "two rounds", 60000);
        expect(running.stdout).not.toContain("CORRUPT");
        expect(running.lines().every((line) => line.endsWith(checksum!))).toBe(true);
      }
    }, timeoutMs);

    // The host's python3 is an x86_64 program.
    if (arch === "x86_64") {
      test("python3 with its state in the heap continues over two cycles", async () => {
        const c = await computation();
        const script = join(ROOT, "test", "scripts", "heap_state.py");
        await twoCyclesOfCounting(c, launch(c, ["/usr/bin/python3", script, "0.01"]), "python3");
      }, timeoutMs);
    }

    test("a file appended to and re-read through one descriptor keeps its offset", async () => {
      const c = await computation();
      const file = sandbox.path("appended.txt");
      const last = await twoCyclesOfCounting(
        c,
        launch(c, [program("file_append", arch), file, "10"]),
        "file_append",
      );
      await waitFor(() => last.lines().length > 5);
      expect(last.stdout).not.toContain("BAD");
    }, timeoutMs);

    test("a private file mapping keeps its modified pages and its file's pages", async () => {
      const c = await computation();
      const file = sandbox.path("mapped.bin");
      const last = await twoCyclesOfCounting(
        c,
        launch(c, [program("private_mapping", arch), file, "10"]),
        "private_mapping",
      );
      await waitFor(() => last.lines().length > 5);
      expect(last.stdout).not.toContain("BAD");
      for (const line of last.lines()) {
        const [round, counter] = line.split(" ");
        expect(counter).toBe(round);
      }
    }, timeoutMs);

    test("a program reading and writing pipes gets the restarting process's pipes", async () => {
      const c = await computation();
      let running = launch(c, cat.argv, "pipe");
      await waitFor(() => sandbox.status(Number(c.port)).peers === 1);
      for (let round = 0; round < 2; round++) {
        const stdin = running.child.stdin as import("bun").FileSink;
        stdin.write(`before ${round}\n`);
        stdin.flush();
        await waitFor(() => running.stdout.includes(`before ${round}`), "cat to echo");
        blockingCheckpoint(c);
        running.child.kill("SIGKILL");
        await running.exited();
        await waitFor(() => sandbox.status(Number(c.port)).peers === 0);
        const image = findImage(c.ckptDir, cat.name)!;
        running = sandbox.spawn([DMTCP, "restart", "-p", c.port, image], { stdin: "pipe" });
        await waitFor(() => sandbox.status(Number(c.port)).running, "cat to restart");
        const next = running.child.stdin as import("bun").FileSink;
        next.write(`after ${round}\n`);
        next.flush();
        await waitFor(() => running.stdout.includes(`after ${round}`), "restarted cat to echo");
      }
    }, timeoutMs);

    test("restarts from another directory, with moved images, twice from one image", async () => {
      const c = await computation();
      const first = launch(c, [program("counter", arch), "10"]);
      await waitFor(() => numbers(first).length >= 3);
      blockingCheckpoint(c);
      first.child.kill("SIGKILL");
      await first.exited();
      await waitFor(() => sandbox.status(Number(c.port)).peers === 0);
      const moved = sandbox.path("elsewhere");
      mkdirSync(moved);
      const image = join(moved, "image.dmtcp");
      renameSync(findImage(c.ckptDir, "counter")!, image);
      const starts: number[] = [];
      for (let round = 0; round < 2; round++) {
        const restarted = sandbox.spawn([DMTCP, "restart", "-p", c.port, image], {});
        await waitFor(() => numbers(restarted).length >= 2);
        starts.push(firstNumber(restarted));
        restarted.child.kill("SIGKILL");
        await restarted.exited();
        await waitFor(() => sandbox.status(Number(c.port)).peers === 0);
      }
      expect(starts[1]).toBe(starts[0]!);
      expect(existsSync(image)).toBe(true);
      const fromDirectory = sandbox.spawn([DMTCP, "restart", "-p", c.port, "--restartdir", moved]);
      await waitFor(() => numbers(fromDirectory).length >= 2, "restart --restartdir");
      expect(firstNumber(fromDirectory)).toBe(starts[0]!);
    }, timeoutMs);

    test("the clocks keep working through vDSO trampolines, as on another kernel", async () => {
      const c = await computation();
      let running = launch(c, [program("clock", arch), "10"]);
      for (let round = 0; round < 2; round++) {
        await waitFor(() => numbers(running).length >= 3);
        blockingCheckpoint(c);
        running.child.kill("SIGKILL");
        await running.exited();
        await waitFor(() => sandbox.status(Number(c.port)).peers === 0);
        const image = findImage(c.ckptDir, "clock")!;
        running = sandbox.spawn([DMTCP, "restart", "-p", c.port, image], {
          env: { DMTCP_VDSO_TRAMPOLINES: "1" },
        });
        await waitFor(() => numbers(running).length >= 5, "the clock after restart");
        expect(running.stdout).not.toContain("BAD");
        const realtime = Number(running.lines().at(-1)!.split(" ")[1]);
        expect(Math.abs(realtime - Date.now())).toBeLessThan(2000 * slow);
      }
    }, timeoutMs);

    test("the other executable refuses the image, naming the one for its arch", async () => {
      const c = await computation();
      const first = launch(c, [program("counter", arch), "10"]);
      await waitFor(() => numbers(first).length >= 3);
      blockingCheckpoint(c);
      first.child.kill("SIGKILL");
      await first.exited();
      const image = findImage(c.ckptDir, "counter")!;
      const other = DMTCP === DMTCP_X64 ? DMTCP_ARM64 : DMTCP_X64;
      const refused = Bun.spawnSync([other, "restart", "-p", c.port, image], {
        env: sandbox.env, stdout: "pipe", stderr: "pipe",
      });
      expect(refused.exitCode).toBe(99);
      const stderr = refused.stderr.toString();
      expect(stderr).toContain(`an image of a ${arch} process`);
      expect(stderr).toContain(`Restart it with ${basename(DMTCP)}`);
      const inspected = sandbox.run(["inspect", image]).stdout;
      expect(inspected).toContain(`${arch} (${arch === "i386" || arch === "armv7" ? 32 : 64}-bit)`);
      expect(inspected).toContain(`restarts with ${basename(DMTCP)}`);
    }, timeoutMs);

    test("the restart script written after a checkpoint restarts the computation", async () => {
      const c = await computation();
      const first = launch(c, [program("counter", arch), "10"]);
      await waitFor(() => numbers(first).length >= 3);
      blockingCheckpoint(c);
      const script = join(c.ckptDir, "dmtcp_restart_script.sh");
      expect(existsSync(script)).toBe(true);
      first.child.kill("SIGKILL");
      await first.exited();
      const atKill = numbers(first).at(-1)!;
      await waitFor(() => sandbox.status(Number(c.port)).peers === 0);
      const restarted = sandbox.spawn(["bash", script]);
      await waitFor(() => numbers(restarted).length >= 2, "the script's restart");
      expect(firstNumber(restarted)).toBeLessThanOrEqual(atKill + 1);
      expect(firstNumber(restarted)).toBeGreaterThan(1);
    }, timeoutMs);
  });
}
