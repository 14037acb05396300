//! Threads: suspension at checkpoint, re-creation at restart.
//!
//! The checkpoint thread sends the checkpoint signal (DMTCP_SIGCKPT, default SIGUSR2) with
//! rt_tgsigqueueinfo and a value of its own to every other thread of /proc/self/task, having
//! first noted the system call each one is blocked in (interrupted_calls.zig); the same
//! signal without that value is the program's, and goes where the program asked
//! (signal_wrappers.zig). Our handler (installed with a raw
//! rt_sigaction, SA_SIGINFO | SA_RESTART, every signal blocked while it runs) takes a slot of
//! the fixed table, captures the thread's kernel state (thread_state.zig: alternate signal
//! stack, clear-child-tid address, robust futex list, rseq, name), saves a setjmp-like
//! context and the thread pointer, reports itself stopped and waits on a futex until
//! released. The interrupted state (all registers, FPU and vector state, signal mask) is in
//! the signal frame on the thread's own stack, so it is saved with the memory. A thread that
//! ends before it reaches the handler (it was exiting, or blocks every signal on its way out)
//! is noticed gone and not waited for.
//!
//! At restart the runtime re-creates each thread with a raw clone (CLONE_SETTLS with its old
//! thread pointer; CLONE_PARENT_SETTID on glibc's cached `tid` and CLONE_CHILD_CLEARTID on the
//! saved clear-child-tid address, as pthread_create does) and the thread jumps back into its
//! handler, which returns 1 from the save, sets its kernel state again, reports itself
//! restarted, waits for the release and returns: rt_sigreturn then restores the interrupted
//! state from the restored frame. A thread that was blocked in a system call enters it again
//! (interrupted_calls.zig), without an EINTR the program never asked for. The program goes on
//! knowing each thread by the id it was born with (thread_ids.zig); glibc's cached id is the
//! new one, which glibc itself passes to the kernel.
//!
//! Saved: the records are for `dmtcp inspect` only; the runtime restores from this file's own
//! table, which is part of the restored memory. The checkpoint thread names itself
//! `dmtcp:ckpt`, so that it is told apart in /proc and ps.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const arch = @import("arch").current;
const limits = @import("limits");
const image = @import("format").image;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");
const thread_state = @import("thread_state.zig");
const interrupted_calls = @import("interrupted_calls.zig");
const pending_signals = @import("pending_signals.zig");
const emulator = @import("emulator.zig");
const signal_wrappers = @import("signal_wrappers.zig");
const thread_ids = @import("thread_ids.zig");

pub const kind: kinds.Kind = .{ .tag = .thread, .save = save, .restore = kinds.restoreNothing };

pub const Slot = struct {
    /// The thread id at the checkpoint, and the one it has now (new after a restart).
    tid: i32 = 0,
    current_tid: i32 = 0,
    /// The id the program knows the thread by: the kernel's when it was born (thread_ids.zig).
    virtual_tid: i32 = 0,
    thread_pointer: usize = 0,
    /// glibc's cached thread id in the thread control block matched `tid`: restart corrects
    /// it. False for threads made by a raw clone, whose thread pointer is not glibc's.
    tid_cached: bool = false,
    role: image.ThreadRole = .other,
    context: arch.Context = .{},
    state: thread_state.State = .{},
};

pub const Error = error{
    ListFailed,
    TooManyThreads,
    Timeout,
    SignalTaken,
    ThreadBlocksCheckpointSignal,
};

