//! Pseudo-terminals the computation holds: a program that opens /dev/ptmx and runs a child
//! on the slave (script, expect, a terminal multiplexer, Python's pty module). Saved: every
//! descriptor on either end, with the pty's number, its flags, the slave's settings and the
//! window size. At restart mtcp_restart makes one new pty per number whose master the
//! images hold, with those settings (core/restart/ptys.zig), hands both ends down, and
//! makes the slave the controlling terminal again of the session leader that had it; here
//! each process moves its ends to their numbers. The new pty has another number: a program
//! that kept the old /dev/pts/N name sees a name that is gone. A slave whose master is
//! outside the computation (the user's own terminal) is no pty of ours: on 0, 1 and 2 the
//! restarting process's own descriptor is kept (files.zig), elsewhere it is left closed.
//! Bytes waiting in the pty are saved by a process holding its master: what the slave side
//! wrote that the master had not read (read from the master), and what was written to the
//! master that the slave side had not read (read from the slave, opened by its name for
//! that); both are written back at once (ptyRefillTermios), since the program goes on, and
//! into the new pty at restart. A master several processes hold is drained by each in turn.
//! Not saved: a partial line of canonical input, packet mode, locks.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");
const inherited = @import("inherited.zig");

pub const kind: kinds.Kind = .{ .tag = .pty, .save = save, .restore = restore };

/// The generic tty ioctls (include/uapi/asm-generic/ioctls.h), which x86, arm and aarch64
/// use; terminal.zig's too.
pub const tty = struct {
    pub const tcgets = 0x5401;
    pub const tcsets = 0x5402;
    pub const tiocgpgrp = 0x540f;
    pub const tiocspgrp = 0x5410;
    pub const tiocgwinsz = 0x5413;
    pub const fionread = 0x541b;
    /// TIOCGPTN: _IOR('T', 0x30, unsigned int).
    pub const tiocgptn = 0x80045430;
};
const o_settable: u32 = @bitCast(linux.O{ .NONBLOCK = true, .ASYNC = true });

var path_buffer: [limits.path_size_max]u8 = undefined;
var queue: [2 * limits.pty_queue_size_max + 8]u8 = undefined;

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    const fds = try context.programFds();
    for (fds) |fd| {
        var record = describe(fd) orelse continue;
        const waiting = if (record.role == @intFromEnum(image.PtyRole.master))
            drain(fd, &record)
        else
            queue[0..0];
        const padded: usize = @intCast(image.alignForward(waiting.len, 8));
        @memset(queue[waiting.len..padded], 0);
        var data = [1]std.posix.iovec_const{.{ .base = &queue, .len = padded }};
        const checksum: u64 = if (padded == 0) 0 else image.hash(queue[0..padded]);
        const body = [_][]const u8{std.mem.asBytes(&record)};
        try context.writer.record(.pty, &body, data[0..@intFromBool(padded > 0)], padded, checksum);
    }
}

/// The bytes waiting in the pty of `master`, each way, into `queue`; written back at once.
fn drain(master: i32, record: *image.Pty) []const u8 {
    var name: [32]u8 = undefined;
    const path = std.fmt.bufPrintZ(&name, "/dev/pts/{d}", .{record.index}) catch unreachable;
    const flags: linux.O = .{ .ACCMODE = .RDWR, .NOCTTY = true, .NONBLOCK = true, .CLOEXEC = true };
    const rc = linux.openat(linux.AT.FDCWD, path, flags, 0);
    if (linux.E.init(rc) != .SUCCESS) return queue[0..0];
    const slave: i32 = @intCast(rc);
    defer _ = linux.close(slave);
    const size = limits.pty_queue_size_max;
    const output = readWaiting(master, queue[0..size]);
    const input = readWaiting(slave, queue[output.len..][0..size]);
    const quiet = image.ptyRefillTermios(record.termios);
    _ = ioctl(slave, tty.tcsets, @intFromPtr(&quiet));
    writeAll(slave, output);
    writeAll(master, input);
    _ = ioctl(slave, tty.tcsets, @intFromPtr(&record.termios));
    record.output_size = @intCast(output.len);
    record.input_size = @intCast(input.len);
    return queue[0 .. output.len + input.len];
}

/// What FIONREAD says is waiting on `fd`, read without blocking (it is there).
fn readWaiting(fd: i32, buffer: []u8) []u8 {
    var waiting: i32 = 0;
    const asked = ioctl(fd, tty.fionread, @intFromPtr(&waiting));
    if (asked != .SUCCESS or waiting <= 0) return buffer[0..0];
    const wanted = @min(@as(usize, @intCast(waiting)), buffer.len);
    var done: usize = 0;
    var reads: usize = 0;
    // A canonical slave gives one line per read.
    while (done < wanted and reads < 4096) : (reads += 1) {
        const rc = linux.read(fd, buffer[done..wanted].ptr, wanted - done);
        if (linux.E.init(rc) != .SUCCESS or rc == 0) break;
        done += rc;
    }
    return buffer[0..done];
}

