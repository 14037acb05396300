//! Reads /proc/self with raw system calls into the caller's fixed buffers: the checkpoint
//! thread lists threads and descriptors and reads its memory map this way, without libc.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;

pub const Error = error{ OpenFailed, ReadFailed, TooLarge };

/// Fills `numbers` with the numeric entries of directory `path` (/proc/self/task, /proc/self/fd)
/// and returns how many there are; `skip_fd` receives the descriptor it read through, which
/// /proc/self/fd lists too.
pub fn listNumbers(path: [*:0]const u8, numbers: []i32, skip_fd: ?*i32) Error!usize {
    assert(numbers.len > 0);
    const flags: linux.O = .{ .DIRECTORY = true, .CLOEXEC = true };
    const rc = linux.openat(linux.AT.FDCWD, path, flags, 0);
    if (linux.E.init(rc) != .SUCCESS) return error.OpenFailed;
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    if (skip_fd) |out| out.* = fd;
    var buffer: [8192]u8 align(8) = undefined;
    var count: usize = 0;
    var rounds: usize = 0;
    // Each round returns at least one entry, so the number of rounds is bounded by entries.
    while (rounds < numbers.len + 2) : (rounds += 1) {
        const n = linux.getdents64(fd, &buffer, buffer.len);
        if (linux.E.init(n) != .SUCCESS) return error.ReadFailed;
        if (n == 0) return count;
        var offset: usize = 0;
        while (offset < n) {
            const entry: *align(1) const linux.dirent64 = @ptrCast(&buffer[offset]);
            const name = std.mem.sliceTo(@as([*:0]const u8, @ptrCast(&entry.name)), 0);
            offset += entry.reclen;
            const number = std.fmt.parseInt(i32, name, 10) catch continue;
            if (count == numbers.len) return error.TooLarge;
            numbers[count] = number;
            count += 1;
        }
    }
    return error.TooLarge;
}

/// Reads a whole /proc file into `buffer`; a file that fills it is refused as too large.
pub fn readFile(path: [*:0]const u8, buffer: []u8) Error![]u8 {
    const rc = linux.openat(linux.AT.FDCWD, path, .{ .CLOEXEC = true }, 0);
    if (linux.E.init(rc) != .SUCCESS) return error.OpenFailed;
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    var size: usize = 0;
    while (size < buffer.len) {
        const n = linux.read(fd, buffer[size..].ptr, buffer.len - size);
        switch (linux.E.init(n)) {
            .SUCCESS => {},
            .INTR => continue,
            else => return error.ReadFailed,
        }
        if (n == 0) return buffer[0..size];
        size += n;
    }
    return error.TooLarge;
}

/// "/proc/self/fd/<fd>" into `buffer`.
pub fn fdPath(buffer: *[32]u8, fd: i32) [*:0]const u8 {
    assert(fd >= 0);
    const text = std.fmt.bufPrintZ(buffer, "/proc/self/fd/{d}", .{fd}) catch unreachable;
    return text.ptr;
}

/// "/proc/self/fdinfo/<fd>" into `buffer`.
pub fn fdInfoPath(buffer: *[40]u8, fd: i32) [*:0]const u8 {
    assert(fd >= 0);
    const text = std.fmt.bufPrintZ(buffer, "/proc/self/fdinfo/{d}", .{fd}) catch unreachable;
    return text.ptr;
}

test "proc: lists this process's threads and reads its maps" {
    var tids: [64]i32 = undefined;
    const count = try listNumbers("/proc/self/task", &tids, null);
    try std.testing.expect(count >= 1);
    var buffer: [1 << 20]u8 = undefined;
    const maps = try readFile("/proc/self/maps", &buffer);
    try std.testing.expect(std.mem.indexOf(u8, maps, "[stack]") != null);
}
