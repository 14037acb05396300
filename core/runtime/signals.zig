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

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
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
    const action: KernelAction = .{
        .handler = @intCast(saved.handler),
        .flags = @intCast(saved.flags),
        .restorer = @intCast(saved.restorer),
        .mask = saved.mask,
    };
    const rc = linux.syscall4(.rt_sigaction, saved.signal, @intFromPtr(&action), 0, 8);
    if (linux.E.init(rc) != .SUCCESS) return error.Unrestorable;
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
