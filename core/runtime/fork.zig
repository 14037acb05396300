//! fork(): a child joins the computation as a new worker. The parent registers the child
//! before fork returns (as DMTCP does), so a parent that exits at once cannot leave the
//! coordinator believing the computation is over while its child is still to connect.
const std = @import("std");
const linux = std.os.linux;
const worker = @import("worker.zig");

extern "c" fn pthread_atfork(
    prepare: ?*const fn () callconv(.c) void,
    parent: ?*const fn () callconv(.c) void,
    child: ?*const fn () callconv(.c) void,
) c_int;

/// The child's connection, made in `prepare`, handed over in `child`. Concurrent forks from two
/// threads serialize on `lock`.
var child_fd: i32 = -1;
var lock: std.atomic.Value(bool) = .init(false);

pub fn install() void {
    _ = pthread_atfork(prepare, parent, child);
}

fn prepare() callconv(.c) void {
    var spins: u32 = 0;
    while (lock.cmpxchgWeak(false, true, .acquire, .monotonic) != null) : (spins += 1) {
        std.atomic.spinLoopHint();
    }
    child_fd = -1;
    if (worker.state.fd < 0 or worker.state.lost.load(.acquire)) return;
    child_fd = worker.register() catch -1;
}

fn parent() callconv(.c) void {
    if (child_fd >= 0) _ = linux.close(child_fd);
    child_fd = -1;
    lock.store(false, .release);
}

fn child() callconv(.c) void {
    // The parent's connection is the parent's: close this process's copy of it.
    if (worker.state.fd >= 0) _ = linux.close(worker.state.fd);
    worker.state.fd = -1;
    worker.state.pid = linux.getpid();
    const fd = child_fd;
    child_fd = -1;
    lock.store(false, .release);
    if (fd < 0) return;
    worker.adopt(fd);
    worker.startThread();
}
