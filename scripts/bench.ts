// `bun run bench`: start-up costs of the executable, measured against the bare program in the
// same run, then checkpoint and restart costs beside raw disk and memory speed
// (scripts/bench-checkpoint.ts). Prints a table; --json for scripts; --cold also times a build
// from empty caches; --startup-only skips the checkpoint part; --threads instead compares
// checkpoint and restart of 64 threads with 1 (bench_threads.ts).
import { mkdtempSync, rmSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkpointFigures } from "./bench-checkpoint";

const root = join(import.meta.dir, "..");
const dmtcp = join(root, "dist", "dmtcp-linux-x64");
const runs = Number(process.env.BENCH_RUNS ?? 30);
const work = mkdtempSync(join(tmpdir(), "dmtcp-bench-"));
const env = { PATH: process.env.PATH!, HOME: work, XDG_RUNTIME_DIR: join(work, "run"),
  XDG_CACHE_HOME: join(work, "cache"), DMTCP_TMPDIR: work };

function time(argv: string[], extraEnv: Record<string, string> = {}): number {
  const start = Bun.nanoseconds();
  const result = Bun.spawnSync(argv, {
    env: { ...env, ...extraEnv },
    stdout: "ignore",
    stderr: "pipe",
  });
  const elapsed = (Bun.nanoseconds() - start) / 1e6;
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr.toString()}`);
  return elapsed;
}

/// Median of `runs` timings, after one warm-up.
function median(argv: string[], extraEnv: Record<string, string> = {}): number {
  time(argv, extraEnv);
  const samples = Array.from({ length: runs }, () => time(argv, extraEnv)).sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

async function withCoordinator<T>(body: (port: number) => T): Promise<T> {
  const portFile = join(work, "port");
  const coordinator = Bun.spawn([dmtcp, "coordinator", "-q", "-p", "0", "--port-file", portFile], {
    env, stdout: "ignore", stderr: "ignore",
  });
  try {
    while (!existsSync(portFile)) await Bun.sleep(5);
    return body(Number(readFileSync(portFile, "utf8")));
  } finally {
    coordinator.kill();
    await coordinator.exited;
  }
}

const results: Record<string, number> = {};
if (process.argv.includes("--threads")) {
  const { threadResults } = await import("./bench_threads.ts");
  const program = join(root, "zig-out", "x86_64", "test", "bench_threads");
  Object.assign(results, await threadResults(dmtcp, program, work, env));
} else {
  await startup(results);
}

async function startup(results: Record<string, number>): Promise<void> {
const truePath = Bun.which("true")!;
results.true_ms = median([truePath]);
results.version_ms = median([dmtcp, "--version"]);
const extractCache = join(work, "extract");
results.first_run_extraction_ms = time([dmtcp, "launch", "-p", "0", truePath], {
  XDG_CACHE_HOME: extractCache,
}) - median([dmtcp, "launch", "-p", "0", truePath], { XDG_CACHE_HOME: extractCache });
await withCoordinator((port) => {
  results.launch_true_running_coordinator_ms =
    median([dmtcp, "launch", "-j", "-p", String(port), truePath]);
});
results.launch_true_on_demand_coordinator_ms = median([dmtcp, "launch", "-p", "0", truePath]);
results.launch_overhead_running_ms = results.launch_true_running_coordinator_ms - results.true_ms;
results.launch_overhead_on_demand_ms =
  results.launch_true_on_demand_coordinator_ms - results.true_ms;

const buildStart = Bun.nanoseconds();
Bun.spawnSync([join(root, "scripts", "build")], { stdout: "ignore", stderr: "ignore" });
results.no_change_build_s = (Bun.nanoseconds() - buildStart) / 1e9;
if (process.argv.includes("--cold")) {
  const cache = join(work, "zig-cache");
  const start = Bun.nanoseconds();
  Bun.spawnSync([join(root, ".tools/bin/zig"), "build", "--cache-dir", cache,
    "--global-cache-dir", cache, "--prefix", join(work, "out")], { cwd: root });
  results.cold_native_build_s = (Bun.nanoseconds() - start) / 1e9;
}
}
rmSync(work, { recursive: true, force: true });
if (!process.argv.includes("--startup-only")) Object.assign(results, await checkpointFigures());

if (process.argv.includes("--json")) {
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} else {
  for (const [name, value] of Object.entries(results)) {
    const digits = name.startsWith("per_thread") ? 3 : name.endsWith("_ms") ? 1 : 3;
    process.stdout.write(`${name.padEnd(40)} ${value.toFixed(digits)}\n`);
  }
}
