//! epoll instances: /proc/self/fdinfo lists what each watches (the descriptor number it was
//! added under, the registered mask with EPOLLET and EPOLLONESHOT, the caller's data, and
//! the watched file's inode). Restart makes a new instance at its number and adds each
//! descriptor again, once every other kind has put its descriptors back (this kind restores
//! after them); readiness is the kernel's to find again. An entry whose descriptor was
//! closed or now names another file (epoll still watches a file any other descriptor keeps
//! open) is left out, as is an epoll watched by an epoll restored before it.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");
const inherited = @import("inherited.zig");

pub const kind: kinds.Kind = .{ .tag = .epoll, .save = save, .restore = restore };

var entries: [limits.epoll_entries_max]image.EpollEntry = undefined;
var info_buffer: [limits.epoll_entries_max * 96]u8 = undefined;

pub fn isEpoll(fd: i32) bool {
    var path_buffer: [32]u8 = undefined;
    var link: [32]u8 = undefined;
    const rc = linux.readlink(proc.fdPath(&path_buffer, fd), &link, link.len);
    if (linux.E.init(rc) != .SUCCESS) return false;
    return std.mem.eql(u8, link[0..rc], "anon_inode:[eventpoll]");
}

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    const fds = try context.programFds();
    for (fds) |fd| {
        if (!isEpoll(fd)) continue;
        var path_buffer: [40]u8 = undefined;
        const path = proc.fdInfoPath(&path_buffer, fd);
        const text = proc.readFile(path, &info_buffer) catch |err| switch (err) {
            error.TooLarge => return error.TooMany,
            else => return error.Unreadable,
        };
        const entry_count = try parseEntries(text, context);
        const record: image.Epoll = .{
            .fd = fd,
            .entry_count = @intCast(entry_count),
            .open_flags = @truncate(linux.fcntl(fd, linux.F.GETFL, 0)),
            .fd_flags = @truncate(linux.fcntl(fd, linux.F.GETFD, 0)),
        };
        const body = [_][]const u8{
            std.mem.asBytes(&record),
            std.mem.sliceAsBytes(entries[0..entry_count]),
        };
        try context.writer.record(.epoll, &body, &.{}, 0, 0);
    }
}

/// "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x" lines; entries on our own
/// descriptors, or on a descriptor that no longer names the watched file, are left out.
fn parseEntries(text: []const u8, context: *const kinds.SaveContext) kinds.SaveError!usize {
    var count: usize = 0;
    var lines = std.mem.tokenizeScalar(u8, text, '\n');
    while (lines.next()) |line| {
        if (!std.mem.startsWith(u8, line, "tfd:")) continue;
        var words = std.mem.tokenizeAny(u8, line, " \t");
        var entry: image.EpollEntry = .{ .fd = -1, .events = 0, .data = 0 };
        var inode: u64 = 0;
        while (words.next()) |word| {
            const value = words.peek() orelse "";
            if (std.mem.eql(u8, word, "tfd:")) entry.fd = parse(i32, value, 10) orelse -1;
            if (std.mem.eql(u8, word, "events:")) entry.events = parse(u32, value, 16) orelse 0;
            if (std.mem.eql(u8, word, "data:")) entry.data = parse(u64, value, 16) orelse 0;
            if (std.mem.startsWith(u8, word, "ino:")) inode = parse(u64, word[4..], 16) orelse 0;
        }
        if (entry.fd < 0 or context.isOwn(entry.fd) or !names(entry.fd, inode)) continue;
        if (count == entries.len) return error.TooMany;
        entries[count] = entry;
        count += 1;
    }
    return count;
}

fn parse(comptime T: type, text: []const u8, base: u8) ?T {
    return std.fmt.parseInt(T, text, base) catch null;
}

fn names(fd: i32, inode: u64) bool {
    var stat: linux.Stat = undefined;
    if (linux.E.init(linux.fstat(fd, &stat)) != .SUCCESS) return false;
    return stat.ino == inode;
}

fn restore(context: *kinds.RestoreContext, record: kinds.Record) kinds.RestoreError!void {
    assert(record.header.tag == @intFromEnum(image.RecordTag.epoll));
    const epoll = std.mem.bytesToValue(image.Epoll, record.body[0..@sizeOf(image.Epoll)]);
    if (epoll.fd < 0) return error.BadRecord;
    const rc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
    if (linux.E.init(rc) != .SUCCESS) return error.Unrestorable;
    inherited.moveAside(context.image_fd, epoll.fd);
    inherited.moveAside(context.coordinator_fd, epoll.fd);
    const created: i32 = @intCast(rc);
    const placed = inherited.placeAt(created, epoll.fd, epoll.fd_flags);
    if (created != epoll.fd) _ = linux.close(created);
    if (!placed) return error.Unrestorable;
    const list = record.body[@sizeOf(image.Epoll)..];
    for (0..epoll.entry_count) |index| {
        const bytes = list[index * @sizeOf(image.EpollEntry) ..][0..@sizeOf(image.EpollEntry)];
        const entry = std.mem.bytesToValue(image.EpollEntry, bytes);
        var event: linux.epoll_event = .{ .events = entry.events, .data = .{ .u64 = entry.data } };
        const added = linux.epoll_ctl(epoll.fd, linux.EPOLL.CTL_ADD, entry.fd, &event);
        if (linux.E.init(added) != .SUCCESS) {
            kinds.warn(&.{"dmtcp: restart: an epoll instance cannot watch a descriptor again"}, "");
        }
    }
}

test "epoll: an instance is told from other descriptors" {
    const rc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
    try std.testing.expectEqual(linux.E.SUCCESS, linux.E.init(rc));
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    try std.testing.expect(isEpoll(fd));
}
