// Mixed 32/64-bit pairs against same-class pairs: a parent that forks and execs its partner
// (test/programs/mixed_pair.c), checkpointed together (`--bcheckpoint`, as the user sees it)
// and restarted by one `dmtcp restart` until both run again. Prints medians of CYCLES cycles.
// Usage: bun run scripts/bench-mixed.ts [cycles]   (after ./scripts/build)
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const dmtcp = join(root, "dist", "dmtcp-linux-x64");
const dir = mkdtempSync(join(tmpdir(), "dmtcp-bench-mixed-"));
const env = {
  ...process.env,
  XDG_RUNTIME_DIR: join(dir, "run"),
  DMTCP_TMPDIR: dir,
} as Record<string, string>;
const cycles = Number(process.argv[2] ?? 7);
const PAIRS = [["x86_64", "x86_64"], ["i386", "i386"], ["x86_64", "i386"], ["i386", "x86_64"]];

function run(args: string[]): string {
  return Bun.spawnSync([dmtcp, ...args], { env, stdout: "pipe", stderr: "pipe" }).stdout.toString();
}

async function until(condition: () => boolean, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await Bun.sleep(5);
  }
}

function status(port: string): { peers: number; running: boolean } {
  const reply = JSON.parse(run(["command", "-p", port, "--json", "--status"]));
  return { peers: reply.num_peers ?? -1, running: reply.running ?? false };
}

function killWorkers(port: string): void {
  for (const match of run(["command", "-p", port, "--list"]).matchAll(/\[\d+:(\d+)\]@/g)) {
    process.kill(Number(match[1]), "SIGKILL");
  }
}

async function pair(
  parent: string,
  child: string,
): Promise<{ checkpoint: number[]; restart: number[] }> {
  const ckpt = join(dir, `ckpt-${parent}-${child}`);
  mkdirSync(ckpt, { recursive: true });
  const portFile = join(dir, `port-${parent}-${child}`);
  const coordinator = Bun.spawn(
    [dmtcp, "coordinator", "-p", "0", "--port-file", portFile, "-c", ckpt],
    { env, stderr: "ignore" },
  );
  await until(() => Bun.file(portFile).size > 0);
  const port = await Bun.file(portFile).text();
  const program = (arch: string) => join(root, "zig-out", arch, "test", "mixed_pair");
  let running = Bun.spawn(
    [dmtcp, "launch", "-p", port, "-c", ckpt, program(parent), program(child), "20"],
    { env, stdout: "ignore" },
  );
  const checkpoint: number[] = [];
  const restart: number[] = [];
  for (let cycle = 0; cycle < cycles; cycle++) {
    await until(() => { const s = status(port); return s.peers === 2 && s.running; });
    const start = performance.now();
    run(["command", "-p", port, "--bcheckpoint"]);
    checkpoint.push(performance.now() - start);
    killWorkers(port);
    await until(() => status(port).peers === 0);
    const images = readdirSync(ckpt)
      .filter((name) => name.endsWith(".dmtcp"))
      .map((name) => join(ckpt, name));
    const restartStart = performance.now();
    running = Bun.spawn([dmtcp, "restart", "-p", port, ...images], { env, stdout: "ignore" });
    await until(() => { const s = status(port); return s.peers === 2 && s.running; });
    restart.push(performance.now() - restartStart);
  }
  run(["command", "-p", port, "--quit"]);
  await running.exited;
  coordinator.kill();
  return { checkpoint, restart };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

try {
  console.log(`| parent | child | checkpoint ms | restart ms |  (medians of ${cycles})`);
  for (const [parent, child] of PAIRS) {
    const { checkpoint, restart } = await pair(parent!, child!);
    console.log(
      `| ${parent} | ${child} | ${median(checkpoint).toFixed(1)} | ` +
        `${median(restart).toFixed(1)} |`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
