//! Every ceiling in the native code, each with the reason for its value.
const std = @import("std");

/// The checkpoint thread's stack: it runs only our code, with fixed buffers and no recursion.
pub const thread_stack_size = 256 * 1024;
/// Longest path we handle (Linux PATH_MAX).
pub const path_size_max = 4096;
/// Program and host names sent to the coordinator are cut here (host names are at most 64
/// bytes on Linux; program names longer than this are not useful in `--list`).
pub const name_size_max = 255;
/// Environment variables the runtime looks at in one pass; a larger environment is scanned
/// only up to here (the kernel's own limit is about 32 pages of strings).
pub const env_count_max = 1 << 16;
/// How long a worker waits for the coordinator to answer its hello: it runs before the
/// program goes on (in fork), so it must be short; loopback answers in well under 1 ms.
pub const handshake_timeout_ms = 2000;
/// Messages a worker drains before giving up on a misbehaving coordinator.
pub const message_count_max = 1 << 30;

comptime {
    std.debug.assert(thread_stack_size % 4096 == 0);
    std.debug.assert(name_size_max < path_size_max);
}
