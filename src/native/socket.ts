// A blocking TCP connection made through libc, for the one connection Bun's sockets cannot
// make: the program's own, which must outlive this process's execve.
import { ptr } from "bun:ffi";
import { E, errno, libc, SystemError } from "./libc";

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const POLLIN = 1;
const POLLOUT = 4;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;

function waitFor(fd: number, events: number, timeoutMs: number): void {
  const pollfd = new Uint8Array(8);
  const view = new DataView(pollfd.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, events, true);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = Math.max(0, deadline - Date.now());
    const rc = libc().poll(ptr(pollfd), 1n, left);
    if (rc > 0) return;
    if (rc === 0) throw new SystemError("poll", 110); // ETIMEDOUT
    if (errno() !== E.INTR) throw new SystemError("poll", errno());
  }
}

/// Connects to an IPv4 address; the socket is blocking and close-on-exec when returned.
export function connectTcp(address: string, port: number, timeoutMs: number): number {
  const c = libc();
  const fd = c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SystemError("socket", errno());
  try {
    const one = new Int32Array([1]);
    c.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, ptr(one), 4);
    const sockaddr = new Uint8Array(16);
    const view = new DataView(sockaddr.buffer);
    view.setUint16(0, AF_INET, true);
    view.setUint16(2, port, false);
    address.split(".").forEach((part, index) => (sockaddr[4 + index] = Number(part)));
    if (c.connect(fd, ptr(sockaddr), 16) !== 0) {
      const code = errno();
      if (code !== E.INPROGRESS) throw new SystemError("connect", code);
      waitFor(fd, POLLOUT, timeoutMs);
      const error = new Int32Array(1);
      const size = new Uint32Array([4]);
      c.getsockopt(fd, SOL_SOCKET, SO_ERROR, ptr(error), ptr(size));
      if (error[0] !== 0) throw new SystemError("connect", error[0]!);
    }
    c.fcntl(fd, F_SETFL, c.fcntl(fd, F_GETFL, 0) & ~O_NONBLOCK);
    return fd;
  } catch (error) {
    c.close(fd);
    throw error;
  }
}

export function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    const rc = libc().write(fd, ptr(bytes.subarray(done)), BigInt(bytes.length - done));
    if (rc < 0 && errno() === E.INTR) continue;
    if (rc <= 0) throw new SystemError("write", errno());
    done += rc;
  }
}

/// Reads exactly `size` bytes, waiting at most timeoutMs for each part.
export function readExactly(fd: number, size: number, timeoutMs: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let done = 0;
  while (done < size) {
    waitFor(fd, POLLIN, timeoutMs);
    const rc = libc().read(fd, ptr(bytes.subarray(done)), BigInt(size - done));
    if (rc < 0 && errno() === E.INTR) continue;
    if (rc < 0) throw new SystemError("read", errno());
    if (rc === 0) throw new SystemError("read", 104); // ECONNRESET: closed before the reply
    done += rc;
  }
  return bytes;
}
