//! The coordinator wire protocol, version 1: the one definition. The TypeScript mirror
//! (src/format/protocol.ts) is checked against `zig build format-manifest` and against the
//! byte vectors in test/vectors/protocol.json. docs/protocol.md explains the flows.
//!
//! Every message is an 80-byte little-endian `Header`, followed by `payload_size` bytes of
//! payload (NUL-separated strings where a kind has one). The first message on a connection is a
//! hello (`hello_worker`, `hello_restart` or `hello_command`) carrying the computation's token;
//! the coordinator refuses and closes a connection whose first message is anything else.
const std = @import("std");
const builtin = @import("builtin");
const assert = std.debug.assert;

pub const magic: u32 = 0x50544d44; // "DMTP" as little-endian bytes.
pub const version: u16 = 1;
pub const token_size = 16;
/// A `--list` reply for thousands of workers fits; anything larger is a corrupt peer.
pub const payload_size_max: u32 = 1 << 20;
/// First worker id, as DMTCP numbers its virtual pids (40000, 41000, ...).
pub const worker_id_first: u32 = 40000;
pub const worker_id_step: u32 = 1000;
/// `interval_s` value meaning "leave the interval as it is".
pub const interval_unchanged: i32 = -1;

pub const Kind = enum(u16) {
    /// worker → coordinator: a new process joins. Payload: "name\x00host\x00".
    hello_worker = 1,
    /// worker → coordinator: a restarted process rejoins its computation. Payload as above.
    hello_restart = 2,
    /// `dmtcp command` → coordinator: one user command (`command`, `interval_s`).
    hello_command = 3,
    /// coordinator → worker: joined; carries `worker_id`, `computation_id`, `generation`.
    accept = 4,
    /// coordinator → any: refused; `status` says why; the connection is then closed.
    reject = 5,
    /// coordinator → `dmtcp command`: the reply. Payload: the `--list` text for `list`.
    command_result = 6,
    /// worker → coordinator: the process exec'd a new program. Payload as in hello_worker.
    worker_info = 7,
    /// coordinator → worker: checkpoint now (`generation`; `flags.exit_after_checkpoint`).
    checkpoint = 8,
    /// worker → coordinator: this worker reached `barrier`.
    barrier = 9,
    /// coordinator → worker: every worker reached `barrier`; `peer_count` of them.
    barrier_released = 10,
    /// worker → coordinator: the image is on disk (`status` 0) or failed. Payload: "path\x00".
    image_written = 11,
    /// worker → coordinator: threads released, running again.
    resuming = 12,
    /// coordinator → worker: end the process now (exit code 0).
    kill = 13,
};

/// Ordered so that the minimum over workers is meaningful, as in DMTCP.
pub const WorkerState = enum(u16) {
    unknown = 0,
    running = 1,
    presuspend = 2,
    suspended = 3,
    checkpointing = 4,
    checkpointed = 5,
    restarting = 6,
};

pub const Command = enum(u16) {
    none = 0,
    status = 1,
    list = 2,
    checkpoint = 3,
    blocking_checkpoint = 4,
    kill_after_checkpoint = 5,
    interval = 6,
    kill = 7,
    quit = 8,
};

/// Reply and refusal codes; the first three keep DMTCP's `coordCmdStatus` values.
pub const Status = enum(i16) {
    success = 0,
    invalid_command = -1,
    not_running = -2,
    bad_token = -4,
    wrong_computation = -5,
    bad_message = -6,
    checkpoint_failed = -7,
};

pub const Barrier = enum(u16) {
    none = 0,
    suspended = 1,
    checkpointed = 2,
    written = 3,
    restarted = 4,
};

pub const Arch = enum(u16) {
    unknown = 0,
    x86_64 = 1,
    i386 = 2,
    aarch64 = 3,
    armv7 = 4,

    pub fn current() Arch {
        return switch (builtin.cpu.arch) {
            .x86_64 => .x86_64,
            .x86 => .i386,
            .aarch64 => .aarch64,
            .arm => .armv7,
            else => @compileError("unsupported architecture"),
        };
    }
};

pub const Flags = packed struct(u32) {
    exit_after_checkpoint: bool = false,
    running: bool = false,
    /// hello_worker: a spare connection for a child this worker (`worker_id`) may fork; a
    /// peer only once a process announces itself on it with worker_info.
    spare: bool = false,
    reserved: u29 = 0,
};

/// Fields are raw integers, not Zig enums, so that a peer's bad value is an error we report
/// rather than undefined behaviour; `decode` checks every one.
pub const Header = extern struct {
    magic: u32 = magic,
    version: u16 = version,
    kind: u16,
    payload_size: u32 = 0,
    real_pid: u32 = 0,
    worker_id: u32 = 0,
    generation: u32 = 0,
    computation_id: u64 = 0,
    peer_count: u32 = 0,
    interval_s: i32 = interval_unchanged,
    state: u16 = @intFromEnum(WorkerState.unknown),
    command: u16 = @intFromEnum(Command.none),
    status: i16 = @intFromEnum(Status.success),
    barrier: u16 = @intFromEnum(Barrier.none),
    arch: u16 = @intFromEnum(Arch.unknown),
    reserved0: u16 = 0,
    flags: u32 = 0,
    reserved1: u64 = 0,
    token: [token_size]u8 = [_]u8{0} ** token_size,
};

