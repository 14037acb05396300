//! Sockets. Saved: one `socket` record per descriptor on a socket: its domain, type, flags and
//! inode, and for a Unix socket its peer's inode and state (from sock_diag, NETLINK_SOCK_DIAG
//! with UNIX_DIAG_PEER, which works unprivileged: /proc/net/unix lacks the peer), plus the
//! bytes queued for reading, copied without being consumed: MSG_PEEK reads a stream
//! socket's whole queue at once; datagram and seqpacket queues are walked one message at a
//! time with SO_PEEK_OFF (each message stored with its length). Several processes may hold
//! one socket after fork and peek it at once, so the walk holds a POSIX record lock on the
//! socket (per process, unlike the peek offset it protects). A listening socket records the
//! path it is bound to and its backlog.
//!
//! Restored: mtcp_restart creates one socketpair for each pair whose two ends it finds in the
//! images, writes each end's queued bytes into its peer so that they are queued again, binds
//! and listens again for a listening socket (after unlinking the socket file left behind),
//! and forks the tree; each process moves its ends to their numbers here (inherited.zig).
//! A socket left by a peer that closed comes back with its bytes, then end-of-file.
//! Not restored (left closed, or the restarting process's own on 0, 1 and 2): sockets whose
//! peer is outside the computation, other domains (TCP, UDP, netlink), unconnected datagram
//! sockets; nor the connections waiting in a listening socket's queue, descriptors in flight
//! (SCM_RIGHTS), socket options (SO_PEEK_OFF, SO_PASSCRED, buffer sizes), nor a bound name
//! other than a listening socket's.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");
const inherited = @import("inherited.zig");

pub const kind: kinds.Kind = .{ .tag = .socket, .save = save, .restore = restore };

const so_type = 3;
const so_acceptconn = 30;
const so_peek_off = 42;
const so_domain = 39;
const siocinq = 0x541B;
const sock_stream = 1;
const msg_peek = 2;
const msg_trunc = 0x20;
const msg_dontwait = 0x40;
const o_settable: u32 = @bitCast(linux.O{ .NONBLOCK = true, .ASYNC = true });

var name_buffer: [limits.path_size_max]u8 = undefined;

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    const fds = try context.programFds();
    // Queued bytes pass through here on their way to the image; unmapped before memory is
    // saved, so they are not in the image twice.
    const size = limits.socket_size_max;
    const rc = linux.mmap(null, size, linux.PROT.READ | linux.PROT.WRITE, .{
        .TYPE = .PRIVATE,
        .ANONYMOUS = true,
    }, -1, 0);
    if (linux.E.init(rc) != .SUCCESS) return error.Unreadable;
    defer _ = linux.munmap(@ptrFromInt(rc), size);
    const buffer = @as([*]u8, @ptrFromInt(rc))[0..size];
    var diag: Diag = .{};
    defer diag.close();
    for (fds) |fd| {
        if (fd == diag.fd) continue;
        var stat: linux.Stat = undefined;
        if (linux.E.init(linux.fstat(fd, &stat)) != .SUCCESS) continue;
        if (!linux.S.ISSOCK(stat.mode)) continue;
        try saveOne(context, fd, stat.ino, &diag, buffer);
    }
}

fn saveOne(
    context: *kinds.SaveContext,
    fd: i32,
    inode: u64,
    diag: *Diag,
    buffer: []u8,
) kinds.SaveError!void {
    assert(fd >= 0);
    var record: image.Socket = .{
        .fd = fd,
        .domain = @intCast(option(fd, so_domain) orelse 0),
        .type = @intCast(option(fd, so_type) orelse 0),
        .open_flags = @truncate(linux.fcntl(fd, linux.F.GETFL, 0)),
        .fd_flags = @truncate(linux.fcntl(fd, linux.F.GETFD, 0)),
        .inode = inode,
        .peer_inode = 0,
        .state = @intFromEnum(image.SocketState.other),
        .backlog = 0,
        .byte_count = 0,
        .message_count = 0,
        .path_size = 0,
    };
    var name: []const u8 = "";
    if (record.domain == image.socket_domain_unix) {
        const found = diag.query(@truncate(inode), &name_buffer);
        record.peer_inode = found.peer_inode;
        if ((option(fd, so_acceptconn) orelse 0) != 0) {
            record.state = @intFromEnum(image.SocketState.listening);
            record.backlog = found.backlog;
            name = found.name;
        } else if (found.peer_inode != 0 or found.established) {
            record.state = @intFromEnum(image.SocketState.connected);
            const queued = try peek(fd, record.type, buffer);
            record.byte_count = queued.byte_count;
            record.message_count = queued.message_count;
        }
    }
    record.path_size = @intCast(name.len);
    const padded: usize = @intCast(image.alignForward(record.byte_count, 8));
    @memset(buffer[record.byte_count..padded], 0);
    var data = [1]std.posix.iovec_const{.{ .base = buffer.ptr, .len = padded }};
    const body = [_][]const u8{ std.mem.asBytes(&record), name };
    const checksum: u64 = if (padded == 0) 0 else image.hash(buffer[0..padded]);
    try context.writer.record(.socket, &body, data[0..@intFromBool(padded > 0)], padded, checksum);
}

