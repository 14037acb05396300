//! The sockets of a tree (tree.zig, step 2): one socketpair for each pair of Unix sockets
//! whose two ends the images hold, one bound listening socket per listening one, and one
//! socketpair whose other end is closed at once for a socket its peer had left. Each end's
//! queued bytes are written into its peer, so that they are queued for it again. Every
//! process inherits them all through the fork and keeps its own (`keepOwn`); the runtime
//! moves them to their numbers (core/runtime/sockets.zig).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const state = @import("state.zig");
const tree = @import("tree.zig");
const fail = @import("fail.zig").fail;

/// sockaddr_un's sun_path.
const path_size_max = 108;
const sock_stream = 1;
const msg_dontwait = 0x40;
const msg_nosignal = 0x4000;
const so_sndbuf = 7;

const Plan = struct {
    inode: u64,
    peer_inode: u64,
    type: u16,
    state: image.SocketState,
    backlog: u32,
    path: [path_size_max]u8 = undefined,
    path_size: u32 = 0,
    byte_count: u32 = 0,
    data_target: u32 = 0,
    data_offset: u64 = 0,
    /// This socket, once created; -1 before, and for a socket that leads outside.
    fd: i32 = -1,
    /// The peer of a socket its peer had left: written to, then closed, before the fork.
    orphan_peer_fd: i32 = -1,
};

const Use = struct { target: u16, plan: u16 };

var plans: [limits.sockets_max]Plan = undefined;
var plan_count: usize = 0;
var use_list: [limits.sockets_max * 4]Use = undefined;
var use_count: usize = 0;

/// One `socket` record of image `target`.
pub fn plan(target: usize, body: []const u8, data_offset: u64) void {
    const socket = std.mem.bytesToValue(image.Socket, body[0..@sizeOf(image.Socket)]);
    tree.noteFd(socket.fd);
    if (socket.domain != image.socket_domain_unix) return;
    if (socket.state == @intFromEnum(image.SocketState.other)) return;
    const entry = find(socket.inode) orelse add(socket, body[@sizeOf(image.Socket)..]);
    if (socket.byte_count > 0 and entry.byte_count == 0) {
        entry.byte_count = socket.byte_count;
        entry.data_target = @intCast(target);
        entry.data_offset = data_offset;
    }
    if (use_count == use_list.len) fail("too many socket descriptors in the images");
    const index = (@intFromPtr(entry) - @intFromPtr(&plans)) / @sizeOf(Plan);
    use_list[use_count] = .{ .target = @intCast(target), .plan = @intCast(index) };
    use_count += 1;
}

fn find(inode: u64) ?*Plan {
    for (plans[0..plan_count]) |*entry| if (entry.inode == inode) return entry;
    return null;
}

fn add(socket: image.Socket, path: []const u8) *Plan {
    if (plan_count == plans.len) fail("too many sockets in the images");
    assert(path.len == socket.path_size);
    plans[plan_count] = .{
        .inode = socket.inode,
        .peer_inode = socket.peer_inode,
        .type = socket.type,
        .state = @enumFromInt(socket.state),
        .backlog = socket.backlog,
    };
    const entry = &plans[plan_count];
    plan_count += 1;
    entry.path_size = @intCast(@min(path.len, path_size_max));
    @memcpy(entry.path[0..entry.path_size], path[0..entry.path_size]);
    return entry;
}

/// Creates every socket the images share, then queues their bytes again.
pub fn create() void {
    for (plans[0..plan_count]) |*entry| {
        if (entry.fd >= 0) continue;
        switch (entry.state) {
            .listening => listen(entry),
            .connected => createPair(entry),
            .other => unreachable,
        }
    }
    for (plans[0..plan_count]) |*entry| {
        if (entry.fd < 0 or entry.byte_count == 0) continue;
        const peer = if (entry.peer_inode == 0) null else find(entry.peer_inode);
        const writer = if (peer) |found| found.fd else entry.orphan_peer_fd;
        if (writer >= 0) refill(entry, writer);
    }
    for (plans[0..plan_count]) |*entry| {
        if (entry.orphan_peer_fd >= 0) _ = linux.close(entry.orphan_peer_fd);
        entry.orphan_peer_fd = -1;
    }
}

/// Both ends when the images hold both; a socket its peer had left gets a peer that is
/// closed once its bytes are written: the program reads them, then end-of-file.
fn createPair(entry: *Plan) void {
    const peer: ?*Plan = if (entry.peer_inode == 0) null else find(entry.peer_inode);
    if (entry.peer_inode != 0 and peer == null) return; // Leads outside the computation.
    var pair: [2]i32 = undefined;
    const rc = linux.socketpair(linux.AF.UNIX, entry.type, 0, &pair);
    if (linux.E.init(rc) != .SUCCESS) fail("cannot create a socket pair");
    entry.fd = tree.lift(pair[0]);
    if (peer) |other| {
        assert(other.fd < 0);
        other.fd = tree.lift(pair[1]);
    } else {
        entry.orphan_peer_fd = tree.lift(pair[1]);
    }
}

