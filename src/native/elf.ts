// What kind of program is about to run: its ELF class and machine choose the runtime library;
// a static or setuid program cannot take a preloaded library and is refused before exec.
import { accessSync, constants, openSync, readSync, closeSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { ProgramError } from "../errors";

export type ArchName = "x86_64" | "i386" | "aarch64" | "armv7";

export interface ProgramInfo {
  /// The file that will be executed (after PATH search).
  path: string;
  /// The ELF file the kernel finally runs: the program, or the interpreter of a script.
  elfPath: string;
  arch: ArchName;
  bits: 32 | 64;
  dynamic: boolean;
}

const MACHINES: Record<number, ArchName> = { 62: "x86_64", 3: "i386", 183: "aarch64", 40: "armv7" };
const SHEBANG_DEPTH_MAX = 4;
const HEADER_SIZE_MAX = 4096;
const PT_INTERP = 3;

/// Finds `command` as execvp would: a name with a slash is a path, else each PATH entry.
export function findProgram(command: string, env: Record<string, string | undefined>): string {
  if (command.includes("/")) return checkRunnable(resolve(command), command);
  const search = env.PATH ?? "/usr/local/bin:/usr/bin:/bin";
  for (const directory of search.split(delimiter)) {
    const candidate = resolve(join(directory || ".", command));
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here; keep looking, as execvp does.
    }
  }
  throw new ProgramError(
    `cannot run '${command}': no such program in PATH`,
    "Check the name, or give its path (./prog).",
  );
}

function checkRunnable(path: string, shown: string): string {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new ProgramError(`cannot run '${shown}': no such file`);
  }
  if (!stat.isFile()) throw new ProgramError(`cannot run '${shown}': not a regular file`);
  try {
    accessSync(path, constants.X_OK | constants.R_OK);
  } catch {
    throw new ProgramError(
      `cannot run '${shown}': not readable and executable by you`,
      `Check its permissions (chmod u+rx ${shown}).`,
    );
  }
  return path;
}

function readHead(path: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    throw new ProgramError(`cannot read '${path}': ${(error as NodeJS.ErrnoException).code}`,
      "dmtcp must read a program to choose its runtime; check its permissions.");
  }
  try {
    const bytes = new Uint8Array(HEADER_SIZE_MAX);
    const size = readSync(fd, bytes, 0, bytes.length, 0);
    return bytes.subarray(0, size);
  } finally {
    closeSync(fd);
  }
}

export function inspectProgram(path: string): ProgramInfo {
  const stat = statSync(path);
  if ((stat.mode & 0o6000) !== 0) {
    throw new ProgramError(
      `cannot run '${path}' under dmtcp: it is setuid or setgid`,
      "The loader ignores preloaded libraries for such programs; run a copy without the bit.",
    );
  }
  let elfPath = path;
  for (let depth = 0; depth < SHEBANG_DEPTH_MAX; depth++) {
    const head = readHead(elfPath);
    if (head[0] === 0x23 && head[1] === 0x21) {
      elfPath = interpreterOf(head, elfPath);
      continue;
    }
    return { path, elfPath, ...parseElf(head, elfPath) };
  }
  throw new ProgramError(`cannot run '${path}': too many nested #! interpreters`);
}

function interpreterOf(head: Uint8Array, path: string): string {
  const line = new TextDecoder().decode(head.subarray(2)).split("\n")[0]!.trim();
  const interpreter = line.split(/\s+/)[0] ?? "";
  if (!isAbsolute(interpreter)) {
    throw new ProgramError(`cannot run '${path}': its #! line names no absolute interpreter`);
  }
  return checkRunnable(interpreter, interpreter);
}

function parseElf(head: Uint8Array, path: string): Omit<ProgramInfo, "path" | "elfPath"> {
  const isElf = head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
  if (!isElf || head.length < 52) {
    throw new ProgramError(`cannot run '${path}': not an ELF program or a #! script`);
  }
  const bits = head[4] === 2 ? 64 : 32;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const machine = view.getUint16(18, true);
  const arch = MACHINES[machine];
  if (arch === undefined) {
    throw new ProgramError(
      `cannot run '${path}': built for ELF machine ${machine}, not one we support`,
    );
  }
  return { arch, bits, dynamic: hasInterpreter(view, bits) };
}

/// A PT_INTERP program header means the program is dynamically linked (it can preload us).
function hasInterpreter(view: DataView, bits: 32 | 64): boolean {
  const wide = bits === 64;
  const phoff = Number(wide ? view.getBigUint64(32, true) : view.getUint32(28, true));
  const phentsize = view.getUint16(wide ? 54 : 42, true);
  const phnum = view.getUint16(wide ? 56 : 44, true);
  for (let index = 0; index < phnum; index++) {
    const offset = phoff + index * phentsize;
    if (offset + 4 > view.byteLength) break;
    if (view.getUint32(offset, true) === PT_INTERP) return true;
  }
  return false;
}
