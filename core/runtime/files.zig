//! Open file descriptors. Saved: for each descriptor in /proc/self/fd, its kind, path, open
//! flags, close-on-exec flag and offset. Restored: regular files, directories and /dev/null
//! are opened again by path with their flags (never creating or truncating) and moved to
//! their number, at their offset; 0, 1 and 2 on a terminal, pipe or socket keep what the
//! restarting process has, so a restarted program writes where its restarter does.
//! /dev/tty, /dev/zero and the random devices are opened again by path too. Pipes, sockets
//! and pseudo-terminals have their own kinds (pipes.zig, sockets.zig, ptys.zig), and so do
//! descriptions shared between descriptors (descriptions.zig).
//! eventfd, signalfd, timerfd and epoll descriptors have kinds of their own too (events.zig,
//! epoll.zig). Not yet: memfd, inotify (recorded as unsupported and left closed), file
//! contents (a file changed since the checkpoint is not detected).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");
const ptys = @import("ptys.zig");
const events = @import("events.zig");
const epoll = @import("epoll.zig");

pub const kind: kinds.Kind = .{ .tag = .descriptor, .save = save, .restore = restore };

/// F_DUPFD_CLOEXEC (include/uapi/linux/fcntl.h), missing from std on some targets.
const f_dupfd_cloexec = 1030;
const o_cloexec: u32 = @bitCast(linux.O{ .CLOEXEC = true });
var path_buffer: [limits.path_size_max + 1]u8 = undefined;

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    const fds = try context.programFds();
    for (fds) |fd| {
        try saveOne(context, fd);
    }
}

fn saveOne(context: *kinds.SaveContext, fd: i32) kinds.SaveError!void {
    assert(fd >= 0);
    var stat: linux.Stat = undefined;
    if (linux.E.init(linux.fstat(fd, &stat)) != .SUCCESS) return; // Closed meanwhile.
    var link_buffer: [32]u8 = undefined;
    const rc = linux.readlink(proc.fdPath(&link_buffer, fd), &path_buffer, path_buffer.len);
    const path: []const u8 = if (linux.E.init(rc) == .SUCCESS) path_buffer[0..rc] else "";
    const flags = linux.fcntl(fd, linux.F.GETFL, 0);
    const fd_flags = linux.fcntl(fd, linux.F.GETFD, 0);
    var record: image.Descriptor = .{
        .fd = fd,
        .kind = @intFromEnum(classify(fd, &stat, path)),
        .open_flags = @truncate(flags),
        .fd_flags = @truncate(fd_flags),
        .offset = currentOffset(fd),
        .path_size = @intCast(@min(path.len, limits.path_size_max)),
    };
    _ = &record;
    const body = [_][]const u8{ std.mem.asBytes(&record), path[0..record.path_size] };
    try context.writer.record(.descriptor, &body, &.{}, 0, 0);
}

fn classify(fd: i32, stat: *const linux.Stat, path: []const u8) image.DescriptorKind {
    const deleted = std.mem.endsWith(u8, path, " (deleted)");
    if (linux.S.ISREG(stat.mode) and !deleted and path.len > 0 and path[0] == '/') return .regular;
    if (linux.S.ISDIR(stat.mode) and !deleted) return .directory;
    if (linux.S.ISCHR(stat.mode) and std.mem.eql(u8, path, "/dev/null")) return .dev_null;
    if (linux.S.ISCHR(stat.mode) and isDevice(path)) return .device;
    if (linux.S.ISFIFO(stat.mode)) return .pipe; // pipes.zig.
    if (linux.S.ISSOCK(stat.mode)) return .socket; // sockets.zig.
    if (fd <= 2) return .inherit;
    if (linux.S.ISCHR(stat.mode) and ptys.describe(fd) != null) return .pty; // ptys.zig.
    if (events.classify(fd) != null) return .event; // events.zig.
    if (epoll.isEpoll(fd)) return .epoll; // epoll.zig.
    return .unsupported;
}

/// Character devices that are the same thing opened again: /dev/tty is whatever terminal
/// controls the process that opens it.
fn isDevice(path: []const u8) bool {
    const devices = [_][]const u8{
        "/dev/tty", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
    };
    for (devices) |device| if (std.mem.eql(u8, path, device)) return true;
    return false;
}

