//! The worker's side of the coordinator protocol over raw system calls: no libc, no errno, no
//! allocation, so it runs on the checkpoint thread and in fork handlers alike.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const protocol = @import("format").protocol;

pub const Error = error{
    ConnectFailed,
    Timeout,
    Closed,
    Io,
    BadMessage,
    Rejected,
};

pub const Identity = struct {
    name: []const u8,
    host: []const u8,
    real_pid: i32,
};

pub const Accepted = struct {
    worker_id: u32,
    computation_id: u64,
    interval_s: i32,
};

/// A connected TCP socket with TCP_NODELAY; barriers are latency-bound round trips.
pub fn connect(address: [4]u8, port: u16) Error!i32 {
    const flags = linux.SOCK.STREAM | linux.SOCK.CLOEXEC | linux.SOCK.NONBLOCK;
    const rc = linux.socket(linux.AF.INET, flags, 0);
    if (linux.E.init(rc) != .SUCCESS) return error.ConnectFailed;
    const fd: i32 = @intCast(rc);
    errdefer _ = linux.close(fd);
    const one: c_int = 1;
    _ = linux.setsockopt(fd, linux.IPPROTO.TCP, linux.TCP.NODELAY, @ptrCast(&one), @sizeOf(c_int));
    const sockaddr: linux.sockaddr.in = .{
        .port = std.mem.nativeToBig(u16, port),
        .addr = @bitCast(address),
    };
    const connect_rc = linux.connect(fd, &sockaddr, @sizeOf(linux.sockaddr.in));
    switch (linux.E.init(connect_rc)) {
        .SUCCESS => {},
        .INPROGRESS => {
            try waitFor(fd, linux.POLL.OUT, limits.handshake_timeout_ms);
            var so_error: c_int = 0;
            var size: linux.socklen_t = @sizeOf(c_int);
            _ = linux.getsockopt(fd, linux.SOL.SOCKET, linux.SO.ERROR, @ptrCast(&so_error), &size);
            if (so_error != 0) return error.ConnectFailed;
        },
        else => return error.ConnectFailed,
    }
    return fd;
}

/// Sends hello_worker and waits (bounded) for the coordinator's answer.
pub fn hello(
    fd: i32,
    token: *const [protocol.token_size]u8,
    identity: Identity,
    interval_s: i32,
) Error!Accepted {
    var header: protocol.Header = .{
        .kind = @intFromEnum(protocol.Kind.hello_worker),
        .interval_s = interval_s,
    };
    return helloAs(fd, token, identity, &header);
}

/// Sends hello_worker for a spare connection (`flags.spare`, the owner's worker id); the
/// coordinator's answer, which names the spare's own worker id, is read by `awaitAccept`.
pub fn sendHelloSpare(
    fd: i32,
    token: *const [protocol.token_size]u8,
    identity: Identity,
    owner_worker_id: u32,
) Error!void {
    assert(owner_worker_id != 0);
    var header: protocol.Header = .{
        .kind = @intFromEnum(protocol.Kind.hello_worker),
        .worker_id = owner_worker_id,
        .flags = @bitCast(protocol.Flags{ .spare = true }),
    };
    try sendHello(fd, token, identity, &header);
}

fn helloAs(
    fd: i32,
    token: *const [protocol.token_size]u8,
    identity: Identity,
    header: *protocol.Header,
) Error!Accepted {
    try sendHello(fd, token, identity, header);
    return awaitAccept(fd);
}

fn sendHello(
    fd: i32,
    token: *const [protocol.token_size]u8,
    identity: Identity,
    header: *protocol.Header,
) Error!void {
    assert(fd >= 0);
    assert(identity.real_pid > 0);
    var payload_buffer: [2 * limits.name_size_max + 2]u8 = undefined;
    const payload = namePayload(&payload_buffer, identity);
    header.real_pid = @intCast(identity.real_pid);
    header.state = @intFromEnum(protocol.WorkerState.running);
    header.arch = @intFromEnum(protocol.Arch.current());
    header.token = token.*;
    try send(fd, header, payload);
}

/// Waits (bounded) for the coordinator's answer to a hello.
pub fn awaitAccept(fd: i32) Error!Accepted {
    assert(fd >= 0);
    var reply: protocol.Header = undefined;
    var reply_payload: [0]u8 = .{};
    try waitFor(fd, linux.POLL.IN, limits.handshake_timeout_ms);
    _ = try receive(fd, &reply, &reply_payload);
    if (protocol.kindOf(&reply) != .accept) return error.Rejected;
    if (reply.worker_id == 0) return error.BadMessage;
    return .{
        .worker_id = reply.worker_id,
        .computation_id = reply.computation_id,
        .interval_s = reply.interval_s,
    };
}

/// What a restarted process tells the coordinator about itself: the identity in its image.
pub const Restarted = struct {
    worker_id: u32,
    computation_id: u64,
    generation: u32,
    peer_count: u32,
};