var slots: [limits.threads_max]Slot = [_]Slot{.{}} ** limits.threads_max;
/// Slots taken in the current checkpoint.
var slot_count: std.atomic.Value(u32) = .init(0);
/// Futex words: threads stopped in the handler, threads back in it after a restart.
var stopped_count: std.atomic.Value(u32) = .init(0);
var restarted_count: std.atomic.Value(u32) = .init(0);
/// Futex word the handlers wait on; bumped to release them.
var release_generation: std.atomic.Value(u32) = .init(0);
/// The checkpoint thread's own context, saved right before it writes the image.
pub var checkpoint_context: arch.Context = .{};
pub var checkpoint_tid: i32 = 0;
/// Offset of glibc's cached thread id from the thread pointer, if found.
pub var tid_offset: ?isize = null;
var signal_number: u8 = 0;
/// Set while the checkpoint thread suspends the threads, until it releases them: a signal of
/// ours that arrives outside (late, after a failed suspension) is ignored.
var suspending: std.atomic.Value(bool) = .init(false);
/// The value queued with our checkpoint signal: the same signal without it (raise, kill) is
/// the program's, passed on to the action the program set (signal_wrappers.zig).
const signal_cookie: usize = 0x646d7463; // "dmtc"
const si_queue = -1;

/// The checkpoint signal; 0 before `install`.
pub fn checkpointSignal() u8 {
    return signal_number;
}

/// Called once from the library constructor on the main thread.
pub fn install(signal: u8) void {
    assert(signal > 0 and signal < 65);
    signal_number = signal;
    pending_signals.install(signal);
    signal_wrappers.install(signal);
    tid_offset = findTidOffset();
    var action: linux.Sigaction = .{
        .handler = .{ .sigaction = handler },
        .mask = linux.sigfillset(),
        .flags = linux.SA.SIGINFO | linux.SA.RESTART,
    };
    _ = &action;
    const rc = linux.sigaction(signal, &action, null);
    assert(linux.E.init(rc) == .SUCCESS);
}

/// glibc caches the thread id in `struct pthread`; a restarted thread has a new one, and
/// raise(), abort() and mutex ownership read the cached value. Find it by value, preferring
/// the known offset for this architecture, else searching the window the architecture says
/// `struct pthread` lies in.
fn findTidOffset() ?isize {
    const tcb = arch.threadPointer();
    if (tcb == 0) return null;
    const tid: i32 = linux.gettid();
    if (tidField(tcb, arch.glibc_tid_offset).* == tid) return arch.glibc_tid_offset;
    var index: isize = 0;
    while (index < tid_search_size / 4) : (index += 1) {
        const offset = arch.glibc_tid_search_start + index * 4;
        if (tidField(tcb, offset).* == tid) return offset;
    }
    return null;
}

/// Bytes searched for glibc's cached thread id.
const tid_search_size = 4096;

fn tidField(thread_pointer: usize, offset: isize) *i32 {
    assert(thread_pointer != 0);
    return @ptrFromInt(thread_pointer +% @as(usize, @bitCast(offset)));
}

fn handler(signal: i32, info: *const linux.siginfo_t, ucontext: ?*anyopaque) callconv(.c) void {
    assert(signal == signal_number);
    if (!fromCheckpointThread(info)) return signal_wrappers.forward(signal, info, ucontext);
    if (!suspending.load(.acquire)) return;
    suspendSelf(ucontext);
}

fn fromCheckpointThread(info: *const linux.siginfo_t) bool {
    if (info.code != si_queue) return false;
    if (info.fields.common.first.piduid.pid != linux.getpid()) return false;
    return @intFromPtr(info.fields.common.second.value.ptr) == signal_cookie;
}

fn suspendSelf(ucontext: ?*anyopaque) void {
    const generation = release_generation.load(.acquire);
    const index = slot_count.fetchAdd(1, .acq_rel);
    if (index >= slots.len) {
        // No room to save this thread: the checkpoint fails (suspendAll sees the count).
        _ = stopped_count.fetchAdd(1, .release);
        wake(&stopped_count);
        waitRelease(generation);
        return;
    }
    const slot = &slots[index];
    fill(slot);
    // A local, not in the slot: the next checkpoint may reuse the slot before this returns.
    const restart = interrupted_calls.plan(slot.tid, ucontext);
    const restarted = arch.saveContext(&slot.context) != 0;
    if (!restarted) {
        _ = stopped_count.fetchAdd(1, .release);
        wake(&stopped_count);
    } else {
        slot.current_tid = linux.gettid();
        thread_state.restore(&slot.state);
        _ = restarted_count.fetchAdd(1, .release);
        wake(&restarted_count);
    }
    waitRelease(generation);
    // The slots stay as they are until the taken signals are queued again.
    if (slot == mainSlot()) pending_signals.queueAgain(currentTid);
    if (restart) |call| interrupted_calls.apply(ucontext, call, restarted);
}

