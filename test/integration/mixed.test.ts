// Mixed 32/64-bit computations: a parent of one word size forks and execs a child of the other
// (test/programs/mixed_pair.c, built for both), the two talk over a pipe each way; both are
// checkpointed together, killed, and restarted by one `dmtcp restart` (each image restored by
// the mtcp_restart of its own word size), for two cycles. ARM runs under qemu-user through the
// arm64 executable, with deadlines stretched as in checkpoint-suite.ts; `dmtcp command` is
// always the host's executable (it is only a client of the coordinator).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { dmtcpFor, emulated, program, Sandbox, until, type Arch, type Running } from "./harness";

let sandbox: Sandbox;
beforeEach(() => (sandbox = new Sandbox()));
afterEach(() => sandbox.cleanup());

interface Computation {
  port: string;
  ckptDir: string;
  dmtcp: string;
  slow: number;
}

async function computation(parent: Arch): Promise<Computation> {
  const ckptDir = sandbox.path("ckpt");
  mkdirSync(ckptDir, { recursive: true });
  const dmtcp = dmtcpFor(parent);
  const slow = emulated(parent) ? 6 : 1;
  const { port } = await sandbox.coordinator(["-c", ckptDir], dmtcp, 10000 * slow);
  return { port: String(port), ckptDir, dmtcp, slow };
}

function waitFor<T>(c: Computation, condition: () => T | Promise<T>, what: string) {
  return until(condition, { timeoutMs: 10000 * c.slow, what });
}

/// Real pids of the workers, from `--list` ("name[virtual:real]@host").
function workerPids(c: Computation): number[] {
  const list = sandbox.run(["command", "-p", c.port, "--list"]).stdout;
  return [...list.matchAll(/\[\d+:(\d+)\]@/g)].map((match) => Number(match[1]));
}

function images(c: Computation): string[] {
  return readdirSync(c.ckptDir).filter((name) => name.endsWith(".dmtcp"))
    .map((name) => join(c.ckptDir, name));
}

/// "<round> ok <parent bits> <child bits>" lines, as rounds.
function rounds(running: Running): number[] {
  return running.lines().map((line) => Number(line.split(" ")[0])).filter((n) => !Number.isNaN(n));
}

/// Checkpoint both (blocking), kill both, restart both from one `dmtcp restart`.
interface Cycle {
  restarted: Running;
  checkpointMs: number;
  restartMs: number;
}

async function cycle(c: Computation): Promise<Cycle> {
  await waitFor(c, () => sandbox.status(Number(c.port)).peers === 2, "both workers");
  const start = performance.now();
  const result = sandbox.run(["command", "-p", c.port, "--bcheckpoint"]);
  const checkpointMs = performance.now() - start;
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
  expect(images(c).length).toBe(2);
  for (const pid of workerPids(c)) process.kill(pid, "SIGKILL");
  await waitFor(c, () => sandbox.status(Number(c.port)).peers === 0, "both workers to leave");
  const restartStart = performance.now();
  const restarted = sandbox.spawn([c.dmtcp, "restart", "-p", c.port, ...images(c)]);
  await waitFor(c, () => {
    const status = sandbox.status(Number(c.port));
    return status.peers === 2 && status.running;
  }, "both to run again");
  return { restarted, checkpointMs, restartMs: performance.now() - restartStart };
}

async function mixedPair(parent: Arch, child: Arch): Promise<void> {
  const c = await computation(parent);
  const bits = (arch: Arch) => (arch === "x86_64" || arch === "aarch64" ? 64 : 32);
  const expected = ` ok ${bits(parent)} ${bits(child)}`;
  let running = sandbox.spawn([c.dmtcp, "launch", "-p", c.port, "-c", c.ckptDir,
    program("mixed_pair", parent), program("mixed_pair", child), "20"]);
  for (let round = 0; round < 2; round++) {
    await waitFor(c, () => rounds(running).length >= 3, "the pair to talk");
    const atRequest = rounds(running).at(-1)!;
    const { restarted, checkpointMs, restartMs } = await cycle(c);
    await waitFor(c, () => rounds(restarted).length >= 5, "the pair to talk after restart");
    const after = rounds(restarted);
    expect(after[0]!).toBeGreaterThan(atRequest);
    after.forEach((value, index) => expect(value).toBe(after[0]! + index));
    expect(restarted.lines().every((line) => line.endsWith(expected))).toBe(true);
    expect(restarted.stderr).toBe("");
    process.stderr.write(`${parent} parent, ${child} child: checkpoint ` +
      `${checkpointMs.toFixed(0)} ms, restart ${restartMs.toFixed(0)} ms\n`);
    running = restarted;
  }
  expect(running.stderr).not.toContain("ERROR: ld.so");
}

describe("mixed 32/64-bit computations", () => {
  test("a 64-bit parent and its exec'd 32-bit child restart together", async () => {
    await mixedPair("x86_64", "i386");
  });

  test("a 32-bit parent and its exec'd 64-bit child restart together", async () => {
    await mixedPair("i386", "x86_64");
  });

  test("an aarch64 parent and its exec'd armv7 child restart together (qemu-user)", async () => {
    await mixedPair("aarch64", "armv7");
  }, 240000);
});
