//! Process ids. A process of a computation keeps, across restarts, the ids the kernel gave it
//! in the first run: its *virtual* pid is the pid it was born with (or, after a restart, the
//! one its image recorded), and the same holds for the pids of its parent, group, session,
//! children and zombies. Before the first restart every id is the kernel's own and nothing is
//! translated; after a restart each process holds a table of (virtual, new kernel pid) pairs
//! for every process the restart re-created, and the wrappers below translate through it:
//! ids going into the kernel from virtual to real, ids coming out from real to virtual.
//! A pid the table does not know is its own translation (processes born after the restart,
//! and processes outside the computation). See docs/processes.md.
//!
//! Saved: one `process_tree` record (virtual pid, ppid, pgid, sid, and the unreaped children
//! with their wait status). mtcp_restart reads those of every image to fork the tree again,
//! then writes each new kernel pid to the pid map it hands over (RestartInfo.pid_map_fd);
//! `on_resume` reads that map once every process has rejoined (barrier `restarted`).
//! Threads keep their ids the same way (thread_ids.zig); `/proc/<pid>` paths are rewritten by
//! proc_paths.zig; a wait the checkpoint interrupts goes on with its ids translated
//! (interrupted_waits.zig). `syscall()` is wrapped for the calls below that carry ids.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");
const worker = @import("worker.zig");
const thread_ids = @import("thread_ids.zig");
const environment = @import("environment.zig");

pub const kind: kinds.Kind = .{
    .tag = .process_tree,
    .save = save,
    .restore = restore,
    .on_resume = onResume,
};

pub const Entry = struct { virtual: i32, real: i32 };

/// Empty until the first restart: then every id is the kernel's own.
var table: [limits.processes_max]Entry = undefined;
var table_count: usize = 0;
/// This process: its virtual pid, and the kernel pid that goes with it.
var own_virtual: i32 = 0;
var own_real: i32 = 0;
/// From the restore hook to `on_resume`: the map mtcp_restart filled.
var map_fd: i32 = -1;
var map_count: u32 = 0;
/// After a restart, that map stays open (not close-on-exec) under this number, which
/// DMTCP_PID_MAP gives a program exec'd later, so that it keeps the ids; -1 before.
var kept_map_fd: i32 = -1;

var zombies: [limits.zombies_max]image.Zombie = undefined;
var children: [limits.children_max]i32 = undefined;

/// The virtual id of kernel pid `real` (itself when the table does not know it).
pub fn toVirtual(real: i32) i32 {
    if (table_count == 0 or real <= 0) return real;
    if (real == own_real) return own_virtual;
    for (table[0..table_count]) |entry| {
        if (entry.real == real) return entry.virtual;
    }
    return real;
}

/// The kernel pid of virtual id `virtual` (itself when the table does not know it).
pub fn toReal(virtual: i32) i32 {
    if (table_count == 0 or virtual <= 0) return virtual;
    if (virtual == own_virtual) return own_real;
    for (table[0..table_count]) |entry| {
        if (entry.virtual == virtual) return entry.real;
    }
    return virtual;
}

/// kill() and waitpid() style: 0 and -1 stay, -n is the group n.
pub fn toRealTarget(pid: i32) i32 {
    if (pid < -1) return -toReal(-pid);
    return toReal(pid);
}

pub fn toVirtualTarget(pid: i32) i32 {
    if (pid < -1) return -toVirtual(-pid);
    return toVirtual(pid);
}

/// After a restart: ids differ from the kernel's and the wrappers translate.
pub fn translating() bool {
    return table_count > 0;
}

/// This process's kernel pid, known once `translating()` (set by a restart or a fork).
pub fn ownReal() i32 {
    return own_real;
}

/// This process's virtual pid.
pub fn virtualPid() i32 {
    const real: i32 = linux.getpid();
    if (table_count == 0) return real;
    if (real == own_real) return own_virtual;
    return toVirtual(real);
}