fn fill(slot: *Slot) void {
    slot.tid = linux.gettid();
    slot.current_tid = slot.tid;
    slot.virtual_tid = thread_ids.toVirtual(slot.tid);
    slot.thread_pointer = arch.threadPointer();
    slot.role = if (slot.tid == linux.getpid()) .main else .other;
    slot.tid_cached = false;
    if (tid_offset) |offset| if (slot.thread_pointer != 0) {
        const cached: *const i32 = tidField(slot.thread_pointer, offset);
        slot.tid_cached = cached.* == slot.tid;
    };
    thread_state.capture(&slot.state, slot.thread_pointer);
    // The kernel answers PR_GET_TID_ADDRESS only with CONFIG_CHECKPOINT_RESTORE, and qemu-user
    // not at all. glibc points every thread's clear-child-tid at the tid it caches (clone's
    // CHILD_CLEARTID in pthread_create, set_tid_address at start-up), so that address is the
    // one: without it a thread that ends after a restart leaves pthread_join waiting forever.
    if (slot.state.clear_tid_address == 0 and slot.tid_cached) {
        slot.state.clear_tid_address = @intFromPtr(tidField(slot.thread_pointer, tid_offset.?));
    }
    pending_signals.takeThread(slot.tid);
}

fn waitRelease(generation: u32) void {
    while (release_generation.load(.acquire) == generation) {
        futexWait(&release_generation, generation, null);
    }
}

fn futexWait(word: *std.atomic.Value(u32), seen: u32, timeout: ?*const linux.timespec) void {
    const wait: linux.FUTEX_OP = .{ .cmd = .WAIT, .private = true };
    _ = linux.futex(&word.raw, wait, seen, .{ .timeout = timeout }, null, 0);
}

fn wake(word: *std.atomic.Value(u32)) void {
    const all = std.math.maxInt(i32);
    const op: linux.FUTEX_OP = .{ .cmd = .WAKE, .private = true };
    _ = linux.futex(&word.raw, op, all, .{ .timeout = null }, null, 0);
}

/// Threads signalled in the current suspension.
var signaled: [limits.threads_max]i32 = undefined;
var signaled_count: usize = 0;

/// Stops every other thread of the process in the handler. Threads created meanwhile are
/// caught by listing again until no new thread appears.
pub fn suspendAll() Error!u32 {
    checkpoint_tid = linux.gettid();
    if (!handlerInstalled()) return error.SignalTaken;
    // Before any thread is signalled: /proc's signal masks are read from here on.
    emulator.learnSignals();
    slot_count.store(0, .release);
    stopped_count.store(0, .release);
    suspending.store(true, .release);
    interrupted_calls.reset();
    signaled_count = 0;
    var rounds: usize = 0;
    while (rounds < limits.threads_max) : (rounds += 1) {
        const new = try signalNew();
        try waitStopped();
        if (new == 0) break;
    }
    if (slot_count.load(.acquire) > slots.len) return error.TooManyThreads;
    assert(stopped_count.load(.acquire) == slot_count.load(.acquire));
    return @intCast(slot_count.load(.acquire));
}

