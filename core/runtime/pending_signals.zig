//! Pending signals: generated but not yet delivered at the checkpoint (blocked by the
//! program, or arrived while its threads were suspended), process-wide or for one thread,
//! real-time ones with their queued values. The kernel forgets them across the exec of
//! mtcp_restart, and nothing can read them without taking them: so they are taken, recorded,
//! and queued again once the checkpoint is over (continued or restarted), each exactly once.
//!
//! Taking: each thread takes its own in the checkpoint handler (rt_sigtimedwait takes a
//! thread's own queue before the process's; /proc/thread-self/status SigPnd says which
//! signals are its own, so it stops before touching the process's). The checkpoint thread
//! then takes the process's, in `save`, while every program thread is suspended.
//!
//! Queuing again: the kernel lets only a process's main thread queue a siginfo that claims to
//! come from the kernel or from kill (si_code >= 0, or SI_TKILL), so the main thread does it
//! in its handler after the release, with rt_sigqueueinfo (process) or rt_tgsigqueueinfo
//! (thread, under its new id after a restart), before it returns to the program; the
//! checkpoint thread waits for it before it reports the resume. Without a main thread the
//! checkpoint thread queues them itself, as SI_QUEUE where the kernel refuses the original.
//!
//! Our own checkpoint signal, SIGKILL and SIGSTOP are never taken.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const kinds = @import("kinds.zig");
const emulator = @import("emulator.zig");

pub const kind: kinds.Kind = .{
    .tag = .pending_signal,
    .save = save,
    .restore = kinds.restoreNothing,
};

const Entry = struct {
    /// 0 for the process; else the thread's id at the checkpoint.
    tid: i32,
    info: [image.siginfo_size]u8 align(8),
};

var entries: [limits.pending_signals_max]Entry = undefined;
/// Entries taken in this checkpoint; back to 0 once they are queued again (a futex word).
var entry_count: std.atomic.Value(u32) = .init(0);
var checkpoint_signal: u8 = 0;

const si_queue = -1;
const si_tkill = -6;

pub fn install(signal: u8) void {
    assert(signal > 0 and signal <= 64);
    checkpoint_signal = signal;
}

fn bit(signal: u32) u64 {
    assert(signal >= 1 and signal <= 64);
    return @as(u64, 1) << @intCast(signal - 1);
}

/// Signals that may be taken: all but ours, SIGKILL and SIGSTOP.
fn takeable() u64 {
    assert(checkpoint_signal != 0);
    return ~(bit(checkpoint_signal) | bit(linux.SIG.KILL) | bit(linux.SIG.STOP));
}

/// Takes one pending signal of `set`; false when none is left.
fn takeOne(set: u64, tid: i32) bool {
    const index = entry_count.load(.acquire);
    if (index >= entries.len) return false;
    var info: [image.siginfo_size]u8 align(8) = undefined;
    const zero: linux.timespec = .{ .sec = 0, .nsec = 0 };
    const rc = linux.syscall4(
        .rt_sigtimedwait,
        @intFromPtr(&set),
        @intFromPtr(&info),
        @intFromPtr(&zero),
        8,
    );
    if (linux.E.init(rc) != .SUCCESS) return false;
    // Concurrent handlers each take their own slot.
    const slot = entry_count.fetchAdd(1, .acq_rel);
    if (slot >= entries.len) return false; // Lost: limits.pending_signals_max is exceeded.
    entries[slot] = .{ .tid = tid, .info = info };
    assert(rc == std.mem.readInt(u32, info[0..4], .little));
    return true;
}

/// In the checkpoint handler, on the thread itself: takes the signals pending for it alone.
pub fn takeThread(tid: i32) void {
    assert(tid > 0);
    var pending: u64 = 0;
    _ = linux.syscall2(.rt_sigpending, @intFromPtr(&pending), 8);
    if (pending & takeable() == 0) return; // The usual case: one system call.
    var own = ownPending() & takeable();
    var rounds: usize = 0;
    while (own != 0 and rounds < limits.pending_signals_max) : (rounds += 1) {
        const signal: u32 = @ctz(own) + 1;
        if (!takeOne(bit(signal), tid)) return;
        // A real-time signal may be queued several times: ask again what is left of ours.
        own = if (signal >= 32) ownPending() & takeable() else own & ~bit(signal);
    }
}

/// SigPnd of /proc/thread-self/status: the calling thread's own pending signals, in the
/// program's numbering (an emulator shows its host's).
fn ownPending() u64 {
    return emulator.programMask(emulator.ownPendingKernel());
}

