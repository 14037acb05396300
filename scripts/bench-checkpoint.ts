// Checkpoint and restart costs, each beside the raw limits measured in the same run: writing
// and reading 1 GiB on the checkpoint directory's file system, and a 1 GiB memory copy.
// Part of `bun run bench`; run alone with `bun run scripts/bench-checkpoint.ts [--json]`.
import { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync,
  existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const dmtcp = join(root, "dist", "dmtcp-linux-x64");
const programs = join(root, "zig-out", "x86_64", "test");
const GIB = 1 << 30;

export interface Figures { [name: string]: number }

function seconds(start: number): number {
  return (Bun.nanoseconds() - start) / 1e9;
}

/// Raw limits: 1 GiB written with fsync, read back, and copied in memory.
function rawLimits(directory: string): Figures {
  const chunk = new Uint8Array(64 << 20);
  crypto.getRandomValues(chunk.subarray(0, 65536));
  for (let offset = 65536; offset < chunk.length; offset *= 2) chunk.copyWithin(offset, 0, offset);
  const path = join(directory, "raw.bin");
  let start = Bun.nanoseconds();
  const fd = openSync(path, "w");
  for (let done = 0; done < GIB; done += chunk.length) writeSync(fd, chunk);
  fsyncSync(fd);
  closeSync(fd);
  const write_s = seconds(start);
  start = Bun.nanoseconds();
  const reader = openSync(path, "r");
  for (let done = 0; done < GIB; done += chunk.length) {
    readSync(reader, chunk, 0, chunk.length, done);
  }
  closeSync(reader);
  const read_s = seconds(start);
  // A restart must also get the memory it reads into: the same read into fresh pages.
  start = Bun.nanoseconds();
  const fresh = new Uint8Array(GIB);
  const again = openSync(path, "r");
  for (let done = 0; done < GIB; done += chunk.length) {
    readSync(again, fresh.subarray(done, done + chunk.length), 0, chunk.length, done);
  }
  closeSync(again);
  const read_fresh_s = seconds(start);
  rmSync(path);
  const source = new Uint8Array(GIB);
  const target = new Uint8Array(GIB);
  source.fill(7);
  target.set(source); // The first copy pays the page faults; the second is the copy itself.
  start = Bun.nanoseconds();
  target.set(source);
  const memcpy_s = seconds(start);
  return {
    raw_write_1gib_s: write_s, raw_read_1gib_s: read_s, raw_read_fresh_1gib_s: read_fresh_s,
    memcpy_1gib_s: memcpy_s,
  };
}

async function waitFor(condition: () => boolean, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("benchmark timed out");
    await Bun.sleep(1);
  }
}

class Output {
  text = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    void (async () => {
      for await (const chunk of stream) this.text += new TextDecoder().decode(chunk);
    })();
  }
}

/// Launch, wait for `ready`, checkpoint (timed), kill, restart (timed to the first new line).
async function measure(
  name: string,
  argv: string[],
  work: string,
  port: string,
  env: Record<string, string>,
) {
  const ckptDir = join(work, name);
  Bun.spawnSync(["mkdir", "-p", ckptDir]);
  const launched = Bun.spawn([dmtcp, "launch", "-p", port, "-c", ckptDir, ...argv], {
    env, stdout: "pipe", stderr: "inherit",
  });
  const output = new Output(launched.stdout as ReadableStream<Uint8Array>);
  await waitFor(() => output.text.includes("ready"));
  let start = Bun.nanoseconds();
  const result = Bun.spawnSync([dmtcp, "command", "-p", port, "--bcheckpoint"], { env });
  const checkpoint_s = seconds(start);
  if (result.exitCode !== 0) throw new Error(`${name}: checkpoint failed: ${result.stderr}`);
  launched.kill("SIGKILL");
  await launched.exited;
  const image = readdirSync(ckptDir).find((file) => file.endsWith(".dmtcp"))!;
  const image_mib = statSync(join(ckptDir, image)).size / (1 << 20);
  await waitFor(() => Bun.spawnSync([dmtcp, "command", "-p", port, "-s"], { env })
    .stdout.toString().includes("NUM_PEERS=0"));
  start = Bun.nanoseconds();
  const restarted = Bun.spawn([dmtcp, "restart", "-p", port, join(ckptDir, image)], {
    env, stdout: "pipe", stderr: "inherit",
  });
  const after = new Output(restarted.stdout as ReadableStream<Uint8Array>);
  await waitFor(() => after.text.length > 0);
  const restart_s = seconds(start);
  restarted.kill("SIGKILL");
  await restarted.exited;
  return { [`${name}_checkpoint_s`]: checkpoint_s, [`${name}_restart_s`]: restart_s,
    [`${name}_image_mib`]: image_mib };
}

export async function checkpointFigures(): Promise<Figures> {
  const work = mkdtempSync(join(process.env.BENCH_DIR ?? root, ".bench-"));
  const env = { PATH: process.env.PATH!, HOME: work, XDG_RUNTIME_DIR: join(work, "run") };
  const portFile = join(work, "port");
  const coordinator = Bun.spawn([dmtcp, "coordinator", "-q", "-p", "0", "--port-file", portFile,
    "-c", work], {
    env, stdout: "ignore", stderr: "ignore",
  });
  try {
    await waitFor(() => existsSync(portFile));
    const port = readFileSync(portFile, "utf8");
    const figures: Figures = rawLimits(work);
    const python = ["/usr/bin/python3", "-c",
      "import time\nprint('ready', flush=True)\n" +
        "while True:\n  print(1, flush=True); time.sleep(0.001)"];
    const cases: Array<[string, string[]]> = [
      ["warm_up", [join(programs, "heap_ticker"), "1", "random"]],
      ["tiny", [join(programs, "heap_ticker"), "1", "random"]],
      ["python3", python],
      ["random_1gib", [join(programs, "heap_ticker"), "1024", "random"]],
      ["zero_1gib", [join(programs, "heap_ticker"), "1024", "zero"]],
    ];
    for (const [name, argv] of cases) {
      Object.assign(figures, await measure(name, argv, work, port, env));
    }
    for (const key of Object.keys(figures)) if (key.startsWith("warm_up")) delete figures[key];
    figures.random_1gib_checkpoint_vs_raw_write =
      figures.random_1gib_checkpoint_s! / figures.raw_write_1gib_s!;
    figures.random_1gib_restart_vs_raw_read =
      figures.random_1gib_restart_s! / figures.raw_read_1gib_s!;
    figures.random_1gib_restart_vs_raw_read_fresh =
      figures.random_1gib_restart_s! / figures.raw_read_fresh_1gib_s!;
    figures.zero_1gib_image_vs_heap = figures.zero_1gib_image_mib! / 1024;
    return figures;
  } finally {
    coordinator.kill();
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const figures = await checkpointFigures();
  if (process.argv.includes("--json")) {
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  }
  else for (const [name, value] of Object.entries(figures)) {
    process.stdout.write(`${name.padEnd(40)} ${value.toFixed(3)}\n`);
  }
}
