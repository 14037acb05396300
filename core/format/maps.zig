//! One line of /proc/<pid>/maps, the kernel's text format, read by the runtime (what to save)
//! and by mtcp_restart (where it is itself).
const std = @import("std");
const image = @import("image.zig");

pub const Mapping = struct {
    start: u64,
    end: u64,
    /// image.protection_* bits.
    protection: u32,
    shared: bool,
    offset: u64,
    inode: u64,
    path: []const u8,
};

/// "start-end perms offset dev inode   path"; null for anything else.
pub fn parseLine(line: []const u8) ?Mapping {
    var fields = std.mem.tokenizeScalar(u8, line, ' ');
    const range = fields.next() orelse return null;
    const perms = fields.next() orelse return null;
    const offset = fields.next() orelse return null;
    _ = fields.next() orelse return null; // Device.
    const inode = fields.next() orelse return null;
    const dash = std.mem.indexOfScalar(u8, range, '-') orelse return null;
    if (perms.len != 4) return null;
    var protection: u32 = 0;
    if (perms[0] == 'r') protection |= image.protection_read;
    if (perms[1] == 'w') protection |= image.protection_write;
    if (perms[2] == 'x') protection |= image.protection_execute;
    return .{
        .start = std.fmt.parseInt(u64, range[0..dash], 16) catch return null,
        .end = std.fmt.parseInt(u64, range[dash + 1 ..], 16) catch return null,
        .protection = protection,
        .shared = perms[3] == 's',
        .offset = std.fmt.parseInt(u64, offset, 16) catch return null,
        .inode = std.fmt.parseInt(u64, inode, 10) catch return null,
        .path = std.mem.trim(u8, fields.rest(), " "),
    };
}

test "maps: a line is parsed with its path" {
    const line = "7f00a000-7f00c000 r-xp 00001000 fe:00 325835     /usr/lib/ld.so (deleted)";
    const mapping = parseLine(line) orelse return error.TestUnexpectedResult;
    try std.testing.expectEqual(@as(u64, 0x7f00a000), mapping.start);
    try std.testing.expectEqual(@as(u64, 0x1000), mapping.offset);
    const read_execute = image.protection_read | image.protection_execute;
    try std.testing.expectEqual(read_execute, mapping.protection);
    try std.testing.expectEqualStrings("/usr/lib/ld.so (deleted)", mapping.path);
    const anonymous = parseLine("1000-2000 rw-s 00000000 00:00 0 ") orelse
        return error.TestUnexpectedResult;
    try std.testing.expect(anonymous.shared);
    try std.testing.expectEqualStrings("", anonymous.path);
    try std.testing.expect(parseLine("garbage") == null);
}
