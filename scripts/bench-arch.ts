// `bun run scripts/bench-arch.ts`: checkpoint and restart times of the same small program
// (test/programs/counter.c, and memory_verify holding 64 MiB) on each architecture: x86_64 and
// i386 natively under dist/dmtcp-linux-x64, aarch64 and armv7 under dist/dmtcp-linux-arm64
// through qemu-user. Medians of BENCH_RUNS (5) cycles, each: checkpoint (blocking, as
// `dmtcp command --bcheckpoint` sees it), kill, `dmtcp restart` until the coordinator counts
// the worker again (restart) and until the program prints again (resumed). Beside them: the
// client's own cost (`dmtcp command -s`, part of the checkpoint figure), mtcp_restart alone
// (no coordinator, until the counter prints again), and the image size. --json for scripts.
import { mkdtempSync, readdirSync, rmSync, existsSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

type Arch = "x86_64" | "i386" | "aarch64" | "armv7";
const root = join(import.meta.dir, "..");
const host = join(root, "dist", "dmtcp-linux-x64");
const runs = Number(process.env.BENCH_RUNS ?? 5);
const archs = (process.env.BENCH_ARCHS ?? "x86_64,i386,aarch64,armv7").split(",") as Arch[];
const work = mkdtempSync(join(tmpdir(), "dmtcp-bench-arch-"));
const env = { PATH: process.env.PATH!, HOME: work, XDG_RUNTIME_DIR: join(work, "run"),
  XDG_CACHE_HOME: join(work, "cache"), DMTCP_TMPDIR: work };

const executable = (arch: Arch) =>
  join(
    root,
    "dist",
    arch === "x86_64" || arch === "i386" ? "dmtcp-linux-x64" : "dmtcp-linux-arm64",
  );
const program = (arch: Arch, name: string) => join(root, "zig-out", arch, "test", name);
const now = () => Bun.nanoseconds() / 1e6;
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/// A process whose output lines are counted as they arrive.
class Watched {
  lines = 0;
  constructor(readonly child: Subprocess<"ignore", "pipe", "ignore">) {
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        this.lines += decoder.decode(chunk).split("\n").length - 1;
      }
    })();
  }
  static spawn(argv: string[]): Watched {
    return new Watched(Bun.spawn(argv, { env, cwd: work, stdout: "pipe", stderr: "ignore" }));
  }
  async until(lines: number, timeoutMs = 120000): Promise<void> {
    const deadline = now() + timeoutMs;
    while (this.lines < lines) {
      if (now() > deadline) throw new Error(`no output after ${timeoutMs} ms`);
      await Bun.sleep(1);
    }
  }
  async kill(): Promise<void> {
    this.child.kill("SIGKILL");
    await this.child.exited;
  }
}

function command(port: number, args: string[]): number {
  const start = now();
  const result = Bun.spawnSync([host, "command", "-p", String(port), ...args], { env });
  if (result.exitCode !== 0) throw new Error(`dmtcp command ${args.join(" ")} failed`);
  return now() - start;
}

async function peers(port: number, count: number): Promise<void> {
  for (let tries = 0; tries < 10000; tries++) {
    const reply = Bun.spawnSync([host, "command", "-p", String(port), "--json", "-s"], { env });
    if (JSON.parse(reply.stdout.toString()).num_peers === count) return;
    await Bun.sleep(5);
  }
  throw new Error(`the coordinator never had ${count} workers`);
}

interface Row { arch: Arch; program: string; checkpoint_ms: number; client_ms: number;
  restart_ms: number; resumed_ms: number; mtcp_restart_ms?: number; image_mib: number }

async function measure(arch: Arch, argv: string[], name: string, ready: number): Promise<Row> {
  const dir = join(work, `${arch}-${name}`);
  const portFile = join(dir, "port");
  Bun.spawnSync(["mkdir", "-p", dir]);
  const coordinator = Bun.spawn([executable(arch), "coordinator", "-q", "-p", "0", "--port-file",
    portFile, "-c", dir], { env, stdout: "ignore", stderr: "ignore" });
  while (!existsSync(portFile) || readFileSync(portFile, "utf8") === "") await Bun.sleep(5);
  const port = Number(readFileSync(portFile, "utf8"));
  const samples = { checkpoint: [] as number[], restart: [] as number[], resumed: [] as number[],
    mtcp: [] as number[] };
  let running = Watched.spawn([executable(arch), "launch", "-p", String(port), "-c", dir, ...argv]);
  await running.until(ready);
  const client = median(Array.from({ length: 5 }, () => command(port, ["-s"])));
  let image = "";
  for (let run = 0; run < runs; run++) {
    samples.checkpoint.push(command(port, ["--bcheckpoint"]));
    await running.kill();
    await peers(port, 0);
    image = join(dir, readdirSync(dir).find((file) => file.endsWith(".dmtcp"))!);
    const start = now();
    running = Watched.spawn([executable(arch), "restart", "-p", String(port), image]);
    await peers(port, 1);
    samples.restart.push(now() - start);
    await running.until(1);
    samples.resumed.push(now() - start);
  }
  await running.kill();
  coordinator.kill();
  await coordinator.exited;
  if (name === "counter") samples.mtcp = await alone(arch, image);
  return { arch, program: name, checkpoint_ms: median(samples.checkpoint), client_ms: client,
    restart_ms: median(samples.restart), resumed_ms: median(samples.resumed),
    mtcp_restart_ms: samples.mtcp.length > 0 ? median(samples.mtcp) : undefined,
    image_mib: statSync(image).size / 1048576 };
}

/// mtcp_restart run directly on the image: the restore alone, with no CLI and no coordinator.
async function alone(arch: Arch, image: string): Promise<number[]> {
  const restartProgram = join(
    env.XDG_CACHE_HOME,
    "dmtcp",
    readdirSync(join(env.XDG_CACHE_HOME, "dmtcp"))
      .find((hash) => existsSync(join(env.XDG_CACHE_HOME, "dmtcp", hash, arch)))!,
    arch,
    "mtcp_restart",
  );
  const samples: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = now();
    const restored = Watched.spawn([restartProgram, image]);
    await restored.until(1);
    samples.push(now() - start);
    await restored.kill();
  }
  return samples;
}

const rows: Row[] = [];
for (const arch of archs) {
  rows.push(await measure(arch, [program(arch, "counter"), "10"], "counter", 3));
  rows.push(
    await measure(arch, [program(arch, "memory_verify"), "64", "50"], "memory_verify 64", 2),
  );
}
rmSync(work, { recursive: true, force: true });

if (process.argv.includes("--json")) {
  process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
} else {
  const header = ["arch", "program", "checkpoint ms", "(client ms)", "restart ms", "resumed ms",
    "mtcp_restart ms", "image MiB"];
  process.stdout.write(`${header.map((h, i) => h.padEnd(i === 1 ? 18 : 16)).join("")}\n`);
  for (const row of rows) {
    const cells = [row.arch, row.program, row.checkpoint_ms.toFixed(1), row.client_ms.toFixed(1),
      row.restart_ms.toFixed(1), row.resumed_ms.toFixed(1), row.mtcp_restart_ms?.toFixed(1) ?? "-",
      row.image_mib.toFixed(2)];
    process.stdout.write(`${cells.map((c, i) => c.padEnd(i === 1 ? 18 : 16)).join("")}\n`);
  }
}
