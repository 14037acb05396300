//! Pipes and FIFOs. Saved: one `pipe` record per descriptor on a pipe (which end, flags, the
//! pipe's inode and capacity), and, from every process that holds a read end, the bytes
//! buffered in the pipe, copied with tee() into a scratch pipe so that nothing is consumed.
//! Every process of the computation is stopped at that point (between the barriers
//! `checkpointed` and `written`), so every copy of one pipe's bytes is the same.
//!
//! Restored: mtcp_restart creates one real pipe for each inode whose two ends it finds in the
//! images, refills it with the stored bytes, and forks the tree: every process inherits it
//! (RestartInfo.pipes) and moves its own ends to their numbers here; `on_resume` closes the
//! inherited copies once every process has taken its own. A pipe seen with one end only leads
//! outside the computation: on 0, 1 and 2 the restarting process's own descriptor is kept (as
//! for a terminal), elsewhere another descriptor of this process on the same pipe is shared,
//! else a new pipe stands in. A FIFO is opened again by its path; its bytes are stored like
//! a pipe's, and mtcp_restart, which holds it open for reading and writing until every
//! process has opened its own, writes them back.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");
const inherited = @import("inherited.zig");

pub const kind: kinds.Kind = .{
    .tag = .pipe,
    .save = save,
    .restore = restore,
    .on_resume = onResume,
};

const f_setpipe_sz = 1031;
const f_getpipe_sz = 1032;
const splice_f_nonblock = 2;
const o_cloexec: u32 = @bitCast(linux.O{ .CLOEXEC = true });
/// Flags fcntl(F_SETFL) can change on a pipe.
const o_settable: u32 = @bitCast(linux.O{
    .NONBLOCK = true,
    .APPEND = true,
    .ASYNC = true,
    .DIRECT = true,
});

var path_buffer: [limits.path_size_max + 1]u8 = undefined;

/// Pipes restored so far in this process, for a second descriptor on a pipe that leads out.
var restored: [limits.fds_max]struct { inode: u64, fd: i32 } = undefined;
var restored_count: usize = 0;

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    const fds = try context.programFds();
    // The pipe's bytes pass through here on their way to the image; unmapped before memory
    // is saved, so they are not in the image twice.
    const buffer_rc = linux.mmap(null, limits.pipe_size_max, linux.PROT.READ | linux.PROT.WRITE, .{
        .TYPE = .PRIVATE,
        .ANONYMOUS = true,
    }, -1, 0);
    if (linux.E.init(buffer_rc) != .SUCCESS) return error.Unreadable;
    defer _ = linux.munmap(@ptrFromInt(buffer_rc), limits.pipe_size_max);
    const buffer = @as([*]u8, @ptrFromInt(buffer_rc))[0..limits.pipe_size_max];
    for (fds) |fd| {
        try saveOne(context, fd, buffer);
    }
}

fn saveOne(context: *kinds.SaveContext, fd: i32, buffer: []u8) kinds.SaveError!void {
    var stat: linux.Stat = undefined;
    if (linux.E.init(linux.fstat(fd, &stat)) != .SUCCESS) return;
    if (!linux.S.ISFIFO(stat.mode)) return;
    var link_buffer: [32]u8 = undefined;
    const rc = linux.readlink(proc.fdPath(&link_buffer, fd), &path_buffer, path_buffer.len);
    const link: []const u8 = if (linux.E.init(rc) == .SUCCESS) path_buffer[0..rc] else "";
    const named = link.len > 0 and link[0] == '/';
    const flags: u32 = @truncate(linux.fcntl(fd, linux.F.GETFL, 0));
    const access = flags & 3;
    const capacity = linux.fcntl(fd, f_getpipe_sz, 0);
    var record: image.Pipe = .{
        .fd = fd,
        .end = @intFromEnum(if (access == 1) image.PipeEnd.write else image.PipeEnd.read),
        .open_flags = flags,
        .fd_flags = @truncate(linux.fcntl(fd, linux.F.GETFD, 0)),
        .inode = stat.ino,
        .capacity = if (linux.E.init(capacity) == .SUCCESS) @intCast(capacity) else 65536,
        .byte_count = 0,
        .path_size = if (named) @intCast(@min(link.len, limits.path_size_max)) else 0,
    };
    if (access != 1) record.byte_count = peek(fd, record.capacity, buffer);
    const padded: usize = @intCast(image.alignForward(record.byte_count, 8));
    @memset(buffer[record.byte_count..padded], 0);
    var data = [1]std.posix.iovec_const{.{ .base = buffer.ptr, .len = padded }};
    const body = [_][]const u8{ std.mem.asBytes(&record), link[0..record.path_size] };
    const checksum: u64 = if (padded == 0) 0 else image.hash(buffer[0..padded]);
    try context.writer.record(.pipe, &body, data[0..@intFromBool(padded > 0)], padded, checksum);
}

/// Copies the bytes buffered in the pipe read through `fd` into `buffer`, without consuming
/// them: tee() into a scratch pipe as large, then read that.
fn peek(fd: i32, capacity: u32, buffer: []u8) u32 {
    assert(buffer.len >= limits.pipe_size_max);
    var scratch: [2]i32 = undefined;
    if (linux.E.init(linux.pipe2(&scratch, .{ .CLOEXEC = true, .NONBLOCK = true })) != .SUCCESS) {
        return 0;
    }
    defer _ = linux.close(scratch[0]);
    defer _ = linux.close(scratch[1]);
    const size = @min(capacity, limits.pipe_size_max);
    _ = linux.fcntl(scratch[1], f_setpipe_sz, size);
    const source: usize = @bitCast(@as(isize, fd));
    const target: usize = @bitCast(@as(isize, scratch[1]));
    const rc = linux.syscall4(.tee, source, target, size, splice_f_nonblock);
    if (linux.E.init(rc) != .SUCCESS or rc == 0) return 0;
    var done: usize = 0;
    while (done < rc) {
        const got = linux.read(scratch[0], buffer[done..].ptr, rc - done);
        if (linux.E.init(got) != .SUCCESS or got == 0) break;
        done += got;
    }
    assert(done <= size);
    return @intCast(done);
}