/// fork's child hook: a process born now keeps its kernel pid as its virtual one, and has
/// none of its parent's other threads.
pub fn afterFork() void {
    own_real = linux.getpid();
    own_virtual = own_real;
    assert(own_real > 0);
    thread_ids.reset();
}

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    const real: i32 = linux.getpid();
    const zombie_count = listZombies();
    var record: image.ProcessTree = .{
        .virtual_pid = @intCast(virtualPid()),
        .virtual_ppid = @bitCast(toVirtual(@intCast(linux.getppid()))),
        .virtual_pgid = @bitCast(toVirtual(result(linux.syscall1(.getpgid, 0)))),
        .virtual_sid = @bitCast(toVirtual(result(linux.syscall1(.getsid, 0)))),
        .real_pid = @intCast(real),
        .zombie_count = @intCast(zombie_count),
    };
    assert(record.virtual_pid != 0);
    try context.writer.record(.process_tree, &.{
        std.mem.asBytes(&record),
        std.mem.sliceAsBytes(zombies[0..zombie_count]),
    }, &.{}, 0, 0);
}

fn result(rc: usize) i32 {
    if (linux.E.init(rc) != .SUCCESS) return 0;
    return @intCast(rc);
}

/// Children that exited but were not waited for, from every thread's list of children.
fn listZombies() usize {
    var tids: [limits.threads_max]i32 = undefined;
    const tid_count = proc.listNumbers("/proc/self/task", &tids, null) catch return 0;
    var count: usize = 0;
    for (tids[0..tid_count]) |tid| {
        var path: [64]u8 = undefined;
        const name = std.fmt.bufPrintZ(&path, "/proc/self/task/{d}/children", .{tid}) catch
            unreachable;
        var text_buffer: [8192]u8 = undefined;
        const text = proc.readFile(name.ptr, &text_buffer) catch continue;
        var numbers = std.mem.tokenizeAny(u8, text, " \n");
        while (numbers.next()) |number| {
            if (count == zombies.len) return count;
            const child = std.fmt.parseInt(i32, number, 10) catch continue;
            const status = zombieStatus(child) orelse continue;
            zombies[count] = .{ .virtual_pid = @intCast(toVirtual(child)), .wait_status = status };
            count += 1;
        }
    }
    return count;
}

/// The wait status of `pid` if it is a zombie: /proc/<pid>/stat field 3 is its state and
/// field 52 its exit code, in waitpid's form.
fn zombieStatus(pid: i32) ?u32 {
    var path: [64]u8 = undefined;
    const name = std.fmt.bufPrintZ(&path, "/proc/{d}/stat", .{pid}) catch unreachable;
    var buffer: [2048]u8 = undefined;
    const text = proc.readFile(name.ptr, &buffer) catch return null;
    const close = std.mem.lastIndexOfScalar(u8, text, ')') orelse return null;
    var fields = std.mem.tokenizeScalar(u8, text[close + 1 ..], ' ');
    var number: usize = 3;
    while (fields.next()) |field| : (number += 1) {
        if (number == 3 and !std.mem.eql(u8, field, "Z")) return null;
        if (number != 52) continue;
        return std.fmt.parseInt(u32, std.mem.trimRight(u8, field, "\n"), 10) catch null;
    }
    return null;
}

fn restore(context: *kinds.RestoreContext, record: kinds.Record) kinds.RestoreError!void {
    assert(record.header.tag == @intFromEnum(image.RecordTag.process_tree));
    const size = @sizeOf(image.ProcessTree);
    const tree = std.mem.bytesToValue(image.ProcessTree, record.body[0..size]);
    if (tree.virtual_pid == 0) return error.BadRecord;
    own_virtual = @intCast(tree.virtual_pid);
    own_real = linux.getpid();
    map_fd = context.info.pid_map_fd;
    map_count = @min(context.info.pid_map_count, limits.processes_max);
    // The number kept by the run before names nothing of ours now.
    kept_map_fd = -1;
    // Until the map is read, this process at least knows itself.
    table[0] = .{ .virtual = own_virtual, .real = own_real };
    table_count = 1;
}

