//! eventfd, signalfd and timerfd descriptors: anonymous files whose whole state
//! /proc/self/fdinfo shows (an eventfd's counter and semaphore mode, a signalfd's mask, a
//! timerfd's clock, time to its next expiry, interval and unread expirations). Restart
//! makes each anew at its number: an eventfd with its counter, a signalfd with its mask, a
//! timerfd armed with the time it had left (its clock stopped while the program was not
//! running, as for timers.zig), set to expire at once if expirations were waiting unread
//! (a read then sees 1, not their number). A descriptor shared with another process (after
//! fork) comes back as one of each process's own.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const image = @import("format").image;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");
const inherited = @import("inherited.zig");

pub const kind: kinds.Kind = .{ .tag = .event, .save = save, .restore = restore };

const efd_semaphore = 1;
const o_settable: u32 = @bitCast(linux.O{ .NONBLOCK = true });
const o_cloexec: u32 = @bitCast(linux.O{ .CLOEXEC = true });

var link_buffer: [64]u8 = undefined;
var info_buffer: [1024]u8 = undefined;

/// The kind of anonymous file `fd` is, if one of ours.
pub fn classify(fd: i32) ?image.EventKind {
    var path_buffer: [32]u8 = undefined;
    const rc = linux.readlink(proc.fdPath(&path_buffer, fd), &link_buffer, link_buffer.len);
    if (linux.E.init(rc) != .SUCCESS) return null;
    const link = link_buffer[0..rc];
    if (std.mem.eql(u8, link, "anon_inode:[eventfd]")) return .eventfd;
    if (std.mem.eql(u8, link, "anon_inode:[signalfd]")) return .signalfd;
    if (std.mem.eql(u8, link, "anon_inode:[timerfd]")) return .timerfd;
    return null;
}

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    const fds = try context.programFds();
    for (fds) |fd| {
        const event_kind = classify(fd) orelse continue;
        var record = describe(fd, event_kind) catch return error.Unreadable;
        try context.writer.record(.event, &.{std.mem.asBytes(&record)}, &.{}, 0, 0);
    }
}

fn describe(fd: i32, event_kind: image.EventKind) !image.Event {
    var path_buffer: [40]u8 = undefined;
    const text = try proc.readFile(proc.fdInfoPath(&path_buffer, fd), &info_buffer);
    var record = std.mem.zeroes(image.Event);
    record.fd = fd;
    record.kind = @intFromEnum(event_kind);
    record.open_flags = @truncate(linux.fcntl(fd, linux.F.GETFL, 0));
    record.fd_flags = @truncate(linux.fcntl(fd, linux.F.GETFD, 0));
    switch (event_kind) {
        .eventfd => {
            // Printed in hex (%16llx).
            record.value = try number(u64, field(text, "eventfd-count") orelse "", 16);
            // Older kernels do not say: a semaphore is then taken for a plain counter.
            const semaphore = field(text, "eventfd-semaphore") orelse "0";
            record.detail = try number(i32, semaphore, 10);
        },
        .signalfd => record.value = try number(u64, field(text, "sigmask") orelse "", 16),
        .timerfd => {
            record.detail = try number(i32, field(text, "clockid") orelse "", 10);
            record.value = try number(u64, field(text, "ticks") orelse "", 10);
            record.remaining_ns = try duration(field(text, "it_value") orelse "");
            record.interval_ns = try duration(field(text, "it_interval") orelse "");
        },
    }
    return record;
}

/// The value of a "key: value" line of an fdinfo file.
pub fn field(text: []const u8, key: []const u8) ?[]const u8 {
    var lines = std.mem.tokenizeScalar(u8, text, '\n');
    while (lines.next()) |line| {
        if (!std.mem.startsWith(u8, line, key)) continue;
        const rest = line[key.len..];
        if (rest.len == 0 or rest[0] != ':') continue;
        return std.mem.trim(u8, rest[1..], " \t");
    }
    return null;
}

fn number(comptime T: type, text: []const u8, base: u8) !T {
    return std.fmt.parseInt(T, text, base) catch error.BadInfo;
}

/// "(seconds, nanoseconds)", as fdinfo prints a timespec.
fn duration(text: []const u8) !u64 {
    const inner = std.mem.trim(u8, text, "() ");
    const comma = std.mem.indexOfScalar(u8, inner, ',') orelse return error.BadInfo;
    const seconds = try number(u64, std.mem.trim(u8, inner[0..comma], " "), 10);
    const nanoseconds = try number(u64, std.mem.trim(u8, inner[comma + 1 ..], " "), 10);
    return seconds * std.time.ns_per_s + nanoseconds;
}

fn restore(context: *kinds.RestoreContext, record: kinds.Record) kinds.RestoreError!void {
    assert(record.header.tag == @intFromEnum(image.RecordTag.event));
    const event = std.mem.bytesToValue(image.Event, record.body[0..@sizeOf(image.Event)]);
    if (event.fd < 0) return error.BadRecord;
    const created = create(event) orelse {
        kinds.warn(&.{"dmtcp: restart: cannot make an eventfd, signalfd or timerfd again"}, "");
        return;
    };
    inherited.moveAside(context.image_fd, event.fd);
    inherited.moveAside(context.coordinator_fd, event.fd);
    const placed = inherited.placeAt(created, event.fd, event.fd_flags);
    if (created != event.fd) _ = linux.close(created);
    if (!placed) return error.Unrestorable;
}

fn create(event: image.Event) ?i32 {
    const flags: u32 = (event.open_flags & o_settable) | o_cloexec;
    const rc = switch (@as(image.EventKind, @enumFromInt(event.kind))) {
        .eventfd => linux.syscall2(
            .eventfd2,
            @as(u32, @truncate(event.value)),
            flags | @as(u32, if (event.detail != 0) efd_semaphore else 0),
        ),
        .signalfd => linux.syscall4(
            .signalfd4,
            @bitCast(@as(isize, -1)),
            @intFromPtr(&event.value),
            8,
            flags,
        ),
        .timerfd => linux.syscall2(.timerfd_create, @bitCast(@as(isize, event.detail)), flags),
    };
    if (linux.E.init(rc) != .SUCCESS) return null;
    const fd: i32 = @intCast(rc);
    if (event.kind == @intFromEnum(image.EventKind.timerfd)) arm(fd, event);
    return fd;
}

fn arm(fd: i32, event: image.Event) void {
    // Expirations waiting unread: one at once (a read sees 1).
    const remaining = if (event.value > 0) 1 else event.remaining_ns;
    if (remaining == 0) return;
    const spec = [4]isize{
        @intCast(event.interval_ns / std.time.ns_per_s),
        @intCast(event.interval_ns % std.time.ns_per_s),
        @intCast(remaining / std.time.ns_per_s),
        @intCast(remaining % std.time.ns_per_s),
    };
    _ = linux.syscall4(.timerfd_settime, @intCast(fd), 0, @intFromPtr(&spec), 0);
}

test "events: fdinfo fields and timespecs are read" {
    const text = "pos:\t0\nflags:\t02\nclockid: 1\nticks: 3\nit_value: (2, 499744089)\n";
    try std.testing.expectEqualStrings("1", field(text, "clockid").?);
    try std.testing.expect(field(text, "clock") == null);
    try std.testing.expectEqual(@as(u64, 2_499_744_089), try duration(field(text, "it_value").?));
}