fn restore(context: *kinds.RestoreContext, record: kinds.Record) kinds.RestoreError!void {
    assert(record.header.tag == @intFromEnum(image.RecordTag.pipe));
    const pipe = std.mem.bytesToValue(image.Pipe, record.body[0..@sizeOf(image.Pipe)]);
    const path = record.body[@sizeOf(image.Pipe)..][0..pipe.path_size];
    if (pipe.fd < 0) return error.BadRecord;
    inherited.take(context.info);
    inherited.moveAside(context.image_fd, pipe.fd);
    inherited.moveAside(context.coordinator_fd, pipe.fd);
    const source = if (path.len > 0) openNamed(path, pipe.open_flags) else findSource(pipe);
    const fd = source orelse {
        // 0, 1 or 2 leading outside: the restarting process's own stays.
        if (pipe.fd > 2) kinds.warn(&.{"dmtcp: restart: a pipe cannot be restored on "}, "fd");
        remember(pipe.inode, pipe.fd);
        return;
    };
    const cloexec: u32 = if (pipe.fd_flags & linux.FD_CLOEXEC != 0) o_cloexec else 0;
    if (fd.number != pipe.fd) {
        const rc = linux.dup3(fd.number, pipe.fd, cloexec);
        if (linux.E.init(rc) != .SUCCESS) return error.Unrestorable;
    }
    if (fd.owned and fd.number != pipe.fd) _ = linux.close(fd.number);
    if (fd.number == pipe.fd and cloexec == 0) _ = linux.fcntl(pipe.fd, linux.F.SETFD, 0);
    _ = linux.fcntl(pipe.fd, linux.F.SETFL, pipe.open_flags & o_settable);
    remember(pipe.inode, pipe.fd);
}

fn remember(inode: u64, fd: i32) void {
    if (restored_count == restored.len) return;
    restored[restored_count] = .{ .inode = inode, .fd = fd };
    restored_count += 1;
}

const Source = struct { number: i32, owned: bool };

/// Where this process's end of `pipe` comes from, or null to keep what fd already is.
fn findSource(pipe: image.Pipe) ?Source {
    if (inherited.find(pipe.inode)) |entry| {
        const end: image.PipeEnd = @enumFromInt(pipe.end);
        return .{ .number = if (end == .read) entry.read_fd else entry.write_fd, .owned = false };
    }
    // The pipe leads outside the computation.
    for (restored[0..restored_count]) |entry| {
        if (entry.inode == pipe.inode) return .{ .number = entry.fd, .owned = false };
    }
    if (pipe.fd <= 2) return null;
    var ends: [2]i32 = undefined;
    if (linux.E.init(linux.pipe2(&ends, .{ .CLOEXEC = true })) != .SUCCESS) return null;
    const end: image.PipeEnd = @enumFromInt(pipe.end);
    const keep: usize = if (end == .read) 0 else 1;
    _ = linux.close(ends[1 - keep]);
    return .{ .number = ends[keep], .owned = true };
}

fn openNamed(path: []const u8, open_flags: u32) ?Source {
    if (path.len >= path_buffer.len) return null;
    @memcpy(path_buffer[0..path.len], path);
    path_buffer[path.len] = 0;
    // Non-blocking, so that a write end does not wait for a reader; mtcp_restart holds the
    // FIFO open for reading and writing until every process has opened its own.
    const flags = (open_flags & 3) | o_cloexec | @as(u32, @bitCast(linux.O{ .NONBLOCK = true }));
    const rc = linux.openat(linux.AT.FDCWD, @ptrCast(&path_buffer), @bitCast(flags), 0);
    if (linux.E.init(rc) != .SUCCESS) {
        kinds.warn(&.{"dmtcp: restart: cannot reopen the FIFO "}, path);
        return null;
    }
    return .{ .number = @intCast(rc), .owned = true };
}

/// Every process has taken its ends (barrier `restarted`): drop the inherited copies, so
/// that a reader sees end-of-file when the last real writer closes.
fn onResume(context: *kinds.ResumeContext) void {
    if (!context.restarted) return;
    // Pipes, sockets and shared descriptions alike: every kind has taken its own by now.
    inherited.closeAll();
    restored_count = 0;
}

test "pipes: buffered bytes are copied without being consumed" {
    var ends: [2]i32 = undefined;
    try std.testing.expectEqual(linux.E.SUCCESS, linux.E.init(linux.pipe2(&ends, .{})));
    defer _ = linux.close(ends[0]);
    defer _ = linux.close(ends[1]);
    _ = linux.write(ends[1], "hello", 5);
    var buffer: [limits.pipe_size_max]u8 = undefined;
    try std.testing.expectEqual(@as(u32, 5), peek(ends[0], 65536, &buffer));
    try std.testing.expectEqualStrings("hello", buffer[0..5]);
    var again: [8]u8 = undefined;
    try std.testing.expectEqual(@as(usize, 5), linux.read(ends[0], &again, again.len));
}