fn option(fd: i32, name: u32) ?u32 {
    var value: i32 = 0;
    var size: linux.socklen_t = @sizeOf(i32);
    const rc = linux.getsockopt(fd, linux.SOL.SOCKET, name, std.mem.asBytes(&value), &size);
    if (linux.E.init(rc) != .SUCCESS) return null;
    return @bitCast(value);
}

fn setPeekOffset(fd: i32, value: i32) void {
    _ = linux.setsockopt(fd, linux.SOL.SOCKET, so_peek_off, std.mem.asBytes(&value), 4);
}

const Queued = struct { byte_count: u32, message_count: u32 };

/// Copies what is queued for reading on `fd` into `buffer` without consuming it.
fn peek(fd: i32, socket_type: u16, buffer: []u8) kinds.SaveError!Queued {
    assert(buffer.len == limits.socket_size_max);
    var lock = std.mem.zeroes(linux.Flock);
    lock.type = linux.F.WRLCK;
    const locked = linux.E.init(linux.fcntl(fd, linux.F.SETLKW, @intFromPtr(&lock))) == .SUCCESS;
    defer if (locked) {
        lock.type = linux.F.UNLCK;
        _ = linux.fcntl(fd, linux.F.SETLK, @intFromPtr(&lock));
    };
    const offset_saved: i32 = @bitCast(option(fd, so_peek_off) orelse 0xffff_ffff);
    defer setPeekOffset(fd, offset_saved);
    if (socket_type == sock_stream) {
        setPeekOffset(fd, -1);
        const got = receivePeek(fd, buffer, 0) orelse 0;
        if (got == buffer.len) return error.TooMany;
        return .{ .byte_count = @intCast(got), .message_count = 0 };
    }
    // One message per peek: the offset moves past each one.
    setPeekOffset(fd, 0);
    var size: usize = 0;
    var count: u32 = 0;
    while (count < limits.socket_messages_max) {
        if (size + 4 > buffer.len) return error.TooMany;
        const got = receivePeek(fd, buffer[size + 4 ..], msg_trunc) orelse break;
        if (got > buffer.len - size - 4) return error.TooMany;
        std.mem.writeInt(u32, buffer[size..][0..4], @intCast(got), .little);
        size += 4 + got;
        count += 1;
        // A zero-length message does not move the offset: the walk would see it again.
        if (got == 0) break;
    } else return error.TooMany;
    assert(size <= buffer.len);
    return .{ .byte_count = @intCast(size), .message_count = count };
}

/// One MSG_PEEK; null when nothing is queued.
fn receivePeek(fd: i32, buffer: []u8, flags: u32) ?usize {
    const all = msg_peek | msg_dontwait | flags;
    var attempts: usize = 0;
    while (attempts < 16) : (attempts += 1) {
        const rc = linux.recvfrom(fd, buffer.ptr, buffer.len, all, null, null);
        switch (linux.E.init(rc)) {
            .SUCCESS => return rc,
            .INTR => continue,
            else => return null,
        }
    }
    return null;
}

fn restore(context: *kinds.RestoreContext, record: kinds.Record) kinds.RestoreError!void {
    assert(record.header.tag == @intFromEnum(image.RecordTag.socket));
    const socket = std.mem.bytesToValue(image.Socket, record.body[0..@sizeOf(image.Socket)]);
    if (socket.fd < 0) return error.BadRecord;
    inherited.take(context.info);
    // Not re-created (it leads outside): closed, or on 0-2 the restarting process's own.
    const entry = inherited.find(socket.inode) orelse return;
    inherited.moveAside(context.image_fd, socket.fd);
    inherited.moveAside(context.coordinator_fd, socket.fd);
    if (!inherited.placeAt(entry.read_fd, socket.fd, socket.fd_flags)) return error.Unrestorable;
    _ = linux.fcntl(socket.fd, linux.F.SETFL, socket.open_flags & o_settable);
}

