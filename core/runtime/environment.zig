//! Reads the runtime's settings from the environment the launcher prepared. Runs in the
//! library constructor, before the program, without allocating: it keeps pointers into envp.
const std = @import("std");
const assert = std.debug.assert;
const limits = @import("limits");
const protocol = @import("format").protocol;

/// DMTCP_COORD_FD is "FFFFFFFFFF:PPPPPPPPPP:WWWWWWWWWW": the connection, the process that
/// holds it and the worker id it was registered as. Each number has a fixed width, so that a
/// process can rewrite the value in place after it opens its own connection, and an exec'd
/// program finds the connection (and so the worker) its process holds.
pub const fd_field_width = 10;
pub const fd_field_count = 3;
pub const fd_value_size = fd_field_count * (fd_field_width + 1) - 1;

pub const Settings = struct {
    /// False when the library was loaded outside `dmtcp launch`: then it does nothing.
    enabled: bool = false,
    address: [4]u8 = .{ 127, 0, 0, 1 },
    port: u16 = 7779,
    token: [protocol.token_size]u8 = [_]u8{0} ** protocol.token_size,
    interval_s: i32 = protocol.interval_unchanged,
    /// The coordinator connection inherited from the launcher or across exec, if any.
    inherited_fd: i32 = -1,
    inherited_fd_pid: i32 = 0,
    inherited_worker_id: u32 = 0,
    /// The value bytes of DMTCP_COORD_FD inside the environment block, to rewrite in place.
    fd_value: ?*[fd_value_size]u8 = null,
    /// DMTCP_PID_MAP, ten digits: after a restart, the descriptor of the pid map the restart
    /// made, kept open so that a program exec'd later keeps the ids (pids.zig); 0 for none.
    pid_map_value: ?*[fd_field_width]u8 = null,
    inherited_pid_map_fd: i32 = 0,
    /// DMTCP_CHECKPOINT_DIR, copied (the environment it came from may go away: at restart it
    /// is mtcp_restart's). Empty means the current directory.
    checkpoint_dir: [limits.path_size_max]u8 = undefined,
    checkpoint_dir_size: usize = 0,
    /// DMTCP_SIGCKPT, else SIGUSR2 as in DMTCP.
    checkpoint_signal: u8 = std.os.linux.SIG.USR2,
    /// DMTCP_TIMINGS=1: one line on stderr per checkpoint and restart with how long each step
    /// took (for benchmarks; the program's stderr is not ours otherwise).
    timings: bool = false,
    /// DMTCP_QUIET (0 to 2): at 2 the runtime's warnings are not printed.
    quiet: u8 = 0,

    pub fn checkpointDir(self: *const Settings) []const u8 {
        return self.checkpoint_dir[0..self.checkpoint_dir_size];
    }
};

pub fn parse(envp: [*:null]const ?[*:0]u8) Settings {
    var settings: Settings = .{};
    var have_token = false;
    var index: usize = 0;
    while (index < limits.env_count_max) : (index += 1) {
        const entry = envp[index] orelse break;
        const text = std.mem.span(entry);
        if (value(text, "DMTCP_COORD_TOKEN")) |token| {
            have_token = token.len == 2 * protocol.token_size and
                (std.fmt.hexToBytes(&settings.token, token) catch null) != null;
        } else if (value(text, "DMTCP_COORD_ADDR")) |address| {
            settings.address = parseAddress(address) orelse settings.address;
        } else if (value(text, "DMTCP_COORD_PORT")) |port| {
            settings.port = std.fmt.parseInt(u16, port, 10) catch settings.port;
        } else if (value(text, "DMTCP_CHECKPOINT_INTERVAL")) |interval| {
            settings.interval_s = std.fmt.parseInt(i32, interval, 10) catch settings.interval_s;
        } else if (value(text, "DMTCP_CHECKPOINT_DIR")) |dir| {
            if (dir.len < settings.checkpoint_dir.len) {
                @memcpy(settings.checkpoint_dir[0..dir.len], dir);
                settings.checkpoint_dir_size = dir.len;
            }
        } else if (value(text, "DMTCP_SIGCKPT")) |signal| {
            const number = std.fmt.parseInt(u8, signal, 10) catch settings.checkpoint_signal;
            if (number > 0 and number < 65) settings.checkpoint_signal = number;
        } else if (value(text, "DMTCP_QUIET")) |quiet| {
            settings.quiet = std.fmt.parseInt(u8, quiet, 10) catch settings.quiet;
        } else if (value(text, "DMTCP_TIMINGS")) |timings| {
            settings.timings = std.mem.eql(u8, timings, "1");
        } else if (value(text, "DMTCP_COORD_FD")) |fd_text| {
            parseFd(&settings, entry, text.len - fd_text.len, fd_text);
        } else if (value(text, "DMTCP_PID_MAP")) |map_text| {
            if (map_text.len != fd_field_width) continue;
            const fd = std.fmt.parseInt(u31, map_text, 10) catch continue;
            settings.inherited_pid_map_fd = fd;
            settings.pid_map_value = @ptrCast(entry + (text.len - map_text.len));
        }
    }
    settings.enabled = have_token and settings.port != 0;
    return settings;
}

