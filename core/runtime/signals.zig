//! Signal dispositions: the kernel keeps them per process and forgets them across the exec
//! of mtcp_restart, so every signal whose action is not the default one is saved (handler, flags,
//! restorer, mask, straight from rt_sigaction) and set again at restart. Our own checkpoint
//! signal's handler is one of them. Ignored signals (SIG_IGN) are saved like handlers; flags
//! such as SA_NOCLDSTOP, SA_NOCLDWAIT, SA_ONSTACK and SA_RESTART come back with them.
//! Elsewhere: pending signals (pending_signals.zig), timers and alarm() (timers.zig), masks
//! and alternate signal stacks, which are per thread (threads.zig, thread_state.zig).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const image = @import("format").image;
const kinds = @import("kinds.zig");

pub const kind: kinds.Kind = .{ .tag = .signal_action, .save = save, .restore = restore };

/// The kernel's `struct sigaction` for rt_sigaction on x86, arm and aarch64 (64 signals).
pub const KernelAction = extern struct {
    handler: usize,
    flags: usize,
    restorer: usize,
    mask: u64,
};

const signal_count = 64;
const sa_restorer: usize = 0x04000000;

/// Per signal (index signal - 1): its handler returns through the runtime's trampoline,
/// given because it had none. Program threads may call sigaction concurrently.
var restorer_given: [signal_count]std.atomic.Value(bool) = @splat(.init(false));

/// A handler installed without SA_RESTORER (glibc sets none on aarch64) returns through the
/// system's trampoline: the vDSO's, or the page qemu-user keeps, which a restart may have had
/// to give to the program's memory (docs/architectures.md), and the handler then crashes as
/// it returns. Such a handler gets the runtime's own trampoline, which lives in this library
/// and so is where it was after a restart; the kernel (and qemu) honour SA_RESTORER.
/// Only where one trampoline (rt_sigreturn) serves every handler: 32-bit ARM and i386 build a
/// different frame without SA_SIGINFO, and glibc always sets SA_RESTORER there anyway.
pub fn needsRestorer(handler: usize, flags: usize) bool {
    const sig_ign = 1;
    if (handler <= sig_ign or flags & sa_restorer != 0) return false;
    return flags & linux.SA.SIGINFO != 0 or one_trampoline;
}

const one_trampoline = &linux.restore == &linux.restore_rt;

/// The trampoline `needsRestorer` asks for.
pub fn restorer() usize {
    return @intFromPtr(&linux.restore_rt);
}

/// Whether `signal`'s handler in the kernel returns through the trampoline we gave it.
pub fn restorerGiven(signal: u32) bool {
    assert(signal >= 1 and signal <= signal_count);
    return restorer_given[signal - 1].load(.acquire);
}

/// Notes whether the kernel's action for `signal` now returns through our trampoline.
pub fn noteRestorer(signal: u32) void {
    assert(signal >= 1 and signal <= signal_count);
    var action: KernelAction = undefined;
    const rc = linux.syscall4(.rt_sigaction, signal, 0, @intFromPtr(&action), 8);
    if (linux.E.init(rc) != .SUCCESS) return;
    const ours = action.flags & sa_restorer != 0 and action.restorer == restorer();
    restorer_given[signal - 1].store(ours, .release);
}

/// Gives every handler installed so far without a trampoline the runtime's (`needsRestorer`):
/// at start-up, for those set before the runtime's constructor ran, and at each checkpoint,
/// for those glibc set by itself since (its SIGCANCEL and SIGSETXID handlers on aarch64).
pub fn giveRestorers() void {
    var signal: u32 = 1;
    while (signal <= signal_count) : (signal += 1) {
        if (signal == linux.SIG.KILL or signal == linux.SIG.STOP) continue;
        giveRestorer(signal);
    }
}

/// Gives `signal`'s handler the runtime's trampoline if it needs one, and notes which it has.
pub fn giveRestorer(signal: u32) void {
    assert(signal >= 1 and signal <= signal_count);
    var action: KernelAction = undefined;
    const rc = linux.syscall4(.rt_sigaction, signal, 0, @intFromPtr(&action), 8);
    if (linux.E.init(rc) != .SUCCESS) return;
    if (needsRestorer(action.handler, action.flags)) {
        action.flags |= sa_restorer;
        action.restorer = restorer();
        _ = linux.syscall4(.rt_sigaction, signal, @intFromPtr(&action), 0, 8);
    }
    noteRestorer(signal);
}

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    // Handlers glibc installed since start-up by itself (SIGCANCEL, SIGSETXID on aarch64),
    // not through our sigaction: the image then holds no handler that needs the system's
    // trampoline, which mtcp_restart may have to give away.
    giveRestorers();
    var signal: u32 = 1;
    while (signal <= signal_count) : (signal += 1) {
        if (signal == linux.SIG.KILL or signal == linux.SIG.STOP) continue;
        var action: KernelAction = undefined;
        const rc = linux.syscall4(.rt_sigaction, signal, 0, @intFromPtr(&action), 8);
        if (linux.E.init(rc) != .SUCCESS) continue;
        // SIG_DFL with no flags and no mask is what a new process has; SIG_DFL with flags is
        // not (SIGCHLD's SA_NOCLDSTOP and SA_NOCLDWAIT act without a handler).
        if (action.handler == 0 and action.flags & ~sa_restorer == 0 and action.mask == 0) continue;
        const record: image.SignalAction = .{
            .signal = signal,
            .handler = action.handler,
            .flags = action.flags,
            .restorer = action.restorer,
            .mask = action.mask,
        };
        try context.writer.record(.signal_action, &.{std.mem.asBytes(&record)}, &.{}, 0, 0);
    }
}