/// Signals the threads of /proc/self/task not signalled yet; returns how many.
fn signalNew() Error!usize {
    const pid = linux.getpid();
    var tids: [limits.threads_max]i32 = undefined;
    const count = proc.listNumbers("/proc/self/task", &tids, null) catch |err| switch (err) {
        error.TooLarge => return error.TooManyThreads,
        else => return error.ListFailed,
    };
    var new: usize = 0;
    for (tids[0..count]) |tid| {
        if (tid == checkpoint_tid or emulator.isForeign(tid)) continue;
        if (std.mem.indexOfScalar(i32, signaled[0..signaled_count], tid) != null) continue;
        if (signaled_count == signaled.len) return error.TooManyThreads;
        interrupted_calls.note(tid);
        if (send(pid, tid) != .SUCCESS) continue;
        signaled[signaled_count] = tid;
        signaled_count += 1;
        new += 1;
    }
    assert(signaled_count <= signaled.len);
    return new;
}

/// The checkpoint signal with our value, so that the handler tells it from the program's.
fn send(pid: i32, tid: i32) linux.E {
    var info = std.mem.zeroes(linux.siginfo_t);
    info.signo = signal_number;
    info.code = si_queue;
    info.fields.common.first.piduid.pid = pid;
    info.fields.common.first.piduid.uid = linux.getuid();
    info.fields.common.second.value = .{ .ptr = @ptrFromInt(signal_cookie) };
    const address = @intFromPtr(&info);
    const signal: usize = signal_number;
    const rc = linux.syscall4(.rt_tgsigqueueinfo, @intCast(pid), @intCast(tid), signal, address);
    return linux.E.init(rc);
}

/// Waits until every signalled thread is in the handler or gone. A thread that ends first
/// (it was exiting, or blocked every signal on its way out, as glibc does) never comes.
fn waitStopped() Error!void {
    const poll_ms = 1;
    var waited_ms: u32 = 0;
    var expected: u32 = @intCast(signaled_count);
    while (stopped_count.load(.acquire) < expected) {
        if (waited_ms >= limits.suspend_timeout_ms) return error.Timeout;
        const seen = stopped_count.load(.acquire);
        var timeout: linux.timespec = .{ .sec = 0, .nsec = poll_ms * std.time.ns_per_ms };
        futexWait(&stopped_count, seen, &timeout);
        waited_ms += poll_ms;
        if (waited_ms % 4 == 0) expected = @intCast(signaled_count - goneCount());
        if (waited_ms == limits.suspend_blocked_polls_max and blockingThread() != null) {
            return error.ThreadBlocksCheckpointSignal;
        }
    }
}

/// A signalled thread, alive and not stopped, whose mask blocks the checkpoint signal.
fn blockingThread() ?i32 {
    const pid = linux.getpid();
    for (signaled[0..signaled_count]) |tid| {
        if (slotOf(tid) != null) continue;
        if (linux.E.init(linux.tgkill(pid, tid, 0)) != .SUCCESS) continue;
        if (blockedMask(tid) & (@as(u64, 1) << @intCast(signal_number - 1)) != 0) return tid;
    }
    return null;
}

/// SigBlk of /proc/self/task/<tid>/status, in the program's numbering; 0 when unreadable.
fn blockedMask(tid: i32) u64 {
    assert(tid > 0);
    var path_buffer: [64]u8 = undefined;
    const path = std.fmt.bufPrintZ(&path_buffer, "/proc/self/task/{d}/status", .{tid}) catch
        unreachable;
    return emulator.programMask(emulator.statusMask(path, "SigBlk"));
}

/// Signalled threads that no longer exist and never took a slot.
fn goneCount() usize {
    const pid = linux.getpid();
    var gone: usize = 0;
    for (signaled[0..signaled_count]) |tid| {
        if (linux.E.init(linux.tgkill(pid, tid, 0)) != .SRCH) continue;
        if (slotOf(tid) != null) continue;
        gone += 1;
    }
    return gone;
}

/// A thread's id now, from its id at the checkpoint (they differ after a restart).
pub fn currentTid(checkpoint_time_tid: i32) ?i32 {
    const slot = slotOf(checkpoint_time_tid) orelse return null;
    assert(slot.current_tid > 0);
    return slot.current_tid;
}

