//! Thread ids. A thread keeps, across restarts, the id the kernel gave it when it was born,
//! as a process keeps its pid (pids.zig): a restart re-creates every thread with a new kernel
//! id, and this table maps the id the program knows (the thread's *virtual* tid) to the new
//! one, for the threads of this process. An id the table does not know goes on to the pid
//! table: the main thread's tid is its process's pid, and a thread born after the restart
//! keeps its kernel id.
//!
//! glibc keeps using kernel ids: the tid cached in each thread's `struct pthread` is the new
//! one (threads.zig), so pthread_kill, raise and mutex ownership work unchanged.
//!
//! Filled by the checkpoint thread once every re-created thread is back in its handler, while
//! no thread of the program runs; releasing the threads publishes it (threads.zig). A thread
//! that ends later leaves its entry until the next restart rebuilds the table.
const std = @import("std");
const assert = std.debug.assert;
const limits = @import("limits");
const pids = @import("pids.zig");

const Entry = struct { virtual: i32, real: i32 };

var table: [limits.threads_max]Entry = undefined;
var table_count: usize = 0;

/// The virtual id of this process's thread `real` (a pid when it is no thread of ours).
pub fn toVirtual(real: i32) i32 {
    assert(table_count <= table.len);
    for (table[0..table_count]) |entry| {
        if (entry.real == real) return entry.virtual;
    }
    return pids.toVirtual(real);
}

/// The kernel id of this process's thread `virtual` (a pid when it is no thread of ours).
pub fn toReal(virtual: i32) i32 {
    assert(table_count <= table.len);
    for (table[0..table_count]) |entry| {
        if (entry.virtual == virtual) return entry.real;
    }
    return pids.toReal(virtual);
}

/// Restart, on the checkpoint thread, before the program's threads are released.
pub fn reset() void {
    table_count = 0;
}

/// One entry per saved thread: there are never more than the thread slots (threads_max).
pub fn add(virtual: i32, real: i32) void {
    assert(virtual > 0 and real > 0);
    assert(table_count < table.len);
    table[table_count] = .{ .virtual = virtual, .real = real };
    table_count += 1;
}

test "thread_ids: a re-created thread is known by its first id, others pass on to the pid table" {
    reset();
    defer reset();
    add(1234, 9001);
    try std.testing.expectEqual(@as(i32, 9001), toReal(1234));
    try std.testing.expectEqual(@as(i32, 1234), toVirtual(9001));
    try std.testing.expectEqual(@as(i32, 77), toReal(77));
}