/// Binds and listens again where the socket did; the socket file the dead process left
/// behind is removed first (only if it is a socket). Connections that were waiting are lost.
fn listen(entry: *Plan) void {
    if (entry.path_size == 0) return;
    var address = std.mem.zeroes(linux.sockaddr.un);
    address.family = linux.AF.UNIX;
    @memcpy(address.path[0..entry.path_size], entry.path[0..entry.path_size]);
    if (address.path[0] != 0) {
        var stat: linux.Stat = undefined;
        const path: [*:0]const u8 = @ptrCast(&address.path);
        const found = linux.fstatat(linux.AT.FDCWD, path, &stat, linux.AT.SYMLINK_NOFOLLOW);
        if (linux.E.init(found) == .SUCCESS and linux.S.ISSOCK(stat.mode)) {
            _ = linux.unlinkat(linux.AT.FDCWD, path, 0);
        }
    }
    const rc = linux.socket(linux.AF.UNIX, entry.type, 0);
    if (linux.E.init(rc) != .SUCCESS) fail("cannot create a listening socket");
    const fd: i32 = @intCast(rc);
    const size: linux.socklen_t = @intCast(@sizeOf(linux.sa_family_t) + entry.path_size);
    const bound = linux.bind(fd, @ptrCast(&address), size);
    if (linux.E.init(bound) != .SUCCESS or
        linux.E.init(linux.listen(fd, @intCast(@max(entry.backlog, 1)))) != .SUCCESS)
    {
        warn("dmtcp: restart: a Unix socket cannot listen again on its path; left closed\n");
        _ = linux.close(fd);
        return;
    }
    entry.fd = tree.lift(fd);
}

/// Queues `entry`'s bytes again by writing them into its peer, one message at a time for
/// datagram and seqpacket sockets.
fn refill(entry: *const Plan, writer: i32) void {
    assert(entry.byte_count <= limits.socket_size_max);
    assert(entry.byte_count <= state.read_buffer.len);
    const bytes = state.read_buffer[0..entry.byte_count];
    tree.readImageAt(entry.data_target, bytes, entry.data_offset);
    // The peer's send buffer holds the bytes until they are read: as large as allowed.
    const size: i32 = @intCast(@min(entry.byte_count * 2 + 65536, std.math.maxInt(i32)));
    _ = linux.setsockopt(writer, linux.SOL.SOCKET, so_sndbuf, std.mem.asBytes(&size), 4);
    if (entry.type == sock_stream) {
        if (!send(writer, bytes)) warn("dmtcp: restart: a socket's queued bytes do not fit\n");
        return;
    }
    var offset: usize = 0;
    var count: usize = 0;
    while (offset + 4 <= bytes.len and count < limits.socket_messages_max) : (count += 1) {
        const length = std.mem.readInt(u32, bytes[offset..][0..4], .little);
        if (length > bytes.len - offset - 4) fail("corrupt image: a socket message overruns");
        if (!send(writer, bytes[offset + 4 ..][0..length])) {
            warn("dmtcp: restart: a socket's queued messages do not fit\n");
            return;
        }
        offset += 4 + length;
    }
}

fn send(fd: i32, bytes: []const u8) bool {
    var done: usize = 0;
    var attempts: usize = 0;
    while (attempts < 1024) : (attempts += 1) {
        const rest = bytes[done..];
        const rc = linux.sendto(fd, rest.ptr, rest.len, msg_dontwait | msg_nosignal, null, 0);
        switch (linux.E.init(rc)) {
            .SUCCESS => done += rc,
            .INTR => continue,
            else => return false,
        }
        if (done == bytes.len) return true;
    }
    return false;
}

/// Step 4: close the sockets this process does not hold; hand down the ones it does.
pub fn keepOwn(current: usize) void {
    for (plans[0..plan_count], 0..) |entry, index| {
        if (entry.fd < 0) continue;
        if (!uses(current, index)) {
            _ = linux.close(entry.fd);
            continue;
        }
        tree.handDown(entry.inode, entry.fd, entry.fd);
    }
}

fn uses(target: usize, index: usize) bool {
    for (use_list[0..use_count]) |use| {
        if (use.target == target and use.plan == index) return true;
    }
    return false;
}

fn warn(comptime text: []const u8) void {
    _ = linux.write(2, text.ptr, text.len);
}