fn slotOf(tid: i32) ?*Slot {
    for (saved()) |*slot| if (slot.tid == tid) return slot;
    return null;
}

/// The program may have replaced our handler: then no thread would ever stop.
fn handlerInstalled() bool {
    var action: [4]usize = undefined;
    const rc = linux.syscall4(.rt_sigaction, signal_number, 0, @intFromPtr(&action), 8);
    assert(linux.E.init(rc) == .SUCCESS);
    return action[0] == @intFromPtr(&handler);
}

fn waitCount(word: *std.atomic.Value(u32), expected: u32) Error!void {
    var waited_ms: u32 = 0;
    while (word.load(.acquire) < expected) {
        if (waited_ms >= limits.suspend_timeout_ms) return error.Timeout;
        const seen = word.load(.acquire);
        if (seen >= expected) break;
        var timeout: linux.timespec = .{ .sec = 0, .nsec = 10 * std.time.ns_per_ms };
        futexWait(word, seen, &timeout);
        waited_ms += 10;
    }
}

/// Lets every suspended (or restarted) thread return from the handler.
pub fn releaseAll() void {
    suspending.store(false, .release);
    _ = release_generation.fetchAdd(1, .acq_rel);
    wake(&release_generation);
}

/// The slots filled by the last suspension.
pub fn saved() []Slot {
    const count = @min(slot_count.load(.acquire), slots.len);
    return slots[0..count];
}

/// The thread that continues as the restarted process's main thread.
pub fn mainSlot() ?*Slot {
    const all = saved();
    for (all) |*slot| if (slot.role == .main) return slot;
    return if (all.len > 0) &all[0] else null;
}

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    assert(context.writer.fd >= 0);
    for (saved()) |*slot| {
        try saveOne(context, slot.tid, slot.role, slot.thread_pointer, &slot.context);
    }
    try saveOne(context, checkpoint_tid, .checkpoint, 0, &checkpoint_context);
}

fn saveOne(
    context: *kinds.SaveContext,
    tid: i32,
    role: image.ThreadRole,
    thread_pointer: usize,
    saved_context: *const arch.Context,
) kinds.SaveError!void {
    assert(tid > 0);
    const record: image.Thread = .{
        .tid = @intCast(tid),
        .role = @intFromEnum(role),
        .thread_pointer = thread_pointer,
        .stack_pointer = arch.stackPointer(saved_context),
        .instruction_pointer = arch.instructionPointer(saved_context),
    };
    try context.writer.record(.thread, &.{std.mem.asBytes(&record)}, &.{}, 0, 0);
}

/// Restart, on the main thread, before any other thread exists: glibc's cached tid.
pub fn fixMainTid() void {
    const main = mainSlot() orelse return;
    if (!main.tid_cached) return;
    const field = tidField(main.thread_pointer, tid_offset.?);
    field.* = linux.gettid();
    assert(field.* > 0);
}

/// Restart: re-creates every saved thread but the main one, and the checkpoint thread.
/// Signals are all blocked here; each thread gets its own mask back from its signal frame.
pub fn recreate() void {
    restarted_count.store(0, .release);
    const main = mainSlot();
    for (saved(), 0..) |*slot, index| {
        if (slot == main) continue;
        recreateOne(slot, index);
    }
    const flags = linux.CLONE.VM | linux.CLONE.FS | linux.CLONE.FILES | linux.CLONE.SIGHAND |
        linux.CLONE.THREAD | linux.CLONE.SYSVSEM;
    const stack = stackBelow(arch.stackPointer(&checkpoint_context));
    const rc = linux.clone(resumeCheckpointThread, stack, flags, 0, null, 0, null);
    assert(linux.E.init(rc) == .SUCCESS);
}

