//! The pseudo-terminals of a tree (tree.zig, step 2): one new pty per number whose master
//! the images hold, its slave opened at once, the bytes that were waiting in it written back
//! each way, and the settings and window size it had set (TCSETS, TIOCSWINSZ). Every process
//! inherits both ends through the fork; a session leader whose controlling terminal was the
//! slave takes it again right after its setsid (TIOCSCTTY), before it forks the rest of its
//! session; each process keeps the ends it held (`keepOwn`), which the runtime moves to their
//! numbers (core/runtime/ptys.zig).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const state = @import("state.zig");
const tree = @import("tree.zig");
const fail = @import("fail.zig").fail;

const tcsets = 0x5402;
const tiocswinsz = 0x5414;
const tiocsctty = 0x540e;
/// TIOCGPTN: _IOR('T', 0x30, unsigned int); TIOCSPTLCK: _IOW('T', 0x31, int).
const tiocgptn = 0x80045430;
const tiocsptlck = 0x40045431;

const Plan = struct {
    index: u32,
    has_master: bool = false,
    termios: [36]u8 = undefined,
    window: [4]u16 = .{ 0, 0, 0, 0 },
    master_fd: i32 = -1,
    slave_fd: i32 = -1,
    output_size: u32 = 0,
    input_size: u32 = 0,
    data_target: u32 = 0,
    data_offset: u64 = 0,
};

const Use = struct { target: u16, plan: u16, role: image.PtyRole };

var plans: [limits.ptys_max]Plan = undefined;
var plan_count: usize = 0;
var use_list: [limits.pty_uses_max]Use = undefined;
var use_count: usize = 0;
/// Per image: 1 + the number of the pty that was its controlling terminal, or 0.
var controlling: [limits.processes_max]u32 = [_]u32{0} ** limits.processes_max;

/// One `pty` record of image `target`, whose data starts at `data_offset`.
pub fn plan(target: usize, body: []const u8, data_offset: u64) void {
    const pty = std.mem.bytesToValue(image.Pty, body[0..@sizeOf(image.Pty)]);
    tree.noteFd(pty.fd);
    const role: image.PtyRole = @enumFromInt(pty.role);
    const entry = find(pty.index) orelse add(pty.index);
    if (role == .master or !entry.has_master) {
        entry.termios = pty.termios;
        entry.window = .{ pty.rows, pty.columns, pty.x_pixels, pty.y_pixels };
    }
    if (role == .master) entry.has_master = true;
    const waiting = pty.output_size + pty.input_size;
    if (waiting > 0 and entry.output_size + entry.input_size == 0) {
        if (pty.output_size > limits.pty_queue_size_max or
            pty.input_size > limits.pty_queue_size_max)
        {
            fail("corrupt image: a pseudo-terminal holds too many bytes");
        }
        entry.output_size = pty.output_size;
        entry.input_size = pty.input_size;
        entry.data_target = @intCast(target);
        entry.data_offset = data_offset;
    }
    if (use_count == use_list.len) fail("too many pseudo-terminal descriptors in the images");
    const index = (@intFromPtr(entry) - @intFromPtr(&plans)) / @sizeOf(Plan);
    use_list[use_count] = .{ .target = @intCast(target), .plan = @intCast(index), .role = role };
    use_count += 1;
}

/// The `terminal` record of image `target`.
pub fn planTerminal(target: usize, body: []const u8) void {
    assert(target < controlling.len);
    const terminal = std.mem.bytesToValue(image.Terminal, body[0..@sizeOf(image.Terminal)]);
    controlling[target] = terminal.pty;
}

fn find(index: u32) ?*Plan {
    for (plans[0..plan_count]) |*entry| if (entry.index == index) return entry;
    return null;
}

fn add(index: u32) *Plan {
    if (plan_count == plans.len) fail("too many pseudo-terminals in the images");
    plans[plan_count] = .{ .index = index };
    plan_count += 1;
    return &plans[plan_count - 1];
}