/// Checkpoint thread: takes the process's pending signals, then records them all.
fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    assert(context.writer.fd >= 0);
    var rounds: usize = 0;
    while (rounds < limits.pending_signals_max) : (rounds += 1) {
        if (!takeOne(takeable(), 0)) break;
    }
    const count = @min(entry_count.load(.acquire), entries.len);
    for (entries[0..count]) |*entry| {
        const record: image.PendingSignal = .{
            .tid = @intCast(entry.tid),
            .signal = std.mem.readInt(u32, entry.info[0..4], .little),
            .info = entry.info,
        };
        try context.writer.record(.pending_signal, &.{std.mem.asBytes(&record)}, &.{}, 0, 0);
    }
}

/// Queues every taken signal again; `currentTid` maps a checkpoint-time thread id to the
/// thread's id now. Run by the main thread after the release (see the top of the file).
pub fn queueAgain(currentTid: *const fn (i32) ?i32) void {
    const count = @min(entry_count.load(.acquire), entries.len);
    const pid = linux.getpid();
    for (entries[0..count]) |*entry| {
        const signal = std.mem.readInt(u32, entry.info[0..4], .little);
        const tid = if (entry.tid == 0) null else currentTid(entry.tid) orelse continue;
        if (queue(pid, tid, signal, &entry.info) == .PERM) {
            // Not the main thread: the kernel wants a code that admits it came from us.
            std.mem.writeInt(i32, entry.info[8..12], si_queue, .little);
            _ = queue(pid, tid, signal, &entry.info);
        }
    }
    entry_count.store(0, .release);
    const op: linux.FUTEX_OP = .{ .cmd = .WAKE, .private = true };
    _ = linux.futex(&entry_count.raw, op, 1, .{ .timeout = null }, null, 0);
}

fn queue(pid: i32, tid: ?i32, signal: u32, info: *const [image.siginfo_size]u8) linux.E {
    assert(signal >= 1 and signal <= 64);
    const address = @intFromPtr(info);
    const rc = if (tid) |thread|
        linux.syscall4(.rt_tgsigqueueinfo, @intCast(pid), @intCast(thread), signal, address)
    else
        linux.syscall3(.rt_sigqueueinfo, @intCast(pid), signal, address);
    return linux.E.init(rc);
}

/// Checkpoint thread, after the release: waits until the main thread queued them again.
/// False when it did not in time (no main thread): the caller then queues them itself.
pub fn waitQueued() bool {
    var waited_ms: u32 = 0;
    while (entry_count.load(.acquire) != 0) : (waited_ms += 10) {
        if (waited_ms >= limits.suspend_timeout_ms) return false;
        const seen = entry_count.load(.acquire);
        if (seen == 0) break;
        var timeout: linux.timespec = .{ .sec = 0, .nsec = 10 * std.time.ns_per_ms };
        const op: linux.FUTEX_OP = .{ .cmd = .WAIT, .private = true };
        _ = linux.futex(&entry_count.raw, op, seen, .{ .timeout = &timeout }, null, 0);
    }
    return true;
}

pub fn takenCount() u32 {
    return entry_count.load(.acquire);
}

test "pending_signals: a blocked signal is taken and queued again once" {
    install(linux.SIG.USR2);
    var blocked = linux.sigemptyset();
    linux.sigaddset(&blocked, linux.SIG.WINCH);
    var old: linux.sigset_t = undefined;
    _ = linux.sigprocmask(linux.SIG.BLOCK, &blocked, &old);
    defer _ = linux.sigprocmask(linux.SIG.SETMASK, &old, null);
    _ = linux.tgkill(linux.getpid(), linux.gettid(), linux.SIG.WINCH);
    takeThread(linux.gettid());
    try std.testing.expectEqual(@as(u32, 1), takenCount());
    try std.testing.expectEqual(@as(u64, 0), ownPending() & bit(linux.SIG.WINCH));
    const Same = struct {
        fn tid(old_tid: i32) ?i32 {
            return old_tid;
        }
    };
    queueAgain(Same.tid);
    try std.testing.expectEqual(@as(u32, 0), takenCount());
    try std.testing.expect(ownPending() & bit(linux.SIG.WINCH) != 0);
    var set: u64 = bit(linux.SIG.WINCH);
    const zero: linux.timespec = .{ .sec = 0, .nsec = 0 };
    const rc = linux.syscall4(.rt_sigtimedwait, @intFromPtr(&set), 0, @intFromPtr(&zero), 8);
    try std.testing.expectEqual(@as(usize, linux.SIG.WINCH), rc);
}