/// pthread_create's clone flags: glibc's cached tid is written by the kernel before the
/// thread runs, and cleared (with a futex wake) when it ends, which pthread_join waits for.
fn recreateOne(slot: *const Slot, index: usize) void {
    assert(index < slots.len);
    var flags: u32 = linux.CLONE.VM | linux.CLONE.FS | linux.CLONE.FILES |
        linux.CLONE.SIGHAND | linux.CLONE.THREAD | linux.CLONE.SYSVSEM | linux.CLONE.SETTLS;
    var tid_field: ?*i32 = null;
    if (slot.tid_cached) {
        flags |= linux.CLONE.PARENT_SETTID;
        tid_field = tidField(slot.thread_pointer, tid_offset.?);
    }
    const clear_tid = slot.state.clear_tid_address;
    if (clear_tid != 0) flags |= linux.CLONE.CHILD_CLEARTID;
    const stack = stackBelow(arch.stackPointer(&slot.context));
    // i386 passes the thread pointer as a descriptor for clone's TLS argument.
    var storage: arch.TlsStorage = undefined;
    const tls = arch.cloneTls(slot.thread_pointer, &storage);
    const rc = linux.clone(
        resumeThread,
        stack,
        flags,
        index,
        tid_field,
        tls,
        @ptrFromInt(clear_tid),
    );
    assert(linux.E.init(rc) == .SUCCESS);
}

/// Restart, on the main thread: back into its handler. Never returns.
pub fn resumeMain() noreturn {
    const main = mainSlot() orelse @panic("restart: no thread was saved");
    arch.restoreContext(&main.context, 1);
}

/// A stack for a re-created thread's first instructions: below everything live at the save.
fn stackBelow(stack_pointer: usize) usize {
    assert(stack_pointer > limits.restart_thread_stack_gap);
    return (stack_pointer - limits.restart_thread_stack_gap) & ~@as(usize, 15);
}

fn resumeThread(index: usize) callconv(.c) u8 {
    arch.restoreContext(&slots[index].context, 1);
}

fn resumeCheckpointThread(_: usize) callconv(.c) u8 {
    checkpoint_tid = linux.gettid();
    nameCheckpointThread();
    arch.restoreContext(&checkpoint_context, 1);
}

/// Called on the checkpoint thread when it starts, and again when a restart re-creates it.
pub fn nameCheckpointThread() void {
    const name = "dmtcp:ckpt";
    var buffer: [16]u8 = [_]u8{0} ** 16;
    @memcpy(buffer[0..name.len], name);
    _ = linux.prctl(@intFromEnum(linux.PR.SET_NAME), @intFromPtr(&buffer), 0, 0, 0);
}

/// Restart, on the checkpoint thread: waits until every application thread is back in its
/// handler, so that none runs on mtcp_restart's stack any more, then notes each one's new id.
pub fn waitRestarted() Error!void {
    try waitCount(&restarted_count, @intCast(saved().len));
    thread_ids.reset();
    for (saved()) |slot| thread_ids.add(slot.virtual_tid, slot.current_tid);
}

test "threads: a thread's blocked checkpoint signal is seen in its mask" {
    const set: u64 = 1 << (linux.SIG.USR2 - 1);
    var old: u64 = 0;
    _ = linux.syscall4(.rt_sigprocmask, linux.SIG.BLOCK, @intFromPtr(&set), @intFromPtr(&old), 8);
    defer _ = linux.syscall4(.rt_sigprocmask, linux.SIG.SETMASK, @intFromPtr(&old), 0, 8);
    try std.testing.expect(blockedMask(linux.gettid()) & set != 0);
}

test "threads: the glibc thread id is found in the thread control block" {
    if (!arch.supported) return error.SkipZigTest;
    if (!@import("builtin").link_libc) return error.SkipZigTest;
    const offset = findTidOffset() orelse return error.TestUnexpectedResult;
    try std.testing.expectEqual(arch.glibc_tid_offset, offset);
}