fn writeAll(fd: i32, bytes: []const u8) void {
    var done: usize = 0;
    var writes: usize = 0;
    while (done < bytes.len and writes < 4096) : (writes += 1) {
        const rc = linux.write(fd, bytes[done..].ptr, bytes.len - done);
        if (linux.E.init(rc) != .SUCCESS) return;
        done += rc;
    }
}

/// The pty record of `fd`, or null when it is on no pseudo-terminal.
pub fn describe(fd: i32) ?image.Pty {
    var stat: linux.Stat = undefined;
    if (linux.E.init(linux.fstat(fd, &stat)) != .SUCCESS) return null;
    if (!linux.S.ISCHR(stat.mode)) return null;
    var link_buffer: [32]u8 = undefined;
    const rc = linux.readlink(proc.fdPath(&link_buffer, fd), &path_buffer, path_buffer.len);
    if (linux.E.init(rc) != .SUCCESS) return null;
    const role, const index = identify(fd, path_buffer[0..rc]) orelse return null;
    var record = std.mem.zeroes(image.Pty);
    record.fd = fd;
    record.role = @intFromEnum(role);
    record.index = index;
    record.open_flags = @truncate(linux.fcntl(fd, linux.F.GETFL, 0));
    record.fd_flags = @truncate(linux.fcntl(fd, linux.F.GETFD, 0));
    // On a master both answer for its slave (the kernel's tty->link).
    _ = ioctl(fd, tty.tcgets, @intFromPtr(&record.termios));
    var size = [4]u16{ 0, 0, 0, 0 };
    _ = ioctl(fd, tty.tiocgwinsz, @intFromPtr(&size));
    record.rows, record.columns, record.x_pixels, record.y_pixels = size;
    return record;
}

/// A master is /dev/ptmx (or /dev/pts/ptmx) and tells its number; a slave is /dev/pts/N.
fn identify(fd: i32, path: []const u8) ?struct { image.PtyRole, u32 } {
    const prefix = "/dev/pts/";
    if (std.mem.eql(u8, path, "/dev/ptmx") or std.mem.eql(u8, path, "/dev/pts/ptmx")) {
        var index: u32 = 0;
        if (ioctl(fd, tty.tiocgptn, @intFromPtr(&index)) != .SUCCESS) return null;
        return .{ .master, index };
    }
    if (!std.mem.startsWith(u8, path, prefix)) return null;
    const index = std.fmt.parseInt(u32, path[prefix.len..], 10) catch return null;
    return .{ .slave, index };
}

pub fn ioctl(fd: i32, request: u32, argument: usize) linux.E {
    const rc = linux.syscall3(.ioctl, @as(usize, @bitCast(@as(isize, fd))), request, argument);
    return linux.E.init(rc);
}

fn restore(context: *kinds.RestoreContext, record: kinds.Record) kinds.RestoreError!void {
    assert(record.header.tag == @intFromEnum(image.RecordTag.pty));
    const pty = std.mem.bytesToValue(image.Pty, record.body[0..@sizeOf(image.Pty)]);
    if (pty.fd < 0) return error.BadRecord;
    const role = std.meta.intToEnum(image.PtyRole, pty.role) catch return error.BadRecord;
    inherited.take(context.info);
    // Not re-created (its master is outside): files.zig decided.
    const entry = inherited.find(image.ptyKey(pty.index, role)) orelse return;
    inherited.moveAside(context.image_fd, pty.fd);
    inherited.moveAside(context.coordinator_fd, pty.fd);
    if (!inherited.placeAt(entry.read_fd, pty.fd, pty.fd_flags)) return error.Unrestorable;
    _ = linux.fcntl(pty.fd, linux.F.SETFL, pty.open_flags & o_settable);
}

test "ptys: a master and its slave are told apart and numbered" {
    const rc = linux.openat(linux.AT.FDCWD, "/dev/ptmx", .{ .ACCMODE = .RDWR, .NOCTTY = true }, 0);
    if (linux.E.init(rc) != .SUCCESS) return error.SkipZigTest;
    const master: i32 = @intCast(rc);
    defer _ = linux.close(master);
    const record = describe(master) orelse return error.TestUnexpectedResult;
    try std.testing.expectEqual(@intFromEnum(image.PtyRole.master), record.role);
    var name: [32]u8 = undefined;
    const path = try std.fmt.bufPrintZ(&name, "/dev/pts/{d}", .{record.index});
    const unlock: u32 = 0;
    _ = ioctl(master, 0x40045431, @intFromPtr(&unlock)); // TIOCSPTLCK
    const slave_rc = linux.openat(linux.AT.FDCWD, path, .{ .ACCMODE = .RDWR, .NOCTTY = true }, 0);
    try std.testing.expectEqual(linux.E.SUCCESS, linux.E.init(slave_rc));
    const slave: i32 = @intCast(slave_rc);
    defer _ = linux.close(slave);
    const slave_record = describe(slave) orelse return error.TestUnexpectedResult;
    try std.testing.expectEqual(@intFromEnum(image.PtyRole.slave), slave_record.role);
    try std.testing.expectEqual(record.index, slave_record.index);
    try std.testing.expectEqual(record.termios, slave_record.termios);
}