/// After the `restarted` barrier every process has written its entry: read them all, and
/// keep the map open for programs this process execs.
fn onResume(context: *kinds.ResumeContext) void {
    if (!context.restarted or map_fd < 0) return;
    if (!readMap(map_fd, map_count)) {
        kinds.warn(&.{"dmtcp: restart: "}, "the pid map cannot be read; ids are not translated");
    }
    const slot = worker.state.settings.pid_map_value;
    const rc = linux.fcntl(map_fd, linux.F.DUPFD, limits.restart_fd_base_min);
    if (slot != null and linux.E.init(rc) == .SUCCESS) {
        kept_map_fd = @intCast(rc);
        environment.writeNumber(slot.?, @intCast(kept_map_fd));
    }
    _ = linux.close(map_fd);
    map_fd = -1;
}

/// Fills the table from `count` (virtual pid, kernel pid) pairs of `fd`.
fn readMap(fd: i32, count: u32) bool {
    var pairs: [limits.processes_max][2]u32 = undefined;
    const size = @min(count, limits.processes_max) * 8;
    const rc = linux.pread(fd, @ptrCast(&pairs), size, 0);
    if (linux.E.init(rc) != .SUCCESS or rc != size) return false;
    var filled: usize = 0;
    for (pairs[0 .. size / 8]) |pair| {
        if (pair[0] == 0 or pair[1] == 0) continue;
        table[filled] = .{ .virtual = @intCast(pair[0]), .real = @intCast(pair[1]) };
        filled += 1;
    }
    if (filled > 0) table_count = filled;
    assert(table_count <= table.len);
    return true;
}

/// Library constructor of a program exec'd after a restart: the map the restart made, if
/// DMTCP_PID_MAP names it (and the number still is that map), gives back every id.
pub fn inheritMap(settings: *const environment.Settings) void {
    const fd = settings.inherited_pid_map_fd;
    if (fd <= 0) return;
    var link_buffer: [32]u8 = undefined;
    var link: [64]u8 = undefined;
    const rc = linux.readlink(proc.fdPath(&link_buffer, fd), &link, link.len);
    const expected = "/memfd:dmtcp-pids";
    if (linux.E.init(rc) != .SUCCESS or !std.mem.startsWith(u8, link[0..rc], expected)) return;
    var stat: linux.Stat = undefined;
    if (linux.E.init(linux.fstat(fd, &stat)) != .SUCCESS) return;
    if (!readMap(fd, @intCast(@divFloor(stat.size, 8)))) return;
    kept_map_fd = fd;
    own_real = linux.getpid();
    own_virtual = own_real;
    for (table[0..table_count]) |entry| {
        if (entry.real == own_real) own_virtual = entry.virtual;
    }
}

/// True for the kept pid map, which an image must not record.
pub fn isOwn(fd: i32) bool {
    return fd >= 0 and fd == kept_map_fd;
}

// The wrappers. Each is a raw system call with its ids translated; errors go to errno as the
// C library's own would. Before the first restart they translate nothing.

fn errnoResult(rc: usize) c_int {
    const errno = linux.E.init(rc);
    if (errno == .SUCCESS) return @intCast(@as(isize, @bitCast(rc)));
    std.c._errno().* = @intFromEnum(errno);
    return -1;
}

fn pidResult(rc: usize) c_int {
    const value = errnoResult(rc);
    return if (value > 0) toVirtual(value) else value;
}

fn word(value: c_int) usize {
    return @bitCast(@as(isize, value));
}

export fn getpid() c_int {
    return virtualPid();
}

export fn getppid() c_int {
    return toVirtual(@intCast(linux.getppid()));
}

export fn gettid() c_int {
    const tid: i32 = linux.gettid();
    if (table_count == 0) return tid;
    return thread_ids.toVirtual(tid);
}

export fn getpgid(pid: c_int) c_int {
    return pidResult(linux.syscall1(.getpgid, word(toReal(pid))));
}

