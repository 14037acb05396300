// Checkpoint and restart of real single-threaded programs, at least two full cycles each: the
// program is checkpointed, killed, restarted from its image, and must continue from where it
// was (not from its start), then again from the restarted process.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { DMTCP, findImage, numbers, program, ROOT, Sandbox, until, type Running } from "./harness";

let sandbox: Sandbox;
beforeEach(() => (sandbox = new Sandbox()));
afterEach(() => sandbox.cleanup());

interface Computation {
  port: string;
  ckptDir: string;
}

async function computation(): Promise<Computation> {
  const ckptDir = sandbox.path("ckpt");
  mkdirSync(ckptDir, { recursive: true });
  const { port } = await sandbox.coordinator(["-c", ckptDir]);
  return { port: String(port), ckptDir };
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
  await until(() => progress(running) >= 3, { what: `${name} to make progress` });
  const atRequest = progress(running);
  blockingCheckpoint(c);
  const image = findImage(c.ckptDir, name);
  expect(image).toBeDefined();
  expect(statSync(image!).mode & 0o777).toBe(0o600);
  running.child.kill("SIGKILL");
  await running.exited();
  const atKill = progress(running);
  await until(() => sandbox.status(Number(c.port)).peers === 0, { what: "the worker to leave" });
  const restarted = sandbox.spawn([DMTCP, "restart", "-p", c.port, image!]);
  await until(() => progress(restarted) >= 2, { what: `${name} to run again after restart` });
  return { restarted, atRequest, atKill };
}

function firstNumber(running: Running): number {
  return numbers(running)[0]!;
}