/// Sends hello_restart and waits (bounded) for the coordinator's answer.
pub fn helloRestart(
    fd: i32,
    token: *const [protocol.token_size]u8,
    identity: Identity,
    restarted: Restarted,
) Error!Accepted {
    assert(fd >= 0);
    assert(restarted.worker_id != 0);
    var payload_buffer: [2 * limits.name_size_max + 2]u8 = undefined;
    const payload = namePayload(&payload_buffer, identity);
    var header: protocol.Header = .{
        .kind = @intFromEnum(protocol.Kind.hello_restart),
        .real_pid = @intCast(identity.real_pid),
        .worker_id = restarted.worker_id,
        .computation_id = restarted.computation_id,
        .generation = restarted.generation,
        .peer_count = restarted.peer_count,
        .state = @intFromEnum(protocol.WorkerState.restarting),
        .arch = @intFromEnum(protocol.Arch.current()),
        .token = token.*,
    };
    try send(fd, &header, payload);
    var reply: protocol.Header = undefined;
    var reply_payload: [0]u8 = .{};
    try waitFor(fd, linux.POLL.IN, limits.handshake_timeout_ms);
    _ = try receive(fd, &reply, &reply_payload);
    if (protocol.kindOf(&reply) != .accept) return error.Rejected;
    return .{
        .worker_id = reply.worker_id,
        .computation_id = reply.computation_id,
        .interval_s = reply.interval_s,
    };
}

/// "name\x00host\x00", each cut to name_size_max.
pub fn namePayload(buffer: *[2 * limits.name_size_max + 2]u8, identity: Identity) []const u8 {
    const name = identity.name[0..@min(identity.name.len, limits.name_size_max)];
    const host = identity.host[0..@min(identity.host.len, limits.name_size_max)];
    @memcpy(buffer[0..name.len], name);
    buffer[name.len] = 0;
    @memcpy(buffer[name.len + 1 ..][0..host.len], host);
    buffer[name.len + 1 + host.len] = 0;
    return buffer[0 .. name.len + host.len + 2];
}

/// Header and payload go out in one write when they fit one buffer: one segment, one
/// wake-up of the coordinator (a forked child announces itself this way).
pub fn send(fd: i32, header: *protocol.Header, payload: []const u8) Error!void {
    assert(payload.len <= protocol.payload_size_max);
    header.payload_size = @intCast(payload.len);
    const bytes = protocol.encode(header);
    var message: [protocol.header_size + send_payload_size_max]u8 = undefined;
    if (payload.len > send_payload_size_max) {
        try writeAll(fd, &bytes);
        try writeAll(fd, payload);
        return;
    }
    @memcpy(message[0..protocol.header_size], &bytes);
    @memcpy(message[protocol.header_size..][0..payload.len], payload);
    try writeAll(fd, message[0 .. protocol.header_size + payload.len]);
}

/// Payloads up to this size are sent together with their header (names, image paths).
const send_payload_size_max = limits.path_size_max + 512;

/// Reads one message. A payload longer than `payload` is read and dropped (its length is
/// returned as is), so a newer coordinator's extra data never desynchronizes the stream.
pub fn receive(fd: i32, header: *protocol.Header, payload: []u8) Error!usize {
    var bytes: [protocol.header_size]u8 = undefined;
    try readAll(fd, &bytes);
    header.* = protocol.decode(&bytes) catch return error.BadMessage;
    const size: usize = header.payload_size;
    const kept = @min(size, payload.len);
    try readAll(fd, payload[0..kept]);
    var skipped: usize = kept;
    var scratch: [256]u8 = undefined;
    while (skipped < size) {
        const chunk = @min(scratch.len, size - skipped);
        try readAll(fd, scratch[0..chunk]);
        skipped += chunk;
    }
    return size;
}

fn writeAll(fd: i32, bytes: []const u8) Error!void {
    var done: usize = 0;
    while (done < bytes.len) {
        const rc = linux.sendto(
            fd,
            bytes[done..].ptr,
            bytes.len - done,
            linux.MSG.NOSIGNAL,
            null,
            0,
        );
        switch (linux.E.init(rc)) {
            .SUCCESS => done += rc,
            .INTR => {},
            .AGAIN => try waitFor(fd, linux.POLL.OUT, limits.handshake_timeout_ms),
            else => return error.Io,
        }
    }
}

/// Blocks until the bytes arrive; the socket may be non-blocking, so EAGAIN waits in poll
/// without a deadline (the checkpoint thread idles here between checkpoints).
fn readAll(fd: i32, bytes: []u8) Error!void {
    var done: usize = 0;
    while (done < bytes.len) {
        const rc = linux.read(fd, bytes[done..].ptr, bytes.len - done);
        switch (linux.E.init(rc)) {
            .SUCCESS => {
                if (rc == 0) return error.Closed;
                done += rc;
            },
            .INTR => {},
            .AGAIN => try waitFor(fd, linux.POLL.IN, -1),
            else => return error.Io,
        }
    }
}

/// Waits for `events` on fd; timeout_ms < 0 waits for ever.
pub fn waitFor(fd: i32, events: i16, timeout_ms: i32) Error!void {
    var pollfd = [1]linux.pollfd{.{ .fd = fd, .events = events, .revents = 0 }};
    var timeout: linux.timespec = .{
        .sec = @divTrunc(timeout_ms, 1000),
        .nsec = @rem(timeout_ms, 1000) * std.time.ns_per_ms,
    };
    while (true) {
        const rc = linux.ppoll(&pollfd, 1, if (timeout_ms < 0) null else &timeout, null);
        switch (linux.E.init(rc)) {
            .SUCCESS => {
                if (rc == 0) return error.Timeout;
                return;
            },
            .INTR => continue,
            else => return error.Io,
        }
    }
}

test "connection: name payload is two NUL-terminated strings" {
    var buffer: [2 * limits.name_size_max + 2]u8 = undefined;
    const payload = namePayload(&buffer, .{ .name = "a.out", .host = "node1", .real_pid = 1 });
    try std.testing.expectEqualStrings("a.out\x00node1\x00", payload);
}