export fn getpgrp() c_int {
    return pidResult(linux.syscall1(.getpgid, 0));
}

export fn getsid(pid: c_int) c_int {
    return pidResult(linux.syscall1(.getsid, word(toReal(pid))));
}

export fn setsid() c_int {
    return pidResult(linux.syscall0(.setsid));
}

export fn setpgid(pid: c_int, pgid: c_int) c_int {
    return errnoResult(linux.setpgid(toReal(pid), toReal(pgid)));
}

export fn setpgrp() c_int {
    return errnoResult(linux.setpgid(0, 0));
}

export fn kill(pid: c_int, signal: c_int) c_int {
    return errnoResult(linux.kill(toRealTarget(pid), signal));
}

export fn killpg(group: c_int, signal: c_int) c_int {
    if (group < 0) {
        std.c._errno().* = @intFromEnum(linux.E.INVAL);
        return -1;
    }
    return errnoResult(linux.kill(-toReal(group), signal));
}

export fn tgkill(tgid: c_int, tid: c_int, signal: c_int) c_int {
    return errnoResult(linux.tgkill(toReal(tgid), thread_ids.toReal(tid), signal));
}

/// Set while this thread is inside waitCall or waitidCall, which translate what the kernel
/// returns: a checkpoint that interrupts the call then translates only the ids it goes in
/// with (interrupted_waits.zig).
threadlocal var in_wait_call: bool = false;

pub fn inWaitCall() bool {
    return in_wait_call;
}

/// wait4 with virtual ids: the kernel's answer (a pid or -errno) with the pid made virtual.
pub fn waitCall(pid: i32, status: usize, options: usize, usage: usize) usize {
    const was = in_wait_call;
    in_wait_call = true;
    defer in_wait_call = was;
    const rc = linux.syscall4(.wait4, word(toRealTarget(pid)), status, options, usage);
    if (linux.E.init(rc) != .SUCCESS or rc == 0) return rc;
    return word(toVirtual(@intCast(rc)));
}

/// waitid with virtual ids: the kernel's answer, with the pid in `info` made virtual.
pub fn waitidCall(id_type: usize, id: i32, info: usize, options: usize, usage: usize) usize {
    const was = in_wait_call;
    in_wait_call = true;
    defer in_wait_call = was;
    const rc = linux.syscall5(.waitid, id_type, word(toRealId(id_type, id)), info, options, usage);
    if (linux.E.init(rc) == .SUCCESS and info != 0) {
        const siginfo: *linux.siginfo_t = @ptrFromInt(info);
        const pid = &siginfo.fields.common.first.piduid.pid;
        pid.* = toVirtual(pid.*);
    }
    return rc;
}

/// waitid's id, by its type: a pid or a group is translated, a pidfd is not.
pub fn toRealId(id_type: usize, id: i32) i32 {
    const by_pid = id_type == @intFromEnum(linux.P.PID) or id_type == @intFromEnum(linux.P.PGID);
    return if (by_pid) toReal(id) else id;
}

pub fn toVirtualId(id_type: usize, id: i32) i32 {
    const by_pid = id_type == @intFromEnum(linux.P.PID) or id_type == @intFromEnum(linux.P.PGID);
    return if (by_pid) toVirtual(id) else id;
}

export fn wait4(pid: c_int, status: ?*c_int, options: c_int, usage: ?*linux.rusage) c_int {
    return errnoResult(waitCall(pid, @intFromPtr(status), word(options), @intFromPtr(usage)));
}

export fn waitpid(pid: c_int, status: ?*c_int, options: c_int) c_int {
    return wait4(pid, status, options, null);
}

export fn wait(status: ?*c_int) c_int {
    return wait4(-1, status, 0, null);
}

export fn wait3(status: ?*c_int, options: c_int, usage: ?*linux.rusage) c_int {
    return wait4(-1, status, options, usage);
}