fn restore(context: *kinds.RestoreContext, record: kinds.Record) kinds.RestoreError!void {
    assert(record.header.tag == @intFromEnum(image.RecordTag.descriptor));
    const descriptor_bytes = record.body[0..@sizeOf(image.Descriptor)];
    const descriptor = std.mem.bytesToValue(image.Descriptor, descriptor_bytes);
    const path = record.body[@sizeOf(image.Descriptor)..][0..descriptor.path_size];
    const fd = descriptor.fd;
    if (fd < 0) return error.BadRecord;
    switch (@as(image.DescriptorKind, @enumFromInt(descriptor.kind))) {
        .inherit, .unsupported, .pipe, .socket, .pty, .event, .epoll => return,
        .regular, .directory, .dev_null, .device => {},
    }
    moveAside(context.image_fd, fd);
    moveAside(context.coordinator_fd, fd);
    if (path.len >= path_buffer.len) return error.BadRecord;
    @memcpy(path_buffer[0..path.len], path);
    path_buffer[path.len] = 0;
    // Reopen, never create or truncate: the file is what it is now.
    var flags: u32 = descriptor.open_flags & ~@as(u32, 0o1000 | 0o100 | 0o200);
    flags |= o_cloexec; // Until it sits at its number.
    const rc = linux.openat(linux.AT.FDCWD, @ptrCast(&path_buffer), @bitCast(flags), 0);
    if (linux.E.init(rc) != .SUCCESS) {
        kinds.warn(&.{"dmtcp: restart: cannot reopen "}, path);
        return;
    }
    const opened: i32 = @intCast(rc);
    const cloexec: u32 = if (descriptor.fd_flags & linux.FD_CLOEXEC != 0) o_cloexec else 0;
    if (opened != fd) {
        _ = linux.dup3(opened, fd, cloexec);
        _ = linux.close(opened);
    } else if (cloexec == 0) {
        _ = linux.fcntl(fd, linux.F.SETFD, 0);
    }
    if (descriptor.kind == @intFromEnum(image.DescriptorKind.regular)) {
        seek(fd, descriptor.offset);
    }
}

/// The descriptor's offset (0 for pipes and terminals, which have none).
fn currentOffset(fd: i32) u64 {
    if (@sizeOf(usize) == 8) {
        const rc = linux.lseek(fd, 0, linux.SEEK.CUR);
        return if (linux.E.init(rc) == .SUCCESS) rc else 0;
    }
    var result: u64 = 0;
    const rc = linux.syscall5(
        .llseek,
        @bitCast(@as(isize, fd)),
        0,
        0,
        @intFromPtr(&result),
        linux.SEEK.CUR,
    );
    return if (linux.E.init(rc) == .SUCCESS) result else 0;
}

fn seek(fd: i32, offset: u64) void {
    if (@sizeOf(usize) == 8) {
        _ = linux.lseek(fd, @bitCast(offset), linux.SEEK.SET);
        return;
    }
    const high: usize = @truncate(offset >> 32);
    const low: usize = @truncate(offset);
    var result: u64 = 0;
    _ = linux.syscall5(
        .llseek,
        @bitCast(@as(isize, fd)),
        high,
        low,
        @intFromPtr(&result),
        linux.SEEK.SET,
    );
}

/// A descriptor of ours sits where a restored one must go: move ours to a free number.
fn moveAside(ours: *i32, wanted: i32) void {
    if (ours.* != wanted) return;
    const rc = linux.fcntl(ours.*, f_dupfd_cloexec, 100);
    assert(linux.E.init(rc) == .SUCCESS);
    _ = linux.close(ours.*);
    ours.* = @intCast(rc);
}

test "files: a regular file is told from a terminal and /dev/null" {
    var stat: linux.Stat = std.mem.zeroes(linux.Stat);
    stat.mode = linux.S.IFREG | 0o644;
    try std.testing.expectEqual(image.DescriptorKind.regular, classify(5, &stat, "/tmp/a"));
    try std.testing.expectEqual(
        image.DescriptorKind.inherit,
        classify(1, &stat, "/tmp/a (deleted)"),
    );
    stat.mode = linux.S.IFCHR | 0o666;
    try std.testing.expectEqual(image.DescriptorKind.dev_null, classify(0, &stat, "/dev/null"));
    try std.testing.expectEqual(image.DescriptorKind.inherit, classify(2, &stat, "/dev/pts/3"));
    try std.testing.expectEqual(image.DescriptorKind.unsupported, classify(7, &stat, "/dev/pts/3"));
}
