// Shared by the integration suites: the real executable from dist/, test programs from zig-out/,
// a private sandbox per test (its own runtime dir for tokens, its own coordinators on port 0),
// and polling with deadlines instead of sleeps.
import type { Subprocess } from "bun";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "..", "..");
export const DMTCP = join(ROOT, "dist", "dmtcp-linux-x64");
export const DMTCP_ARM64 = join(ROOT, "dist", "dmtcp-linux-arm64");
/// One cache for every test, as a user's home would have: extraction is tested on its own.
export const SHARED_CACHE = join(tmpdir(), "dmtcp-test-cache");

export type Arch = "x86_64" | "i386" | "aarch64" | "armv7";

export function program(name: string, arch: Arch = "x86_64"): string {
  return join(ROOT, "zig-out", arch, "test", name);
}

/// The executable that carries `arch`: the x64 one for x86 programs, the arm64 one (which this
/// x86_64 host runs under qemu-user through binfmt_misc) for ARM programs.
export function dmtcpFor(arch: Arch): string {
  return arch === "x86_64" || arch === "i386" ? DMTCP : DMTCP_ARM64;
}

/// Whether programs of `arch` run under qemu-user on this host.
export function emulated(arch: Arch): boolean {
  const host: Arch = process.arch === "arm64" ? "aarch64" : "x86_64";
  const native: Arch[] = host === "x86_64" ? ["x86_64", "i386"] : ["aarch64", "armv7"];
  return !native.includes(arch);
}

export async function until<T>(
  condition: () => T | Promise<T>,
  { timeoutMs = 10000, what = "condition" }: { timeoutMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    await Bun.sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/// A coordinator of a test's own and the directory its images go to.
export interface Computation {
  port: string;
  ckptDir: string;
}

export class Sandbox {
  readonly dir = mkdtempSync(join(tmpdir(), "dmtcp-it-"));
  readonly env: Record<string, string>;
  private readonly processes: Subprocess[] = [];
  private readonly ports: number[] = [];

  constructor(extraEnv: Record<string, string> = {}) {
    this.env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: this.dir,
      XDG_RUNTIME_DIR: join(this.dir, "run"),
      XDG_CACHE_HOME: SHARED_CACHE,
      DMTCP_TMPDIR: this.dir,
      ...extraEnv,
    };
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  run(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): RunResult {
    const result = Bun.spawnSync([DMTCP, ...args], {
      env: { ...this.env, ...options.env },
      cwd: options.cwd ?? this.dir,
      stdout: "pipe",
      stderr: "pipe",
    });
    return {
      code: result.exitCode ?? -1,
      stdout: result.stdout.toString(),
      stderr: result.stderr.toString(),
    };
  }

  spawn(argv: string[], options: { env?: Record<string, string>; stdin?: "pipe" | "ignore" } = {}) {
    const child = Bun.spawn(argv, {
      env: { ...this.env, ...options.env },
      cwd: this.dir,
      stdin: options.stdin ?? "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    this.processes.push(child);
    return new Running(child);
  }

  /// A private coordinator on a free port; resolves once it listens.
  /// A private coordinator whose images and restart script go to <sandbox>/ckpt.
  async computation(executable = DMTCP, timeoutMs = 10000): Promise<Computation> {
    const ckptDir = this.path("ckpt");
    mkdirSync(ckptDir, { recursive: true });
    const { port } = await this.coordinator(["-c", ckptDir], executable, timeoutMs);
    return { port: String(port), ckptDir };
  }

  /// `dmtcp launch` of argv as a worker of `c`, writing its images to c's directory.
  launch(
    c: Computation,
    argv: string[],
    stdin: "pipe" | "ignore" = "ignore",
    executable = DMTCP,
  ): Running {
    return this.spawn([executable, "launch", "-p", c.port, "-c", c.ckptDir, ...argv], { stdin });
  }

  async coordinator(
    args: string[] = [],
    executable = DMTCP,
    timeoutMs = 10000,
  ): Promise<{ port: number; process: Running }> {
    const portFile = this.path(`port-${this.processes.length}`);
    const running = this.spawn([
      executable,
      "coordinator",
      "-p",
      "0",
      "--port-file",
      portFile,
      ...args,
    ]);
    const port: number = await until(
      () => (existsSync(portFile) ? Number(readFileSync(portFile, "utf8")) : 0),
      { what: "the coordinator's port file", timeoutMs },
    );
    this.ports.push(port);
    return { port, process: running };
  }

  status(port: number): { peers: number; running: boolean } {
    const result = this.run(["command", "-p", String(port), "--json", "--status"]);
    const reply = JSON.parse(result.stdout);
    return { peers: reply.num_peers ?? -1, running: reply.running ?? false };
  }

  /// Real pids of the workers of the coordinator at `port` ("name[virtual:real]@host").
  workerPids(port: string): number[] {
    const list = this.run(["command", "-p", port, "--list"]).stdout;
    return [...list.matchAll(/\[\d+:(\d+)\]@/g)].map((match) => Number(match[1]));
  }

  /// SIGKILLs the workers of `port` until none is left: one may fork another meanwhile, or
  /// die of its peers' deaths before its turn.
  async killWorkers(port: string): Promise<void> {
    await until(() => {
      for (const pid of this.workerPids(port)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Gone already.
        }
      }
      return this.status(Number(port)).peers === 0;
    }, { what: "every worker to leave" });
  }

  cleanup(): void {
    // Workers the test did not start itself (forked children) end with their computation.
    for (const port of this.ports) this.run(["command", "-p", String(port), "--quit"]);
    for (const child of this.processes) child.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/// A background process whose output is collected as it arrives.
export class Running {
  stdout = "";
  stderr = "";
  constructor(readonly child: Subprocess<"ignore" | "pipe", "pipe", "pipe">) {
    void this.collect(child.stdout as ReadableStream<Uint8Array>, "stdout");
    void this.collect(child.stderr as ReadableStream<Uint8Array>, "stderr");
  }

  private async collect(stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") {
    const decoder = new TextDecoder();
    for await (const chunk of stream) this[into] += decoder.decode(chunk, { stream: true });
  }

  get pid(): number {
    return this.child.pid;
  }

  lines(): string[] {
    return this.stdout.split("\n").filter((line) => line !== "");
  }

  async exited(): Promise<number> {
    return await this.child.exited;
  }
}

/// The newest image of `name` under `directory` (ckpt_<name>_<id>.dmtcp).
export function findImage(directory: string, name: string): string | undefined {
  const { readdirSync } = require("node:fs") as typeof import("node:fs");
  const images = readdirSync(directory).filter(
    (file) => file.startsWith(`ckpt_${name}_`) && file.endsWith(".dmtcp"),
  );
  return images.length === 1 ? join(directory, images[0]!) : undefined;
}

/// Lines of a running program parsed as numbers from their first field.
export function numbers(running: Running): number[] {
  return running.lines().map((line) => Number(line.split(" ")[0]));
}
