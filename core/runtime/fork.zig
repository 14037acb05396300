//! fork(): a child joins the computation as a new worker. The parent hands the child a
//! registration before fork returns: a spare connection registered ahead of time
//! (spares.zig), or, when none is ready, a new one registered in prepare (as DMTCP does).
//! Either way a parent that exits at once cannot leave the coordinator believing the
//! computation is over while its child is still to speak, and a checkpoint that starts
//! after fork includes the child. The checkpoint signal stays blocked from prepare to the
//! parent hook, so no thread is suspended between taking a spare and forking.
//!
//! glibc's `clone()` runs no atfork handlers, so a process made by clone without CLONE_VM (a
//! copy of its parent, as from fork) goes through our `clone`, which runs the same hooks
//! around glibc's `__clone`. With CLONE_VM the child shares our memory (a thread, or a
//! vfork-like child about to exec, which joins after exec): it passes straight through.
const std = @import("std");
const linux = std.os.linux;
const worker = @import("worker.zig");
const pids = @import("pids.zig");
const spares = @import("spares.zig");
const threads = @import("threads.zig");
const emulator = @import("emulator.zig");
const timer_threads = @import("timer_threads.zig");

extern "c" fn pthread_atfork(
    prepare: ?*const fn () callconv(.c) void,
    parent: ?*const fn () callconv(.c) void,
    child: ?*const fn () callconv(.c) void,
) c_int;

/// The child's registration, made in `prepare`, handed over in `child`. Concurrent forks from
/// two threads serialize on `lock`.
var child_registration: ?worker.Registered = null;
var from_spare: bool = false;
var lock: std.atomic.Value(bool) = .init(false);
/// The forking thread's signal mask before prepare blocked the checkpoint signal.
var saved_mask: linux.sigset_t = undefined;

extern "c" fn __clone(
    function: *const fn (?*anyopaque) callconv(.c) c_int,
    stack: ?*anyopaque,
    flags: c_int,
    argument: ?*anyopaque,
    parent_tid: ?*anyopaque,
    tls: ?*anyopaque,
    child_tid: ?*anyopaque,
) c_int;

pub fn install() void {
    _ = pthread_atfork(prepare, parent, child);
}

const clone_vm = 0x100;

const CloneRequest = struct {
    function: *const fn (?*anyopaque) callconv(.c) c_int,
    argument: ?*anyopaque,
};

/// clone(2)'s glibc wrapper is variadic (parent_tid, tls, child_tid follow `argument`); on
/// the four ABIs we build for, variadic integer and pointer arguments travel where named
/// ones do, and glibc reads the three only when `flags` asks for them, as `__clone` will.
export fn clone(
    function: *const fn (?*anyopaque) callconv(.c) c_int,
    stack: ?*anyopaque,
    flags: c_int,
    argument: ?*anyopaque,
    parent_tid: ?*anyopaque,
    tls: ?*anyopaque,
    child_tid: ?*anyopaque,
) c_int {
    if (flags & clone_vm != 0) {
        return __clone(function, stack, flags, argument, parent_tid, tls, child_tid);
    }
    // The child has a copy of this frame: it finds the request at the same address.
    var request: CloneRequest = .{ .function = function, .argument = argument };
    prepare();
    const pid = __clone(cloneChild, stack, flags, &request, parent_tid, tls, child_tid);
    parent();
    return pid;
}

fn cloneChild(pointer: ?*anyopaque) callconv(.c) c_int {
    const request: *const CloneRequest = @ptrCast(@alignCast(pointer.?));
    child();
    return request.function(request.argument);
}

fn prepare() callconv(.c) void {
    var mask = linux.sigemptyset();
    if (threads.checkpointSignal() != 0) linux.sigaddset(&mask, threads.checkpointSignal());
    var old: linux.sigset_t = undefined;
    _ = linux.sigprocmask(linux.SIG.BLOCK, &mask, &old);
    var spins: u32 = 0;
    while (lock.cmpxchgWeak(false, true, .acquire, .monotonic) != null) : (spins += 1) {
        std.atomic.spinLoopHint();
    }
    saved_mask = old;
    child_registration = null;
    from_spare = false;
    if (worker.state.fd < 0 or worker.state.lost.load(.acquire)) return;
    if (spares.take()) |spare| {
        child_registration = .{
            .fd = spare.fd,
            .worker_id = spare.worker_id,
            .computation_id = worker.state.computation_id,
        };
        from_spare = true;
        return;
    }
    child_registration = worker.register() catch null;
}

fn parent() callconv(.c) void {
    if (child_registration) |registered| _ = linux.close(registered.fd);
    if (from_spare) spares.wake();
    child_registration = null;
    const mask = saved_mask;
    lock.store(false, .release);
    _ = linux.sigprocmask(linux.SIG.SETMASK, &mask, null);
}

fn child() callconv(.c) void {
    // The parent's connections are the parent's: close this process's copies of them.
    if (worker.state.fd >= 0) _ = linux.close(worker.state.fd);
    worker.state.fd = -1;
    const registration = child_registration;
    child_registration = null;
    // The child's own connection is kept: it may still be listed among the spares opening.
    spares.closeInChild(if (registration) |registered| registered.fd else -1);
    worker.state.pid = linux.getpid();
    pids.afterFork();
    timer_threads.afterFork();
    emulator.noteForeignThreads();
    const mask = saved_mask;
    lock.store(false, .release);
    if (registration) |registered| {
        worker.state.worker_id = registered.worker_id;
        worker.state.computation_id = registered.computation_id;
        worker.adopt(registered.fd);
        worker.startThread();
    }
    _ = linux.sigprocmask(linux.SIG.SETMASK, &mask, null);
}