/// Opens a new pseudo-terminal for every one whose master the images hold.
pub fn create() void {
    for (plans[0..plan_count]) |*entry| {
        if (!entry.has_master) continue; // Its master is outside the computation.
        const flags: linux.O = .{ .ACCMODE = .RDWR, .NOCTTY = true };
        const master_rc = linux.openat(linux.AT.FDCWD, "/dev/ptmx", flags, 0);
        if (linux.E.init(master_rc) != .SUCCESS) fail("cannot open /dev/ptmx");
        entry.master_fd = tree.lift(@intCast(master_rc));
        const unlock: i32 = 0;
        var number: u32 = 0;
        if (ioctl(entry.master_fd, tiocsptlck, @intFromPtr(&unlock)) != .SUCCESS or
            ioctl(entry.master_fd, tiocgptn, @intFromPtr(&number)) != .SUCCESS)
        {
            fail("cannot unlock a new pseudo-terminal");
        }
        var name: [32]u8 = undefined;
        const path = std.fmt.bufPrintZ(&name, "/dev/pts/{d}", .{number}) catch unreachable;
        const slave_rc = linux.openat(linux.AT.FDCWD, path, flags, 0);
        if (linux.E.init(slave_rc) != .SUCCESS) fail("cannot open a new pseudo-terminal's slave");
        entry.slave_fd = tree.lift(@intCast(slave_rc));
        refill(entry);
        _ = ioctl(entry.slave_fd, tcsets, @intFromPtr(&entry.termios));
        _ = ioctl(entry.slave_fd, tiocswinsz, @intFromPtr(&entry.window));
    }
}

/// The bytes that waited at the checkpoint: the slave's output for the master to read,
/// the master's input for the slave to read, under settings that leave them as they are.
fn refill(entry: *const Plan) void {
    const size = entry.output_size + entry.input_size;
    if (size == 0) return;
    assert(size <= state.read_buffer.len);
    const bytes = state.read_buffer[0..size];
    tree.readImageAt(entry.data_target, bytes, entry.data_offset);
    const quiet = image.ptyRefillTermios(entry.termios);
    _ = ioctl(entry.slave_fd, tcsets, @intFromPtr(&quiet));
    writeAll(entry.slave_fd, bytes[0..entry.output_size]);
    writeAll(entry.master_fd, bytes[entry.output_size..]);
}

fn writeAll(fd: i32, bytes: []const u8) void {
    var done: usize = 0;
    var writes: usize = 0;
    while (done < bytes.len and writes < 4096) : (writes += 1) {
        const rc = linux.write(fd, bytes[done..].ptr, bytes.len - done);
        if (linux.E.init(rc) != .SUCCESS) break;
        done += rc;
    }
    if (done < bytes.len) {
        const text = "dmtcp: restart: bytes waiting in a pseudo-terminal do not fit\n";
        _ = linux.write(2, text.ptr, text.len);
    }
}

/// In a session leader right after its setsid: its controlling terminal again, if it was a
/// pseudo-terminal the tree re-created.
pub fn takeControllingTerminal(target: usize) void {
    assert(target < controlling.len);
    if (controlling[target] == 0) return;
    const entry = find(controlling[target] - 1) orelse return;
    if (entry.slave_fd < 0) return;
    if (ioctl(entry.slave_fd, tiocsctty, 0) != .SUCCESS) {
        const text = "dmtcp: restart: a pseudo-terminal cannot be a controlling terminal again\n";
        _ = linux.write(2, text.ptr, text.len);
    }
}

/// Step 4: close the ends this process does not hold; hand down the ones it does.
pub fn keepOwn(current: usize) void {
    for (plans[0..plan_count], 0..) |entry, index| {
        if (entry.master_fd < 0) continue;
        keepEnd(current, index, .master, entry.master_fd, entry.index);
        keepEnd(current, index, .slave, entry.slave_fd, entry.index);
    }
}

fn keepEnd(current: usize, index: usize, role: image.PtyRole, fd: i32, number: u32) void {
    assert(fd >= 0);
    for (use_list[0..use_count]) |use| {
        if (use.target == current and use.plan == index and use.role == role) {
            tree.handDown(image.ptyKey(number, role), fd, fd);
            return;
        }
    }
    _ = linux.close(fd);
}

fn ioctl(fd: i32, request: u32, argument: usize) linux.E {
    const rc = linux.syscall3(.ioctl, @as(usize, @bitCast(@as(isize, fd))), request, argument);
    return linux.E.init(rc);
}