/// A NETLINK_SOCK_DIAG socket, opened at the first Unix socket of a checkpoint.
const Diag = struct {
    fd: i32 = -1,

    const Found = struct {
        peer_inode: u64 = 0,
        established: bool = false,
        backlog: u32 = 0,
        name: []const u8 = "",
    };

    const Request = extern struct {
        header: linux.nlmsghdr,
        family: u8 = linux.AF.UNIX,
        protocol: u8 = 0,
        pad: u16 = 0,
        states: u32 = 0xffff_ffff,
        inode: u32,
        show: u32 = show_name | show_peer | show_rqlen,
        cookie: [2]u32 = .{ 0xffff_ffff, 0xffff_ffff },
    };
    const show_name = 1;
    const show_peer = 4;
    const show_rqlen = 0x10;
    const attribute_name = 0;
    const attribute_peer = 2;
    const attribute_rqlen = 4;
    const state_established = 1;
    const sock_diag_by_family = 20;

    fn close(self: *Diag) void {
        if (self.fd >= 0) _ = linux.close(self.fd);
        self.fd = -1;
    }

    /// What the kernel says about Unix socket `inode`; nothing when it cannot be asked.
    fn query(self: *Diag, inode: u32, name: []u8) Found {
        if (self.fd < 0) {
            const flags = linux.SOCK.DGRAM | linux.SOCK.CLOEXEC;
            const rc = linux.socket(linux.AF.NETLINK, flags, linux.NETLINK.SOCK_DIAG);
            if (linux.E.init(rc) != .SUCCESS) return .{};
            self.fd = @intCast(rc);
        }
        const request: Request = .{
            .header = .{
                .len = @sizeOf(Request),
                .type = @enumFromInt(sock_diag_by_family),
                .flags = linux.NLM_F_REQUEST,
                .seq = inode,
                .pid = 0,
            },
            .inode = inode,
        };
        if (linux.E.init(linux.write(self.fd, std.mem.asBytes(&request), @sizeOf(Request))) !=
            .SUCCESS) return .{};
        var reply: [8192]u8 align(4) = undefined;
        const got = linux.recvfrom(self.fd, &reply, reply.len, 0, null, null);
        if (linux.E.init(got) != .SUCCESS) return .{};
        return parse(reply[0..got], inode, name);
    }

    fn parse(reply: []align(4) const u8, inode: u32, name: []u8) Found {
        const header_size = @sizeOf(linux.nlmsghdr);
        const message_size = 16;
        if (reply.len < header_size + message_size) return .{};
        const header = std.mem.bytesToValue(linux.nlmsghdr, reply[0..header_size]);
        if (@intFromEnum(header.type) != sock_diag_by_family) return .{};
        const end = @min(reply.len, header.len);
        const message = reply[header_size..][0..message_size];
        if (std.mem.readInt(u32, message[4..8], .little) != inode) return .{};
        var found: Found = .{ .established = message[2] == state_established };
        var offset: usize = header_size + message_size;
        var count: usize = 0;
        while (offset + 4 <= end and count < 16) : (count += 1) {
            const size = std.mem.readInt(u16, reply[offset..][0..2], .little);
            const tag = std.mem.readInt(u16, reply[offset + 2 ..][0..2], .little);
            if (size < 4 or offset + size > end) break;
            const payload = reply[offset + 4 .. offset + size];
            switch (tag) {
                attribute_peer => if (payload.len >= 4) {
                    found.peer_inode = std.mem.readInt(u32, payload[0..4], .little);
                },
                attribute_rqlen => if (payload.len >= 8) {
                    found.backlog = std.mem.readInt(u32, payload[4..8], .little);
                },
                attribute_name => {
                    const length = @min(payload.len, name.len);
                    @memcpy(name[0..length], payload[0..length]);
                    found.name = name[0..length];
                },
                else => {},
            }
            offset += std.mem.alignForward(usize, size, 4);
        }
        return found;
    }
};

test "sockets: a socketpair's peer and queued bytes are found without consuming them" {
    // qemu-user does not pass sock_diag netlink requests through (docs/architectures.md).
    if (@import("emulator.zig").emulated()) return error.SkipZigTest;
    var pair: [2]i32 = undefined;
    const rc = linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM, 0, &pair);
    try std.testing.expectEqual(linux.E.SUCCESS, linux.E.init(rc));
    defer _ = linux.close(pair[0]);
    defer _ = linux.close(pair[1]);
    _ = linux.write(pair[0], "hello", 5);
    var stats: [2]linux.Stat = undefined;
    for (pair, 0..) |fd, index| _ = linux.fstat(fd, &stats[index]);
    var diag: Diag = .{};
    defer diag.close();
    const found = diag.query(@truncate(stats[1].ino), &name_buffer);
    try std.testing.expectEqual(stats[0].ino, found.peer_inode);
    const buffer = try std.testing.allocator.alloc(u8, limits.socket_size_max);
    defer std.testing.allocator.free(buffer);
    const queued = try peek(pair[1], sock_stream, buffer);
    try std.testing.expectEqual(@as(u32, 5), queued.byte_count);
    var again: [8]u8 = undefined;
    try std.testing.expectEqual(@as(usize, 5), linux.read(pair[1], &again, again.len));
}
