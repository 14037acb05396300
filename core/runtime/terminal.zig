//! The controlling terminal: a restarted computation runs on the terminal of `dmtcp restart`
//! (its processes keep the restarter's session unless they led their own), so what comes back
//! is what the program set on its terminal, not the terminal itself: the settings (echo,
//! canonical mode, ... as tcsetattr set them) and which process group was in the foreground.
//! A job-control program that gave the terminal to a child's group would otherwise find that
//! child stopped by SIGTTIN at its first read. A size that changed since the checkpoint is
//! announced with SIGWINCH to the foreground group, as the kernel does when a terminal is
//! resized. Restarted without a terminal (from a script), there is nothing to restore.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const image = @import("format").image;
const kinds = @import("kinds.zig");
const ptys = @import("ptys.zig");

pub const kind: kinds.Kind = .{ .tag = .terminal, .save = save, .restore = restore };

const tty = ptys.tty;
const ioctl = ptys.ioctl;

const Winsize = extern struct { rows: u16, columns: u16, x_pixels: u16, y_pixels: u16 };

/// The kernel's id of the caller's group (the program's getpgid is a wrapper of ours).
fn ownGroup() i32 {
    return @intCast(@as(isize, @bitCast(linux.syscall1(.getpgid, 0))));
}

/// The first of 0, 1 and 2 that is the caller's controlling terminal, and its foreground
/// group (TIOCGPGRP fails with ENOTTY on any terminal that is not the caller's own).
fn controllingTerminal(foreground_group: *i32) ?i32 {
    for ([_]i32{ 0, 1, 2 }) |fd| {
        if (ioctl(fd, tty.tiocgpgrp, @intFromPtr(foreground_group)) == .SUCCESS) return fd;
    }
    return null;
}

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    var foreground_group: i32 = 0;
    const fd = controllingTerminal(&foreground_group) orelse return;
    var record: image.Terminal = std.mem.zeroes(image.Terminal);
    record.fd = fd;
    record.foreground = @intFromBool(foreground_group == ownGroup());
    if (ioctl(fd, tty.tcgets, @intFromPtr(&record.termios)) != .SUCCESS) return;
    var size: Winsize = std.mem.zeroes(Winsize);
    _ = ioctl(fd, tty.tiocgwinsz, @intFromPtr(&size));
    record.rows = size.rows;
    record.columns = size.columns;
    record.x_pixels = size.x_pixels;
    record.y_pixels = size.y_pixels;
    if (ptys.describe(fd)) |pty| {
        if (pty.role == @intFromEnum(image.PtyRole.slave)) record.pty = pty.index + 1;
    }
    try context.writer.record(.terminal, &.{std.mem.asBytes(&record)}, &.{}, 0, 0);
}

/// Runs with every signal blocked (restart.zig), which is what lets a process outside the
/// foreground group take the foreground and set the terminal without SIGTTOU stopping it.
fn restore(context: *kinds.RestoreContext, record: kinds.Record) kinds.RestoreError!void {
    _ = context;
    assert(record.header.tag == @intFromEnum(image.RecordTag.terminal));
    const saved = std.mem.bytesToValue(image.Terminal, record.body[0..@sizeOf(image.Terminal)]);
    var foreground_group: i32 = 0;
    const fd = controllingTerminal(&foreground_group) orelse return;
    if (ioctl(fd, tty.tcsets, @intFromPtr(&saved.termios)) != .SUCCESS) return error.Unrestorable;
    if (saved.foreground == 0) return;
    const group: i32 = ownGroup();
    if (ioctl(fd, tty.tiocspgrp, @intFromPtr(&group)) != .SUCCESS) return error.Unrestorable;
    var size: Winsize = std.mem.zeroes(Winsize);
    _ = ioctl(fd, tty.tiocgwinsz, @intFromPtr(&size));
    if (size.rows != saved.rows or size.columns != saved.columns) {
        // Delivered once the threads' masks are back.
        _ = linux.kill(linux.getpid(), linux.SIG.WINCH);
    }
}

test "terminal: the generic ioctl numbers are the standard library's" {
    try std.testing.expectEqual(@as(u32, tty.tcgets), linux.T.CGETS);
    try std.testing.expectEqual(@as(u32, tty.tcsets), linux.T.CSETS);
    try std.testing.expectEqual(@as(u32, tty.tiocgpgrp), linux.T.IOCGPGRP);
    try std.testing.expectEqual(@as(u32, tty.tiocspgrp), linux.T.IOCSPGRP);
    try std.testing.expectEqual(@as(u32, tty.tiocgwinsz), linux.T.IOCGWINSZ);
}
