// `bun run bench --threads`: checkpoint and restart of a 64-thread program against a
// single-threaded one of the same memory size (test/programs/bench_threads.c, threads that
// mostly wait). The runtime reports its own step times with DMTCP_TIMINGS=1 (suspending every
// thread, writing the image, the whole checkpoint; at restart, from its entry to the release);
// wall times include the `dmtcp command` or `dmtcp restart` process around them.
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

const checkpointRuns = Number(process.env.BENCH_CHECKPOINTS ?? 7);
const restartRuns = Number(process.env.BENCH_RESTARTS ?? 5);

interface Sample {
  suspendMs: number;
  writeMs: number;
  checkpointMs: number;
  checkpointWallMs: number;
  restartResumeMs: number;
  restartWallMs: number;
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function timings(stderr: string, key: string): number[] {
  return [...stderr.matchAll(new RegExp(`${key} (\\d+)`, "g"))]
    .map((match) => Number(match[1]) / 1000);
}

async function collect(stream: ReadableStream<Uint8Array>, into: { text: string }) {
  const decoder = new TextDecoder();
  for await (const chunk of stream) into.text += decoder.decode(chunk, { stream: true });
}

async function poll(condition: () => boolean, what: string, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

/// Measures one program configuration under a private coordinator.
export async function measure(
  dmtcp: string, program: string, work: string, env: Record<string, string>, threads: number,
  mib: number,
): Promise<Sample> {
  const dir = join(work, `threads-${threads}`);
  mkdirSync(dir, { recursive: true });
  const portFile = join(dir, "port");
  const runEnv = { ...env, DMTCP_TIMINGS: "1" };
  const coordinator = Bun.spawn(
    [dmtcp, "coordinator", "-q", "-p", "0", "--port-file", portFile, "-c", dir],
    { env, stdout: "ignore", stderr: "ignore" },
  );
  await poll(() => existsSync(portFile), "the coordinator");
  const port = readFileSync(portFile, "utf8").trim();
  const command = (...args: string[]) =>
    Bun.spawnSync([dmtcp, "command", "-p", port, ...args], { env, stdout: "pipe", stderr: "pipe" });
  const running = () =>
    JSON.parse(command("--json", "--status").stdout.toString()).running === true;
  const output = { text: "" };
  const errors = { text: "" };
  let child: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn(
    [dmtcp, "launch", "-p", port, "-c", dir, program, String(threads), String(mib)],
    { env: runEnv, stdout: "pipe", stderr: "pipe" });
  void collect(child.stdout, output);
  void collect(child.stderr, errors);
  try {
    await poll(() => output.text.includes("alive 3"), "the program to start");
    const walls: number[] = [];
    for (let index = 0; index < checkpointRuns; index++) {
      await poll(running, "the resume");
      const start = Bun.nanoseconds();
      const result = command("--bcheckpoint");
      walls.push((Bun.nanoseconds() - start) / 1e6);
      if (result.exitCode !== 0) throw new Error(`checkpoint failed: ${result.stderr}`);
    }
    await poll(() => timings(errors.text, "total_us").length === checkpointRuns, "the timings");
    const image = readdirSync(dir).find((name) => name.endsWith(".dmtcp"))!;
    const restartWalls: number[] = [];
    const restartErrors = { text: "" };
    for (let index = 0; index < restartRuns; index++) {
      child.kill("SIGKILL");
      await child.exited;
      await poll(
        () =>
          !running() &&
          JSON.parse(command("--json", "--status").stdout.toString()).num_peers === 0,
        "the worker to leave",
      );
      const start = Bun.nanoseconds();
      child = Bun.spawn([dmtcp, "restart", "-p", port, join(dir, image)],
        { env: runEnv, stdout: "pipe", stderr: "pipe" });
      void collect(child.stderr, restartErrors);
      await poll(running, "the restart");
      restartWalls.push((Bun.nanoseconds() - start) / 1e6);
    }
    await poll(
      () => timings(restartErrors.text, "resumed_us").length === restartRuns,
      "restart timings",
    );
    return {
      suspendMs: median(timings(errors.text, "suspend_us")),
      writeMs: median(timings(errors.text, "write_us")),
      checkpointMs: median(timings(errors.text, "total_us")),
      checkpointWallMs: median(walls),
      restartResumeMs: median(timings(restartErrors.text, "resumed_us")),
      restartWallMs: median(restartWalls),
    };
  } finally {
    child.kill("SIGKILL");
    command("--quit");
    coordinator.kill();
    await coordinator.exited;
  }
}

/// The comparison the issue asks for: 64 threads against 1, same memory; per-thread cost.
export async function threadResults(
  dmtcp: string, program: string, work: string, env: Record<string, string>,
): Promise<Record<string, number>> {
  const mib = Number(process.env.BENCH_MIB ?? 64);
  const single = await measure(dmtcp, program, work, env, 0, mib);
  const many = await measure(dmtcp, program, work, env, 64, mib);
  const results: Record<string, number> = {};
  for (const [key, value] of Object.entries(single)) results[`threads_1_${key}`] = value;
  for (const [key, value] of Object.entries(many)) results[`threads_64_${key}`] = value;
  results.per_thread_suspend_ms = (many.suspendMs - single.suspendMs) / 64;
  results.per_thread_checkpoint_ms = (many.checkpointMs - single.checkpointMs) / 64;
  results.per_thread_restart_ms = (many.restartWallMs - single.restartWallMs) / 64;
  return results;
}