export fn waitid(id_type: c_uint, id: c_uint, info: ?*linux.siginfo_t, options: c_int) c_int {
    return errnoResult(waitidCall(id_type, @bitCast(id), @intFromPtr(info), word(options), 0));
}

export fn tcgetpgrp(fd: c_int) c_int {
    var group: i32 = 0;
    const rc = linux.ioctl(fd, linux.T.IOCGPGRP, @intFromPtr(&group));
    if (errnoResult(rc) < 0) return -1;
    return toVirtual(group);
}

export fn tcsetpgrp(fd: c_int, group: c_int) c_int {
    const real = toReal(group);
    return errnoResult(linux.ioctl(fd, linux.T.IOCSPGRP, @intFromPtr(&real)));
}

/// glibc's syscall(): the calls above that carry ids go through their wrappers (tkill through
/// tgkill's translation), so that `syscall(SYS_gettid)` answers like gettid(); every other
/// call passes through unchanged. Declared with six word arguments: each of our ABIs passes
/// a variadic word where it passes a fixed one, and unused ones are never looked at.
export fn syscall(
    number: c_long,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) c_long {
    const rc: c_int = switch (number) {
        @intFromEnum(linux.SYS.getpid) => getpid(),
        @intFromEnum(linux.SYS.getppid) => getppid(),
        @intFromEnum(linux.SYS.gettid) => gettid(),
        @intFromEnum(linux.SYS.kill) => kill(int(a1), int(a2)),
        @intFromEnum(linux.SYS.tgkill) => tgkill(int(a1), int(a2), int(a3)),
        @intFromEnum(linux.SYS.tkill) => tkill(int(a1), int(a2)),
        @intFromEnum(linux.SYS.wait4) => errnoResult(waitCall(int(a1), a2, a3, a4)),
        @intFromEnum(linux.SYS.waitid) => errnoResult(waitidCall(a1, int(a2), a3, a4, a5)),
        else => return passThrough(number, .{ a1, a2, a3, a4, a5, a6 }),
    };
    return rc;
}

/// A register holding an int: its low 32 bits.
fn int(value: usize) c_int {
    return @bitCast(@as(u32, @truncate(value)));
}

/// tkill has no glibc wrapper: only syscall() reaches it.
fn tkill(tid: c_int, signal: c_int) c_int {
    return errnoResult(linux.tkill(thread_ids.toReal(tid), signal));
}

/// A call the standard library's table may not name (a newer kernel's): the enum only
/// carries the number into the register.
fn passThrough(number: c_long, args: [6]usize) c_long {
    var call: linux.SYS = undefined;
    const bits: usize = @bitCast(@as(isize, number));
    @memcpy(std.mem.asBytes(&call), std.mem.asBytes(&bits));
    const rc = linux.syscall6(call, args[0], args[1], args[2], args[3], args[4], args[5]);
    const errno = linux.E.init(rc);
    if (errno == .SUCCESS) return @bitCast(rc);
    std.c._errno().* = @intFromEnum(errno);
    return -1;
}

/// For the tests of other files: the table of a restarted process, until cleared.
pub fn setTableForTest(own: Entry, others: []const Entry) void {
    own_virtual = own.virtual;
    own_real = own.real;
    table[0] = own;
    @memcpy(table[1..][0..others.len], others);
    table_count = 1 + others.len;
}

pub fn clearTableForTest() void {
    table_count = 0;
}

test "pids: ids translate through the table both ways, groups included" {
    own_virtual = 500;
    own_real = 7000;
    table[0] = .{ .virtual = 500, .real = 7000 };
    table[1] = .{ .virtual = 501, .real = 7003 };
    table_count = 2;
    defer table_count = 0;
    try std.testing.expectEqual(@as(i32, 7003), toReal(501));
    try std.testing.expectEqual(@as(i32, 501), toVirtual(7003));
    try std.testing.expectEqual(@as(i32, -7003), toRealTarget(-501));
    try std.testing.expectEqual(@as(i32, -1), toRealTarget(-1));
    try std.testing.expectEqual(@as(i32, 9999), toVirtual(9999));
}