/// Two cycles of a program printing increasing numbers one by one.
async function twoCyclesOfCounting(c: Computation, first: Running, name: string) {
  let running = first;
  for (let round = 0; round < 2; round++) {
    const { restarted, atRequest, atKill } = await cycle(c, running, name, (r) => numbers(r).at(-1) ?? 0);
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

describe("checkpoint and restart", () => {
  test("a C program printing a hash chain continues it over two cycles", async () => {
    const c = await computation();
    const last = await twoCyclesOfCounting(c, launch(c, [program("chain"), "10"]), "chain");
    await until(() => last.lines().length > 5);
    checkChain(last.lines().slice(0, 50));
    const list = sandbox.run(["command", "-p", c.port, "--list"]).stdout;
    expect(list).toContain("chain[40000:");
    expect(sandbox.status(Number(c.port))).toEqual({ peers: 1, running: true });
  });

  test("512 MiB of random data is intact after each restart", async () => {
    const c = await computation();
    let running = launch(c, [program("memory_verify"), "512", "50"]);
    await until(() => running.stdout.includes("ready"), { timeoutMs: 60000, what: "the fill" });
    const checksum = running.lines()[0]!.split(" ")[1];
    for (let round = 0; round < 2; round++) {
      const rounds = (r: Running) => r.lines().filter((line) => line.startsWith("ok")).length;
      ({ restarted: running } = await cycle(c, running, "memory_verify", rounds));
      await until(() => rounds(running) >= 2, { timeoutMs: 60000 });
      expect(running.stdout).not.toContain("CORRUPT");
      expect(running.lines().every((line) => line.endsWith(checksum!))).toBe(true);
    }
  });

  test("python3 with its state in the heap continues over two cycles", async () => {
    const c = await computation();
    const script = join(ROOT, "test", "scripts", "heap_state.py");
    await twoCyclesOfCounting(c, launch(c, ["/usr/bin/python3", script, "0.01"]), "python3");
  });

  test("a file appended to and re-read through one descriptor keeps its offset", async () => {
    const c = await computation();
    const file = sandbox.path("appended.txt");
    const last = await twoCyclesOfCounting(c, launch(c, [program("file_append"), file, "10"]), "file_append");
    await until(() => last.lines().length > 5);
    expect(last.stdout).not.toContain("BAD");
  });

  test("a private file mapping keeps its modified pages and its file's pages", async () => {
    const c = await computation();
    const file = sandbox.path("mapped.bin");
    const last = await twoCyclesOfCounting(c, launch(c, [program("private_mapping"), file, "10"]), "private_mapping");
    await until(() => last.lines().length > 5);
    expect(last.stdout).not.toContain("BAD");
    for (const line of last.lines()) {
      const [round, counter] = line.split(" ");
      expect(counter).toBe(round);
    }
  });

  test("the clocks keep working through vDSO trampolines, as on another kernel", async () => {
    const c = await computation();
    let running = launch(c, [program("clock"), "10"]);
    for (let round = 0; round < 2; round++) {
      await until(() => numbers(running).length >= 3);
      blockingCheckpoint(c);
      running.child.kill("SIGKILL");
      await running.exited();
      await until(() => sandbox.status(Number(c.port)).peers === 0);
      running = sandbox.spawn([DMTCP, "restart", "-p", c.port, findImage(c.ckptDir, "clock")!], {
        env: { DMTCP_VDSO_TRAMPOLINES: "1" },
      });
      await until(() => numbers(running).length >= 5, { what: "the clock after restart" });
      expect(running.stdout).not.toContain("BAD");
      const realtime = Number(running.lines().at(-1)!.split(" ")[1]);
      expect(Math.abs(realtime - Date.now())).toBeLessThan(2000);
    }
  });

  test("a program reading and writing pipes gets the restarting process's pipes", async () => {
    const c = await computation();
    let running = launch(c, ["/bin/cat"], "pipe");
    await until(() => sandbox.status(Number(c.port)).peers === 1);
    for (let round = 0; round < 2; round++) {
      const stdin = running.child.stdin as import("bun").FileSink;
      stdin.write(`before ${round}\n`);
      stdin.flush();
      await until(() => running.stdout.includes(`before ${round}`), { what: "cat to echo" });
      blockingCheckpoint(c);
      running.child.kill("SIGKILL");
      await running.exited();
      await until(() => sandbox.status(Number(c.port)).peers === 0);
      const image = findImage(c.ckptDir, "cat")!;
      running = sandbox.spawn([DMTCP, "restart", "-p", c.port, image], { stdin: "pipe" });
      await until(() => sandbox.status(Number(c.port)).running, { what: "cat to restart" });
      const next = running.child.stdin as import("bun").FileSink;
      next.write(`after ${round}\n`);
      next.flush();
      await until(() => running.stdout.includes(`after ${round}`), { what: "restarted cat to echo" });
    }
  });

  test("restart works from another directory, with moved images, twice from one image", async () => {
    const c = await computation();
    const first = launch(c, [program("counter"), "10"]);
    await until(() => numbers(first).length >= 3);
    blockingCheckpoint(c);
    first.child.kill("SIGKILL");
    await first.exited();
    await until(() => sandbox.status(Number(c.port)).peers === 0);
    const moved = sandbox.path("elsewhere");
    mkdirSync(moved);
    const image = join(moved, "image.dmtcp");
    renameSync(findImage(c.ckptDir, "counter")!, image);
    const starts: number[] = [];
    for (let round = 0; round < 2; round++) {
      const restarted = sandbox.spawn([DMTCP, "restart", "-p", c.port, image], {});
      await until(() => numbers(restarted).length >= 2);
      starts.push(firstNumber(restarted));
      restarted.child.kill("SIGKILL");
      await restarted.exited();
      await until(() => sandbox.status(Number(c.port)).peers === 0);
    }
    expect(starts[1]).toBe(starts[0]!);
    expect(existsSync(image)).toBe(true);
    const fromDirectory = sandbox.spawn([DMTCP, "restart", "-p", c.port, "--restartdir", moved]);
    await until(() => numbers(fromDirectory).length >= 2, { what: "restart --restartdir" });
    expect(firstNumber(fromDirectory)).toBe(starts[0]!);
  });

  test("the restart script written after a checkpoint restarts the computation", async () => {
    const c = await computation();
    const first = launch(c, [program("counter"), "10"]);
    await until(() => numbers(first).length >= 3);
    blockingCheckpoint(c);
    const script = join(c.ckptDir, "dmtcp_restart_script.sh");
    expect(existsSync(script)).toBe(true);
    first.child.kill("SIGKILL");
    await first.exited();
    const atKill = numbers(first).at(-1)!;
    await until(() => sandbox.status(Number(c.port)).peers === 0);
    const restarted = sandbox.spawn(["bash", script]);
    await until(() => numbers(restarted).length >= 2, { what: "the script's restart" });
    expect(firstNumber(restarted)).toBeLessThanOrEqual(atKill + 1);
    expect(firstNumber(restarted)).toBeGreaterThan(1);
  });
});