pub const header_size = 80;

comptime {
    assert(builtin.cpu.arch.endian() == .little);
    assert(@sizeOf(Header) == header_size);
    assert(@offsetOf(Header, "computation_id") % 8 == 0);
    assert(@offsetOf(Header, "reserved1") % 8 == 0);
    assert(@offsetOf(Header, "token") == header_size - token_size);
}

pub const DecodeError = error{
    BadMagic,
    BadVersion,
    BadKind,
    BadState,
    BadCommand,
    BadStatus,
    BadBarrier,
    BadArch,
    PayloadTooLarge,
};

pub fn encode(header: *const Header) [header_size]u8 {
    assert(header.magic == magic);
    assert(header.payload_size <= payload_size_max);
    return @bitCast(header.*);
}

/// Checks every field a peer could get wrong; returns the header only when all are valid.
pub fn decode(bytes: *const [header_size]u8) DecodeError!Header {
    const header: Header = @bitCast(bytes.*);
    if (header.magic != magic) return error.BadMagic;
    if (header.version != version) return error.BadVersion;
    if (header.payload_size > payload_size_max) return error.PayloadTooLarge;
    _ = std.meta.intToEnum(Kind, header.kind) catch return error.BadKind;
    _ = std.meta.intToEnum(WorkerState, header.state) catch return error.BadState;
    _ = std.meta.intToEnum(Command, header.command) catch return error.BadCommand;
    _ = std.meta.intToEnum(Status, header.status) catch return error.BadStatus;
    _ = std.meta.intToEnum(Barrier, header.barrier) catch return error.BadBarrier;
    _ = std.meta.intToEnum(Arch, header.arch) catch return error.BadArch;
    return header;
}

/// Only valid on a header that `decode` accepted.
pub fn kindOf(header: *const Header) Kind {
    return @enumFromInt(header.kind);
}

test "protocol: encode and decode round-trip every field" {
    var header: Header = .{ .kind = @intFromEnum(Kind.accept) };
    header.worker_id = worker_id_first;
    header.computation_id = 0x0123456789abcdef;
    header.flags = @bitCast(Flags{ .running = true });
    const bytes = encode(&header);
    const back = try decode(&bytes);
    try std.testing.expectEqual(header, back);
    try std.testing.expectEqual(Kind.accept, kindOf(&back));
}

test "protocol: decode refuses bad magic, kind and oversized payload" {
    var header: Header = .{ .kind = @intFromEnum(Kind.kill) };
    var bytes = encode(&header);
    bytes[0] ^= 0xff;
    try std.testing.expectError(error.BadMagic, decode(&bytes));
    bytes = encode(&header);
    bytes[6] = 200;
    try std.testing.expectError(error.BadKind, decode(&bytes));
    std.mem.writeInt(u32, bytes[8..12], payload_size_max + 1, .little);
    bytes[6] = @intFromEnum(Kind.kill);
    try std.testing.expectError(error.PayloadTooLarge, decode(&bytes));
}

/// One entry of test/vectors/protocol.json; absent fields take the header's defaults.
const Vector = struct {
    name: []const u8,
    header: struct {
        kind: u16,
        real_pid: u32 = 0,
        worker_id: u32 = 0,
        generation: u32 = 0,
        computation_id: []const u8 = "0",
        peer_count: u32 = 0,
        interval_s: i32 = interval_unchanged,
        state: u16 = 0,
        command: u16 = 0,
        status: i16 = 0,
        barrier: u16 = 0,
        arch: u16 = 0,
        flags: u32 = 0,
        token: []const u8 = "00000000000000000000000000000000",
    },
    payload: []const u8,
    bytes: []const u8,
};

test "protocol: byte vectors shared with the TypeScript mirror" {
    const allocator = std.testing.allocator;
    const text = @embedFile("protocol_vectors");
    const parsed = try std.json.parseFromSlice([]Vector, allocator, text, .{});
    defer parsed.deinit();
    try std.testing.expect(parsed.value.len > 0);
    for (parsed.value) |vector| {
        const v = vector.header;
        var header: Header = .{
            .kind = v.kind,
            .real_pid = v.real_pid,
            .worker_id = v.worker_id,
            .generation = v.generation,
            .computation_id = try std.fmt.parseInt(u64, v.computation_id, 16),
            .peer_count = v.peer_count,
            .interval_s = v.interval_s,
            .state = v.state,
            .command = v.command,
            .status = v.status,
            .barrier = v.barrier,
            .arch = v.arch,
            .flags = v.flags,
            .payload_size = @intCast(vector.payload.len / 2),
        };
        _ = try std.fmt.hexToBytes(&header.token, v.token);
        var expected: [header_size + 256]u8 = undefined;
        const expected_bytes = try std.fmt.hexToBytes(&expected, vector.bytes);
        const encoded = encode(&header);
        try std.testing.expectEqualSlices(u8, expected_bytes[0..header_size], &encoded);
        const decoded = try decode(expected_bytes[0..header_size]);
        try std.testing.expectEqual(header, decoded);
        var payload: [256]u8 = undefined;
        const payload_bytes = try std.fmt.hexToBytes(&payload, vector.payload);
        try std.testing.expectEqualSlices(u8, payload_bytes, expected_bytes[header_size..]);
    }
}
