// The few libc calls the CLI needs that Bun does not offer: execve (launch and restart end in
// it, so the program keeps our pid, terminal and exit code), and a plain blocking socket that
// survives that execve as the program's coordinator connection.
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const { i32, u32, ptr: pointer, u64 } = FFIType;

let handle: ReturnType<typeof open> | undefined;

function open() {
  return dlopen("libc.so.6", {
    execve: { args: [pointer, pointer, pointer], returns: i32 },
    socket: { args: [i32, i32, i32], returns: i32 },
    connect: { args: [i32, pointer, u32], returns: i32 },
    setsockopt: { args: [i32, i32, i32, pointer, u32], returns: i32 },
    getsockopt: { args: [i32, i32, i32, pointer, pointer], returns: i32 },
    fcntl: { args: [i32, i32, i32], returns: i32 },
    poll: { args: [pointer, u64, i32], returns: i32 },
    read: { args: [i32, pointer, u64], returns: i32 },
    write: { args: [i32, pointer, u64], returns: i32 },
    close: { args: [i32], returns: i32 },
    dup2: { args: [i32, i32], returns: i32 },
    signal: { args: [i32, pointer], returns: pointer },
    sigprocmask: { args: [i32, pointer, pointer], returns: i32 },
    __errno_location: { args: [], returns: pointer },
    strerror: { args: [i32], returns: FFIType.cstring },
  });
}

export function libc() {
  handle ??= open();
  return handle.symbols;
}

export function errno(): number {
  const location = libc().__errno_location();
  return location === null ? 0 : read.i32(location, 0);
}

export class SystemError extends Error {
  constructor(
    readonly call: string,
    readonly code: number,
  ) {
    super(`${call}: ${String(libc().strerror(code))}`);
  }
}

export const E = { INTR: 4, AGAIN: 11, INPROGRESS: 115, CONNREFUSED: 111 } as const;

function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, "utf8");
}

/// A NULL-terminated array of pointers to C strings; `keep` holds the buffers alive.
function cStringArray(items: string[], keep: Buffer[]): BigUint64Array {
  const array = new BigUint64Array(items.length + 1);
  items.forEach((item, index) => {
    const buffer = cString(item);
    keep.push(buffer);
    array[index] = BigInt(ptr(buffer));
  });
  return array;
}

/// Replaces this process with `path`. Returns only on failure, with the errno.
export function execve(path: string, argv: string[], env: Record<string, string>): number {
  const keep: Buffer[] = [];
  const file = cString(path);
  const args = cStringArray(argv, keep);
  const environment = cStringArray(
    Object.entries(env).map(([key, value]) => `${key}=${value}`),
    keep,
  );
  prepareForExec();
  libc().execve(ptr(file), ptr(args), ptr(environment));
  const code = errno();
  keep.length = 0;
  return code;
}

const F_GETFL = 3;
const F_SETFL = 4;
const F_SETFD = 2;
const O_NONBLOCK = 0o4000;
/// Bun ignores these; an ignored disposition survives execve, so the program would inherit it.
const SIGNALS_BUN_IGNORES = [13, 25]; // SIGPIPE, SIGXFSZ
const SIG_SETMASK = 2;

/// Undo what Bun changed in state that execve passes on: non-blocking stdio (shared with the
/// terminal or pipe's other users), ignored signals, and signals blocked in the calling thread.
function prepareForExec(): void {
  const c = libc();
  for (const fd of [0, 1, 2]) {
    const flags = c.fcntl(fd, F_GETFL, 0);
    if (flags >= 0 && (flags & O_NONBLOCK) !== 0) c.fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  for (const signal of SIGNALS_BUN_IGNORES) c.signal(signal, null);
  const empty = new Uint8Array(128);
  c.sigprocmask(SIG_SETMASK, ptr(empty), null);
}

export function keepAcrossExec(fd: number): void {
  libc().fcntl(fd, F_SETFD, 0);
}

export function closeFd(fd: number): void {
  libc().close(fd);
}
