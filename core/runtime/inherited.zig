//! What mtcp_restart created once for the whole tree before forking it (pipes, socket pairs,
//! listening sockets, shared file descriptions) and handed to this process in
//! RestartInfo.pipes, found by key: the pipe's or socket's inode, or `image.descriptionKey`.
//! The restore hooks of pipes.zig, sockets.zig and descriptions.zig move what they need to
//! its numbers (`placeAt`); `closeAll` drops the inherited copies once every process of the
//! tree has taken its own (barrier `restarted`), so that a reader sees end-of-file when the
//! last real writer closes.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;

/// F_DUPFD_CLOEXEC (include/uapi/linux/fcntl.h).
const f_dupfd_cloexec = 1030;
const o_cloexec: u32 = @bitCast(linux.O{ .CLOEXEC = true });

var table: [limits.inherited_max]image.InheritedPipe = undefined;
var table_count: usize = 0;

/// Copies mtcp_restart's table once: its memory goes away before `on_resume`.
pub fn take(info: *const image.RestartInfo) void {
    if (table_count > 0 or info.pipe_count == 0 or info.pipes == 0) return;
    const count = @min(info.pipe_count, table.len);
    const source: [*]const image.InheritedPipe = @ptrFromInt(@as(usize, @intCast(info.pipes)));
    @memcpy(table[0..count], source[0..count]);
    table_count = count;
    assert(table_count <= table.len);
}

pub fn find(key: u64) ?image.InheritedPipe {
    assert(table_count <= table.len);
    for (table[0..table_count]) |entry| {
        if (entry.inode == key) return entry;
    }
    return null;
}

/// Puts a copy of `source` at `fd` with the recorded close-on-exec flag.
pub fn placeAt(source: i32, fd: i32, fd_flags: u32) bool {
    assert(source >= 0);
    assert(fd >= 0);
    const cloexec: u32 = if (fd_flags & linux.FD_CLOEXEC != 0) o_cloexec else 0;
    if (source == fd) {
        _ = linux.fcntl(fd, linux.F.SETFD, if (cloexec != 0) linux.FD_CLOEXEC else 0);
        return true;
    }
    return linux.E.init(linux.dup3(source, fd, cloexec)) == .SUCCESS;
}

/// A descriptor of ours sits where a restored one must go: move ours to a free number.
pub fn moveAside(ours: *i32, wanted: i32) void {
    if (ours.* != wanted) return;
    const rc = linux.fcntl(ours.*, f_dupfd_cloexec, limits.restart_fd_base_min);
    assert(linux.E.init(rc) == .SUCCESS);
    _ = linux.close(ours.*);
    ours.* = @intCast(rc);
}

/// Every process has taken its own: drop the inherited copies.
pub fn closeAll() void {
    for (table[0..table_count]) |entry| {
        if (entry.read_fd >= 0) _ = linux.close(entry.read_fd);
        if (entry.write_fd < 0 or entry.write_fd == entry.read_fd) continue;
        _ = linux.close(entry.write_fd);
    }
    table_count = 0;
}
