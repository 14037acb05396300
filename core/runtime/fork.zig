//! fork(): a child joins the computation as a new worker. The parent registers the child
//! before fork returns (as DMTCP does), so a parent that exits at once cannot leave the
//! coordinator believing the computation is over while its child is still to connect.
const std = @import("std");
const linux = std.os.linux;
const worker = @import("worker.zig");
const emulator = @import("emulator.zig");

extern "c" fn pthread_atfork(
    prepare: ?*const fn () callconv(.c) void,
    parent: ?*const fn () callconv(.c) void,
    child: ?*const fn () callconv(.c) void,
) c_int;

/// The child's registration, made in `prepare`, handed over in `child`. Concurrent forks from
/// two threads serialize on `lock`.
var child_registration: ?worker.Registered = null;
var lock: std.atomic.Value(bool) = .init(false);

pub fn install() void {
    _ = pthread_atfork(prepare, parent, child);
}

fn prepare() callconv(.c) void {
    var spins: u32 = 0;
    while (lock.cmpxchgWeak(false, true, .acquire, .monotonic) != null) : (spins += 1) {
        std.atomic.spinLoopHint();
    }
    child_registration = null;
    if (worker.state.fd < 0 or worker.state.lost.load(.acquire)) return;
    child_registration = worker.register() catch null;
}

fn parent() callconv(.c) void {
    if (child_registration) |registered| _ = linux.close(registered.fd);
    child_registration = null;
    lock.store(false, .release);
}

fn child() callconv(.c) void {
    // The parent's connection is the parent's: close this process's copy of it.
    if (worker.state.fd >= 0) _ = linux.close(worker.state.fd);
    worker.state.fd = -1;
    worker.state.pid = linux.getpid();
    emulator.noteForeignThreads();
    const registration = child_registration;
    child_registration = null;
    lock.store(false, .release);
    const registered = registration orelse return;
    worker.state.worker_id = registered.worker_id;
    worker.state.computation_id = registered.computation_id;
    worker.adopt(registered.fd);
    worker.startThread();
}