fn value(entry: []const u8, comptime name: []const u8) ?[]const u8 {
    if (!std.mem.startsWith(u8, entry, name ++ "=")) return null;
    return entry[name.len + 1 ..];
}

fn parseAddress(text: []const u8) ?[4]u8 {
    const address = std.net.Ip4Address.parse(text, 0) catch return null;
    return @bitCast(address.sa.addr);
}

fn parseFd(settings: *Settings, entry: [*:0]u8, offset: usize, text: []const u8) void {
    if (text.len != fd_value_size) return;
    var fields: [fd_field_count]u32 = undefined;
    for (&fields, 0..) |*field, index| {
        const start = index * (fd_field_width + 1);
        if (index > 0 and text[start - 1] != ':') return;
        field.* = std.fmt.parseInt(u32, text[start..][0..fd_field_width], 10) catch return;
    }
    settings.inherited_fd = std.math.cast(i32, fields[0]) orelse return;
    settings.inherited_fd_pid = std.math.cast(i32, fields[1]) orelse return;
    settings.inherited_worker_id = fields[2];
    settings.fd_value = @ptrCast(entry + offset);
}

/// Rewrites a ten-digit number in place (DMTCP_PID_MAP).
pub fn writeNumber(slot: *[fd_field_width]u8, number: u32) void {
    _ = std.fmt.bufPrint(slot, "{d:0>10}", .{number}) catch unreachable;
}

/// Rewrites DMTCP_COORD_FD in place: fixed width, no allocation, safe after fork.
pub fn writeFd(slot: *[fd_value_size]u8, fd: i32, pid: i32, worker_id: u32) void {
    assert(fd >= 0);
    assert(pid > 0);
    const fields = [fd_field_count]u32{ @intCast(fd), @intCast(pid), worker_id };
    for (fields, 0..) |field, index| {
        const start = index * (fd_field_width + 1);
        if (index > 0) slot[start - 1] = ':';
        _ = std.fmt.bufPrint(slot[start..][0..fd_field_width], "{d:0>10}", .{field}) catch
            unreachable;
    }
}

test "environment: parses the launcher's variables and rewrites the fd in place" {
    var token_entry = "DMTCP_COORD_TOKEN=00112233445566778899aabbccddeeff".*;
    var port_entry = "DMTCP_COORD_PORT=4567".*;
    var address_entry = "DMTCP_COORD_ADDR=10.1.2.3".*;
    var fd_entry = "DMTCP_COORD_FD=0000000821:0000012345:0000040000".*;
    var dir_entry = "DMTCP_CHECKPOINT_DIR=/tmp/ckpt".*;
    var envp = [_:null]?[*:0]u8{ &token_entry, &port_entry, &address_entry, &fd_entry, &dir_entry };
    const settings = parse(&envp);
    try std.testing.expect(settings.enabled);
    try std.testing.expectEqual(@as(u16, 4567), settings.port);
    try std.testing.expectEqualSlices(u8, &.{ 10, 1, 2, 3 }, &settings.address);
    try std.testing.expectEqual(@as(i32, 821), settings.inherited_fd);
    try std.testing.expectEqual(@as(i32, 12345), settings.inherited_fd_pid);
    try std.testing.expectEqual(@as(u32, 40000), settings.inherited_worker_id);
    try std.testing.expectEqualStrings("/tmp/ckpt", settings.checkpointDir());
    try std.testing.expectEqual(std.os.linux.SIG.USR2, settings.checkpoint_signal);
    writeFd(settings.fd_value.?, 7, 99, 41000);
    const expected_entry = "DMTCP_COORD_FD=0000000007:0000000099:0000041000";
    try std.testing.expectEqualStrings(expected_entry, &fd_entry);
}

test "environment: without a token the runtime stays disabled" {
    var port_entry = "DMTCP_COORD_PORT=4567".*;
    var envp = [_:null]?[*:0]u8{&port_entry};
    try std.testing.expect(!parse(&envp).enabled);
}