fn restore(context: *kinds.RestoreContext, record: kinds.Record) kinds.RestoreError!void {
    _ = context;
    assert(record.header.tag == @intFromEnum(image.RecordTag.signal_action));
    const saved_bytes = record.body[0..@sizeOf(image.SignalAction)];
    const saved = std.mem.bytesToValue(image.SignalAction, saved_bytes);
    if (saved.signal == 0 or saved.signal > signal_count) return error.BadRecord;
    var action: KernelAction = .{
        .handler = @intCast(saved.handler),
        .flags = @intCast(saved.flags),
        .restorer = @intCast(saved.restorer),
        .mask = saved.mask,
    };
    // The system's trampoline may be gone now (an image made before the runtime gave ours).
    if (needsRestorer(action.handler, action.flags)) {
        action.flags |= sa_restorer;
        action.restorer = restorer();
    }
    const rc = linux.syscall4(.rt_sigaction, saved.signal, @intFromPtr(&action), 0, 8);
    if (linux.E.init(rc) != .SUCCESS) return error.Unrestorable;
    noteRestorer(saved.signal);
}

test "signals: a disposition survives save and restore" {
    var action: KernelAction = undefined;
    const rc = linux.syscall4(.rt_sigaction, linux.SIG.WINCH, 0, @intFromPtr(&action), 8);
    try std.testing.expectEqual(linux.E.SUCCESS, linux.E.init(rc));
    var record_header: image.RecordHeader = .{
        .tag = @intFromEnum(image.RecordTag.signal_action),
        .body_size = @sizeOf(image.SignalAction),
    };
    const saved: image.SignalAction = .{
        .signal = linux.SIG.WINCH,
        .handler = 1,
        .flags = 0,
        .restorer = 0,
        .mask = 0,
    };
    var body: [@sizeOf(image.SignalAction)]u8 align(8) = std.mem.toBytes(saved);
    var fd: i32 = -1;
    var info: image.RestartInfo = undefined;
    var context: kinds.RestoreContext = .{ .info = &info, .image_fd = &fd, .coordinator_fd = &fd };
    try restore(&context, .{ .header = &record_header, .body = &body });
    var now: KernelAction = undefined;
    _ = linux.syscall4(.rt_sigaction, linux.SIG.WINCH, 0, @intFromPtr(&now), 8);
    try std.testing.expectEqual(@as(usize, 1), now.handler); // SIG_IGN
    _ = linux.syscall4(.rt_sigaction, linux.SIG.WINCH, @intFromPtr(&action), 0, 8);
}

test "signals: a handler without a trampoline gets the runtime's, and only such a one" {
    const Handler = struct {
        fn run(signal: i32) callconv(.c) void {
            _ = signal;
        }
    };
    const handler = @intFromPtr(&Handler.run);
    try std.testing.expect(!needsRestorer(0, 0));
    try std.testing.expect(!needsRestorer(1, 0));
    try std.testing.expect(!needsRestorer(handler, sa_restorer));
    try std.testing.expect(needsRestorer(handler, linux.SA.SIGINFO));
    var old: KernelAction = undefined;
    _ = linux.syscall4(.rt_sigaction, linux.SIG.WINCH, 0, @intFromPtr(&old), 8);
    defer _ = linux.syscall4(.rt_sigaction, linux.SIG.WINCH, @intFromPtr(&old), 0, 8);
    const bare: KernelAction = .{
        .handler = handler,
        .flags = linux.SA.SIGINFO,
        .restorer = 0,
        .mask = 0,
    };
    _ = linux.syscall4(.rt_sigaction, linux.SIG.WINCH, @intFromPtr(&bare), 0, 8);
    giveRestorers();
    try std.testing.expect(restorerGiven(linux.SIG.WINCH));
    var now: KernelAction = undefined;
    _ = linux.syscall4(.rt_sigaction, linux.SIG.WINCH, 0, @intFromPtr(&now), 8);
    try std.testing.expectEqual(restorer(), now.restorer);
    _ = linux.syscall4(.rt_sigaction, linux.SIG.WINCH, @intFromPtr(&old), 0, 8);
    noteRestorer(linux.SIG.WINCH);
    try std.testing.expect(!restorerGiven(linux.SIG.WINCH));
}
