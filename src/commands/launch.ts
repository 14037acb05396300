// dmtcp launch [options] [--] program args...: start a program as a worker of a computation.
// Ends in execve of the program, so it keeps our pid, terminal, signals and exit code.
import { defineCommand } from "citty";
import { basename } from "node:path";
import { writeFileSync, renameSync } from "node:fs";
import { commonArgs, coordinatorArgs } from "./_shared";
import { ProgramError, UsageError } from "../errors";
import type { ParsedArgv } from "../args";
import * as options from "../options";
import { findProgram, inspectProgram, type ProgramInfo } from "../native/elf";
import { carriedArchs, executableFor, nativeDirectory, preloadEntry } from "../native/cache";
import { execve, keepAcrossExec } from "../native/libc";
import { coordinatorEnv, joinComputation, type Joined } from "../worker/join";

export const args = {
  ...coordinatorArgs,
  ckptdir: {
    type: "string",
    alias: "c",
    valueHint: "dir",
    description: "Where images are written (DMTCP_CHECKPOINT_DIR; default: current directory)",
  },
  "ckpt-signal": {
    type: "string",
    valueHint: "signal",
    description: "Signal used to suspend threads (DMTCP_SIGCKPT; default 12, SIGUSR2)",
  },
  gzip: { type: "boolean", description: "Compress images (DMTCP_GZIP=1)" },
  "no-gzip": { type: "boolean", description: "Do not compress images (DMTCP_GZIP=0)" },
  ...commonArgs,
} as const;

export default defineCommand({
  meta: { name: "launch", description: "Start a program under checkpoint control" },
  args,
  async run({ args: parsed }) {
    await launch(parsed as unknown as ParsedArgv, process.env);
  },
});

const ARCH_IDS = { x86_64: 1, i386: 2, aarch64: 3, armv7: 4 } as const;

/// Options end at the program: `dmtcp launch -i 5 prog -i 7` gives -i 7 to prog.
export const stopAtPositional = true;

export async function launch(parsed: ParsedArgv, env: options.Env): Promise<never> {
  const [command, ...programArgs] = parsed.positionals;
  if (command === undefined) {
    throw new UsageError("no program to launch", "Usage: dmtcp launch [options] program [args...]");
  }
  const target = options.coordinatorTarget(parsed, env);
  const intervalS = options.intervalS(parsed, env);
  const ckptDir = options.directory(
    parsed,
    "ckptdir",
    env,
    ["DMTCP_CHECKPOINT_DIR"],
    process.cwd(),
  );
  const signal = options.ckptSignal(parsed, env);
  const gzip = options.gzip(parsed, env);
  const tmpDir = options.tmpDir(parsed, env);
  const quiet = options.quietLevel(parsed, env);
  const program = checkProgram(command, env);
  const natives = await nativeDirectory(env);
  const joined = await joinComputation(
    target,
    { name: basename(command), realPid: process.pid, intervalS, arch: ARCH_IDS[program.arch] },
    env,
    ckptDirArgs(ckptDir, intervalS),
  );
  if (target.portFile) writePortFile(target.portFile, joined.port);
  const childEnv = programEnv(env, {
    joined, library: preloadEntry(natives), natives, ckptDir, tmpDir, quiet,
    signal, gzip,
  });
  keepAcrossExec(joined.fd);
  const code = execve(program.path, [command, ...programArgs], childEnv);
  throw new ProgramError(`cannot run '${command}': exec failed (errno ${code})`);
}

function checkProgram(command: string, env: options.Env): ProgramInfo {
  const program = inspectProgram(findProgram(command, env));
  if (!program.dynamic) {
    throw new ProgramError(
      `cannot checkpoint '${command}': it is statically linked`,
      "dmtcp works by preloading a library, which static programs never load; link it dynamically.",
    );
  }
  if (!carriedArchs().includes(program.arch)) {
    throw new ProgramError(
      `cannot checkpoint '${command}': it is a ${program.arch} program and this dmtcp carries ` +
        `${carriedArchs().join(" and ")}`,
      `Launch it with ${executableFor(program.arch)}, the dmtcp executable that carries ` +
        `${program.arch}.`,
    );
  }
  return program;
}

function ckptDirArgs(ckptDir: string, intervalS: number | undefined): string[] {
  return ["-c", ckptDir, ...(intervalS === undefined ? [] : ["-i", String(intervalS)])];
}

/// Port files hold the decimal port, no newline, mode 0600, written atomically.
export function writePortFile(path: string, port: number): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, String(port), { mode: 0o600 });
  renameSync(temporary, path);
}

interface ProgramSetup {
  joined: Joined;
  library: string;
  natives: string;
  ckptDir: string;
  tmpDir: string;
  quiet: number;
  signal: number | undefined;
  gzip: boolean;
}

function programEnv(env: options.Env, setup: ProgramSetup): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) result[key] = value;
  const original = env.LD_PRELOAD;
  if (original) result.DMTCP_ORIG_LD_PRELOAD = original;
  result.LD_PRELOAD = original ? `${setup.library}:${original}` : setup.library;
  Object.assign(result, coordinatorEnv(setup.joined));
  result.DMTCP_CHECKPOINT_DIR = setup.ckptDir;
  result.DMTCP_TMPDIR = setup.tmpDir;
  result.DMTCP_NATIVE_DIR = setup.natives;
  result.DMTCP_QUIET = String(setup.quiet);
  result.DMTCP_GZIP = setup.gzip ? "1" : "0";
  if (setup.signal !== undefined) result.DMTCP_SIGCKPT = String(setup.signal);
  // Sent to the coordinator once, in the handshake above, as DMTCP does.
  delete result.DMTCP_CHECKPOINT_INTERVAL;
  return result;
}
