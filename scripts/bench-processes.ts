// Process trees: checkpoint and restart time against the number of processes (1, 10, 50), and
// the cost of the pid wrappers and of fork under the runtime beside the same program bare.
// Usage: bun run scripts/bench-processes.ts   (after ./scripts/build)
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const dmtcp = join(root, "dist", "dmtcp-linux-x64");
const programs = join(root, "zig-out", "x86_64", "test");
const dir = mkdtempSync(join(tmpdir(), "dmtcp-bench-processes-"));
const env = {
  ...process.env,
  XDG_RUNTIME_DIR: join(dir, "run"),
  DMTCP_TMPDIR: dir,
} as Record<string, string>;

function run(args: string[]): string {
  const result = Bun.spawnSync([dmtcp, ...args], { env, stdout: "pipe", stderr: "pipe" });
  return result.stdout.toString();
}

async function until(condition: () => boolean, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await Bun.sleep(10);
  }
}

function status(port: string): { peers: number; running: boolean } {
  const reply = JSON.parse(run(["command", "-p", port, "--json", "--status"]));
  return { peers: reply.num_peers ?? -1, running: reply.running ?? false };
}

async function tree(count: number): Promise<{ checkpointMs: number; restartMs: number }> {
  const ckpt = join(dir, `ckpt-${count}`);
  mkdirSync(ckpt, { recursive: true });
  const portFile = join(dir, `port-${count}`);
  const coordinator = Bun.spawn(
    [dmtcp, "coordinator", "-p", "0", "--port-file", portFile, "-c", ckpt],
    { env, stderr: "ignore" },
  );
  await until(() => Bun.file(portFile).size > 0);
  const port = await Bun.file(portFile).text();
  const launched = Bun.spawn(
    [dmtcp, "launch", "-p", port, "-c", ckpt, join(programs, "tree"), String(count), "100"],
    { env, stdout: "ignore" },
  );
  await until(() => status(port).peers === count);
  const start = performance.now();
  run(["command", "-p", port, "--bcheckpoint"]);
  const checkpointMs = performance.now() - start;
  for (const match of run(["command", "-p", port, "--list"]).matchAll(/\[\d+:(\d+)\]@/g)) {
    process.kill(Number(match[1]), "SIGKILL");
  }
  await until(() => status(port).peers === 0);
  const images = readdirSync(ckpt)
    .filter((name) => name.endsWith(".dmtcp"))
    .map((name) => join(ckpt, name));
  const restartStart = performance.now();
  const restarted = Bun.spawn([dmtcp, "restart", "-p", port, ...images], { env, stdout: "ignore" });
  await until(() => { const s = status(port); return s.peers === count && s.running; });
  const restartMs = performance.now() - restartStart;
  run(["command", "-p", port, "--quit"]);
  await restarted.exited;
  await launched.exited;
  coordinator.kill();
  return { checkpointMs, restartMs };
}

function parse(text: string): Record<string, number> {
  return Object.fromEntries(text.trim().split("\n").map((line) => {
    const [name, value] = line.split(" ");
    return [name!, Number(value)];
  }));
}

async function startCoordinator(name: string) {
  const ckpt = join(dir, `ckpt-${name}`);
  mkdirSync(ckpt, { recursive: true });
  const portFile = join(dir, `port-${name}`);
  const coordinator = Bun.spawn(
    [dmtcp, "coordinator", "-p", "0", "--port-file", portFile, "-c", ckpt],
    { env, stderr: "ignore" },
  );
  await until(() => Bun.file(portFile).size > 0);
  return { ckpt, port: await Bun.file(portFile).text(), coordinator };
}

/// What a shell script pays: sh running /bin/true `count` times (fork + exec + wait each),
/// in ns per program, less the time of the same sh running it once.
function shellSpawns(prefix: string[], count = 500): number {
  const loop = (n: number) => `i=0; while [ $i -lt ${n} ]; do /bin/true; i=$((i+1)); done`;
  const time = (n: number) => {
    const start = performance.now();
    Bun.spawnSync([...prefix, "/bin/sh", "-c", loop(n)], { env, stdout: "ignore" });
    return performance.now() - start;
  };
  return ((time(count) - time(1)) * 1e6) / (count - 1);
}

/// bench_pids under the runtime: as launched, or (with a delay) once checkpointed, killed and
/// restarted, when every wrapper translates.
async function managedBench(name: string, restarted: boolean): Promise<Record<string, number>> {
  const bench = join(programs, "bench_pids");
  const { ckpt, port, coordinator } = await startCoordinator(name);
  const argv = restarted ? [bench, "1000000", "200", "3000"] : [bench];
  let managed = Bun.spawn([dmtcp, "launch", "-p", port, "-c", ckpt, ...argv], {
    env,
    stdout: "pipe",
  });
  if (restarted) {
    await until(() => status(port).peers === 1);
    run(["command", "-p", port, "--bcheckpoint"]);
    managed.kill("SIGKILL");
    await until(() => status(port).peers === 0);
    const images = readdirSync(ckpt).filter((file) => file.endsWith(".dmtcp"))
      .map((file) => join(ckpt, file));
    managed = Bun.spawn([dmtcp, "restart", "-p", port, ...images], { env, stdout: "pipe" });
  }
  const result = parse(await new Response(managed.stdout).text());
  run(["command", "-p", port, "--quit"]);
  coordinator.kill();
  return result;
}

async function wrappers(): Promise<void> {
  const bare = parse(Bun.spawnSync([join(programs, "bench_pids")], { stdout: "pipe" })
    .stdout.toString());
  const under = await managedBench("launched", false);
  const restarted = await managedBench("restarted", true);
  const cell = (value: number) => `${value.toFixed(1).padStart(9)} ns`;
  for (const name of Object.keys(bare)) {
    console.log(`${name.padEnd(11)} bare ${cell(bare[name]!)}  ` +
      `dmtcp ${cell(under[name]!)} x${(under[name]! / bare[name]!).toFixed(2)}  ` +
      `restarted ${cell(restarted[name]!)} x${(restarted[name]! / bare[name]!).toFixed(2)}`);
  }
  const shell = await startCoordinator("shell");
  const shellBare = shellSpawns([]);
  const shellUnder = shellSpawns([dmtcp, "launch", "-p", shell.port]);
  run(["command", "-p", shell.port, "--quit"]);
  shell.coordinator.kill();
  console.log(`${"sh_spawn".padEnd(11)} bare ${cell(shellBare)}  ` +
    `dmtcp ${cell(shellUnder)} x${(shellUnder / shellBare).toFixed(2)}`);
}

try {
  for (const count of process.argv.includes("--wrappers") ? [] : [1, 10, 50]) {
    const { checkpointMs, restartMs } = await tree(count);
    console.log(`${String(count).padStart(3)} processes: ` +
      `checkpoint ${checkpointMs.toFixed(0)} ms, restart ${restartMs.toFixed(0)} ms`);
  }
  await wrappers();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
