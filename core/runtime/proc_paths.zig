//! /proc paths that name a process or a thread by its id. After a restart, a program that
//! opens /proc/<pid>/... with an id it got from getpid(), fork() or gettid() would reach
//! whatever the kernel now has under that number. The wrappers below rewrite a leading
//! `/proc/<pid>` and `/proc/<pid>/task/<tid>` (`/proc/self/task/<tid>` too) into kernel ids
//! before the call, in a stack buffer of PATH_MAX, and readlink of `/proc/self` and
//! `/proc/thread-self` answers with the program's ids. Before the first restart, and for a
//! path not under /proc/, a wrapper is two tests and a call on.
//!
//! The call goes on to the next definition, glibc's, found with dlsym(RTLD_NEXT) when the
//! library loads (or at the first call, should another library's constructor come first):
//! fopen and opendir allocate, and struct stat is laid out per architecture and glibc
//! version, so each call must stay glibc's own. glibc's internal opens (fopen's, for one)
//! do not go through symbols, which is why fopen, fopen64 and opendir are wrapped themselves.
//!
//! Not translated: a path relative to a /proc directory descriptor (openat(proc_fd, "<pid>")),
//! what /proc files say (the PPid in status, the pid in stat), listings of /proc and of
//! /proc/<pid>/task, and calls not wrapped here (realpath, chdir, execve, ...).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const pids = @import("pids.zig");
const thread_ids = @import("thread_ids.zig");

const Path = ?[*:0]const u8;
const Buffer = ?*anyopaque;

/// Every wrapped call, by its symbol name.
const Call = enum {
    open,
    open64,
    openat,
    openat64,
    __open_2,
    __open64_2,
    __openat_2,
    __openat64_2,
    fopen,
    fopen64,
    opendir,
    stat,
    stat64,
    lstat,
    lstat64,
    fstatat,
    fstatat64,
    __xstat,
    __xstat64,
    __lxstat,
    __lxstat64,
    __fxstatat,
    __fxstatat64,
    statx,
    access,
    faccessat,
    readlink,
    readlinkat,
    __readlink_chk,
    execve,
    execv,
    execvp,
    execvpe,
};

const Argv = [*:null]const ?[*:0]const u8;

fn Signature(comptime call: Call) type {
    return switch (call) {
        // open's mode is variadic: every one of our ABIs passes it as it would a fixed word.
        .open, .open64 => fn (Path, c_int, c_uint) callconv(.c) c_int,
        .openat, .openat64 => fn (c_int, Path, c_int, c_uint) callconv(.c) c_int,
        .__open_2, .__open64_2 => fn (Path, c_int) callconv(.c) c_int,
        .__openat_2, .__openat64_2 => fn (c_int, Path, c_int) callconv(.c) c_int,
        .fopen, .fopen64 => fn (Path, Path) callconv(.c) Buffer,
        .opendir => fn (Path) callconv(.c) Buffer,
        .stat, .stat64, .lstat, .lstat64 => fn (Path, Buffer) callconv(.c) c_int,
        .fstatat, .fstatat64 => fn (c_int, Path, Buffer, c_int) callconv(.c) c_int,
        .__xstat, .__xstat64, .__lxstat, .__lxstat64 => fn (c_int, Path, Buffer) callconv(.c) c_int,
        .__fxstatat, .__fxstatat64 => fn (c_int, c_int, Path, Buffer, c_int) callconv(.c) c_int,
        .statx => fn (c_int, Path, c_int, c_uint, Buffer) callconv(.c) c_int,
        .access => fn (Path, c_int) callconv(.c) c_int,
        .faccessat => fn (c_int, Path, c_int, c_int) callconv(.c) c_int,
        .readlink => fn (Path, ?[*]u8, usize) callconv(.c) isize,
        .readlinkat => fn (c_int, Path, ?[*]u8, usize) callconv(.c) isize,
        .__readlink_chk => fn (Path, ?[*]u8, usize, usize) callconv(.c) isize,
        .execv, .execvp => fn (Path, Argv) callconv(.c) c_int,
        .execve, .execvpe => fn (Path, Argv, Argv) callconv(.c) c_int,
    };
}

/// Which argument is the path.
fn pathIndex(comptime call: Call) usize {
    const params = @typeInfo(Signature(call)).@"fn".params;
    for (params, 0..) |param, index| {
        if (param.type.? == Path) return index;
    }
    unreachable;
}

fn Result(comptime call: Call) type {
    return @typeInfo(Signature(call)).@"fn".return_type.?;
}

extern "c" fn dlsym(handle: ?*anyopaque, name: [*:0]const u8) ?*anyopaque;
/// glibc's RTLD_NEXT, ((void *) -1): the next object in the search order after ours.
const rtld_next: ?*anyopaque = @ptrFromInt(std.math.maxInt(usize));

var next_functions: [@typeInfo(Call).@"enum".fields.len]std.atomic.Value(?*const anyopaque) =
    @splat(.init(null));

/// Library constructor: finds every next definition now, outside any signal handler.
/// The program's executable as the kernel named it when this program started: after a
/// restart /proc/self/exe names mtcp_restart (only a privileged process may change it), and
/// readlink of it answers with this instead, as the other wrapped calls (execv, open, ...)
/// use this path for it. Restored with the memory.
var exe_path: [limits.path_size_max]u8 = undefined;
var exe_path_size: usize = 0;

pub fn resolveAll() void {
    const rc = linux.readlink("/proc/self/exe", &exe_path, exe_path.len);
    exe_path_size = if (linux.E.init(rc) == .SUCCESS and rc < exe_path.len) rc else 0;
    exe_path[exe_path_size] = 0;
    inline for (@typeInfo(Call).@"enum".fields) |field| {
        _ = resolve(@enumFromInt(field.value));
    }
}

fn next(comptime call: Call) *const Signature(call) {
    const found = next_functions[@intFromEnum(call)].load(.acquire) orelse resolve(call);
    return @ptrCast(@alignCast(found));
}

/// A call this glibc lacks (stat before 2.33) is never made: no program linked against
/// this glibc names it.
fn resolve(comptime call: Call) *const anyopaque {
    const found: *const anyopaque = dlsym(rtld_next, @tagName(call)) orelse @ptrCast(&missing);
    next_functions[@intFromEnum(call)].store(found, .release);
    return found;
}

fn missing() callconv(.c) noreturn {
    @panic("a wrapped /proc path call has no next definition in the C library");
}

/// The wrapper's whole work on the common path: is there anything to rewrite at all?
inline fn forward(comptime call: Call, args: std.meta.ArgsTuple(Signature(call))) Result(call) {
    if (!pids.translating() or !underProc(args[comptime pathIndex(call)])) {
        return @call(.auto, next(call), args);
    }
    return forwardRewritten(call, args);
}

noinline fn forwardRewritten(
    comptime call: Call,
    args: std.meta.ArgsTuple(Signature(call)),
) Result(call) {
    const index = comptime pathIndex(call);
    var buffer: [limits.path_size_max]u8 = undefined;
    var rewritten = args;
    // The program's executable, not mtcp_restart's, which the kernel's link names now.
    if (exe_path_size > 0 and startsAt(args[index].?, 0, "/proc/self/exe\x00")) {
        rewritten[index] = @ptrCast(&exe_path);
        return @call(.auto, next(call), rewritten);
    }
    rewritten[index] = realPath(args[index].?, &buffer) orelse return tooLong(Result(call));
    return @call(.auto, next(call), rewritten);
}

fn tooLong(comptime T: type) T {
    std.c._errno().* = @intFromEnum(linux.E.NAMETOOLONG);
    return if (@typeInfo(T) == .optional) null else -1;
}

fn underProc(path: Path) bool {
    const name = path orelse return false;
    const prefix = "/proc/";
    // Stops at the terminating zero, which matches no byte of the prefix.
    inline for (prefix, 0..) |byte, index| if (name[index] != byte) return false;
    return true;
}

/// `path` (under /proc/) with the ids it names made the kernel's: `path` itself when they
/// are already, else a copy in `buffer`; null when the copy would not fit.
fn realPath(path: [*:0]const u8, buffer: *[limits.path_size_max]u8) ?[*:0]const u8 {
    const prefix = "/proc/";
    var index: usize = prefix.len;
    var pid: ?i32 = null;
    var own = false;
    if (number(path, index)) |found| {
        pid = found.value;
        own = thread_ids.toReal(found.value) == pids.ownReal();
        index = found.end;
    } else if (startsAt(path, index, "self") and ends(path[index + "self".len])) {
        own = true;
        index += "self".len;
    } else {
        return path;
    }
    var tid: ?i32 = null;
    if (own and startsAt(path, index, "/task/")) {
        if (number(path, index + "/task/".len)) |found| {
            tid = found.value;
            index = found.end;
        }
    }
    const real_pid = if (pid) |value| thread_ids.toReal(value) else null;
    const real_tid = if (tid) |value| thread_ids.toReal(value) else null;
    if (std.meta.eql(real_pid, pid) and std.meta.eql(real_tid, tid)) return path;
    return rebuild(buffer, real_pid, real_tid, path + index);
}

/// "/proc/<pid or self>[/task/<tid>]<rest>" into `buffer`; null when it does not fit.
fn rebuild(
    buffer: *[limits.path_size_max]u8,
    pid: ?i32,
    tid: ?i32,
    rest: [*:0]const u8,
) ?[*:0]const u8 {
    const head = if (pid) |value|
        std.fmt.bufPrint(buffer, "/proc/{d}", .{value})
    else
        std.fmt.bufPrint(buffer, "/proc/self", .{});
    var used = (head catch unreachable).len;
    if (tid) |value| used += (std.fmt.bufPrint(buffer[used..], "/task/{d}", .{value}) catch
        unreachable).len;
    var index: usize = 0;
    while (rest[index] != 0) : (index += 1) {
        if (used + index + 1 >= buffer.len) return null;
        buffer[used + index] = rest[index];
    }
    buffer[used + index] = 0;
    return @ptrCast(buffer);
}

const Number = struct { value: i32, end: usize };

/// A positive id at `index` that fills a path component: digits, then '/' or the end.
fn number(path: [*:0]const u8, index: usize) ?Number {
    const digits_max = 10;
    var value: i64 = 0;
    var end = index;
    while (end - index < digits_max and std.ascii.isDigit(path[end])) : (end += 1) {
        value = value * 10 + (path[end] - '0');
    }
    if (end == index or !ends(path[end]) or value == 0 or value > std.math.maxInt(i32)) {
        return null;
    }
    return .{ .value = @intCast(value), .end = end };
}

fn ends(byte: u8) bool {
    return byte == '/' or byte == 0;
}

/// `path` holds `text` at `index` (it may end before: the loop stops at its zero).
fn startsAt(path: [*:0]const u8, index: usize, comptime text: []const u8) bool {
    inline for (text, 0..) |byte, offset| if (path[index + offset] != byte) return false;
    return true;
}

/// readlink of /proc/self or /proc/thread-self: the ids in the link made the program's. The
/// link is read whole into a buffer of ours, so that it is cut where the program's is.
fn readLink(comptime call: Call, args: std.meta.ArgsTuple(Signature(call))) isize {
    const index = comptime pathIndex(call);
    if (!pids.translating()) return forward(call, args);
    const link = selfLink(args[index]);
    if (link == .exe) return copyLink(exe_path[0..exe_path_size], args[index + 1], args[index + 2]);
    if (link == .other) return forward(call, args);
    // A size larger than the buffer: glibc's fortified readlink fails the program, as it asks.
    if (call == .__readlink_chk and args[index + 2] > args[index + 3]) {
        return forward(call, args);
    }
    var real: [64]u8 = undefined;
    var own_args = args;
    own_args[index + 1] = &real;
    own_args[index + 2] = real.len;
    if (call == .__readlink_chk) own_args[index + 3] = real.len;
    const size = @call(.auto, next(call), own_args);
    if (size < 0) return size;
    var text_buffer: [64]u8 = undefined;
    const real_text = real[0..@intCast(size)];
    const text = virtualLink(link, real_text, &text_buffer) orelse real_text;
    return copyLink(text, args[index + 1], args[index + 2]);
}

/// What readlink answers: the link cut to the program's buffer, no terminating zero.
fn copyLink(text: []const u8, buffer: ?[*]u8, size: usize) isize {
    const count = @min(text.len, size);
    if (count > 0) @memcpy(buffer.?[0..count], text[0..count]);
    return @intCast(count);
}

const Link = enum { self, thread_self, exe, other };

fn selfLink(path: Path) Link {
    const name = path orelse return .other;
    // The terminating zero is compared too: the path must be exactly one of these.
    if (startsAt(name, 0, "/proc/self\x00")) return .self;
    if (startsAt(name, 0, "/proc/thread-self\x00")) return .thread_self;
    if (exe_path_size > 0 and startsAt(name, 0, "/proc/self/exe\x00")) return .exe;
    return .other;
}

/// "<pid>" or "<pid>/task/<tid>" in the program's ids; null when `real` is neither.
fn virtualLink(link: Link, real: []const u8, buffer: *[64]u8) ?[]const u8 {
    assert(link != .other);
    var parts = std.mem.splitSequence(u8, real, "/task/");
    const pid = std.fmt.parseInt(i32, parts.next() orelse return null, 10) catch return null;
    if (link == .self) return std.fmt.bufPrint(buffer, "{d}", .{pids.toVirtual(pid)}) catch null;
    const tid_text = parts.next() orelse return null;
    const tid = std.fmt.parseInt(i32, tid_text, 10) catch return null;
    const virtual_pid = pids.toVirtual(pid);
    const virtual_tid = thread_ids.toVirtual(tid);
    return std.fmt.bufPrint(buffer, "{d}/task/{d}", .{ virtual_pid, virtual_tid }) catch null;
}

// The wrappers: each hands its arguments to `forward` (or `readLink`), which rewrites the
// path when there is something to rewrite and calls glibc's own definition.

export fn open(path: Path, flags: c_int, mode: c_uint) c_int {
    return forward(.open, .{ path, flags, mode });
}

export fn open64(path: Path, flags: c_int, mode: c_uint) c_int {
    return forward(.open64, .{ path, flags, mode });
}

export fn openat(dir: c_int, path: Path, flags: c_int, mode: c_uint) c_int {
    return forward(.openat, .{ dir, path, flags, mode });
}

export fn openat64(dir: c_int, path: Path, flags: c_int, mode: c_uint) c_int {
    return forward(.openat64, .{ dir, path, flags, mode });
}

export fn __open_2(path: Path, flags: c_int) c_int {
    return forward(.__open_2, .{ path, flags });
}

export fn __open64_2(path: Path, flags: c_int) c_int {
    return forward(.__open64_2, .{ path, flags });
}

export fn __openat_2(dir: c_int, path: Path, flags: c_int) c_int {
    return forward(.__openat_2, .{ dir, path, flags });
}

export fn __openat64_2(dir: c_int, path: Path, flags: c_int) c_int {
    return forward(.__openat64_2, .{ dir, path, flags });
}

export fn fopen(path: Path, mode: Path) Buffer {
    return forward(.fopen, .{ path, mode });
}

export fn fopen64(path: Path, mode: Path) Buffer {
    return forward(.fopen64, .{ path, mode });
}

export fn opendir(path: Path) Buffer {
    return forward(.opendir, .{path});
}

export fn stat(path: Path, buffer: Buffer) c_int {
    return forward(.stat, .{ path, buffer });
}

export fn stat64(path: Path, buffer: Buffer) c_int {
    return forward(.stat64, .{ path, buffer });
}

export fn lstat(path: Path, buffer: Buffer) c_int {
    return forward(.lstat, .{ path, buffer });
}

export fn lstat64(path: Path, buffer: Buffer) c_int {
    return forward(.lstat64, .{ path, buffer });
}

export fn fstatat(dir: c_int, path: Path, buffer: Buffer, flags: c_int) c_int {
    return forward(.fstatat, .{ dir, path, buffer, flags });
}

export fn fstatat64(dir: c_int, path: Path, buffer: Buffer, flags: c_int) c_int {
    return forward(.fstatat64, .{ dir, path, buffer, flags });
}

// Programs built against glibc before 2.33 call these for stat, lstat and fstatat.

export fn __xstat(version: c_int, path: Path, buffer: Buffer) c_int {
    return forward(.__xstat, .{ version, path, buffer });
}

export fn __xstat64(version: c_int, path: Path, buffer: Buffer) c_int {
    return forward(.__xstat64, .{ version, path, buffer });
}

export fn __lxstat(version: c_int, path: Path, buffer: Buffer) c_int {
    return forward(.__lxstat, .{ version, path, buffer });
}

export fn __lxstat64(version: c_int, path: Path, buffer: Buffer) c_int {
    return forward(.__lxstat64, .{ version, path, buffer });
}

export fn __fxstatat(version: c_int, dir: c_int, path: Path, buffer: Buffer, flags: c_int) c_int {
    return forward(.__fxstatat, .{ version, dir, path, buffer, flags });
}

export fn __fxstatat64(version: c_int, dir: c_int, path: Path, buffer: Buffer, flags: c_int) c_int {
    return forward(.__fxstatat64, .{ version, dir, path, buffer, flags });
}

export fn statx(dir: c_int, path: Path, flags: c_int, mask: c_uint, buffer: Buffer) c_int {
    return forward(.statx, .{ dir, path, flags, mask, buffer });
}

export fn access(path: Path, mode: c_int) c_int {
    return forward(.access, .{ path, mode });
}

export fn faccessat(dir: c_int, path: Path, mode: c_int, flags: c_int) c_int {
    return forward(.faccessat, .{ dir, path, mode, flags });
}

export fn readlink(path: Path, buffer: ?[*]u8, size: usize) isize {
    return readLink(.readlink, .{ path, buffer, size });
}

export fn readlinkat(dir: c_int, path: Path, buffer: ?[*]u8, size: usize) isize {
    return readLink(.readlinkat, .{ dir, path, buffer, size });
}

export fn __readlink_chk(path: Path, buffer: ?[*]u8, size: usize, buffer_size: usize) isize {
    return readLink(.__readlink_chk, .{ path, buffer, size, buffer_size });
}

export fn execve(path: Path, argv: Argv, envp: Argv) c_int {
    return forward(.execve, .{ path, argv, envp });
}

export fn execv(path: Path, argv: Argv) c_int {
    return forward(.execv, .{ path, argv });
}

export fn execvp(path: Path, argv: Argv) c_int {
    return forward(.execvp, .{ path, argv });
}

export fn execvpe(path: Path, argv: Argv, envp: Argv) c_int {
    return forward(.execvpe, .{ path, argv, envp });
}

fn expectRewritten(expected: []const u8, path: [*:0]const u8) !void {
    var buffer: [limits.path_size_max]u8 = undefined;
    const rewritten = realPath(path, &buffer) orelse return error.TestUnexpectedResult;
    try std.testing.expectEqualStrings(expected, std.mem.sliceTo(rewritten, 0));
}

test "proc_paths: a process's and a thread's first ids become the kernel's" {
    pids.setTableForTest(.{ .virtual = 500, .real = 7000 }, &.{.{ .virtual = 501, .real = 7003 }});
    defer pids.clearTableForTest();
    thread_ids.add(502, 7010);
    defer thread_ids.reset();
    try expectRewritten("/proc/7003/status", "/proc/501/status");
    try expectRewritten("/proc/7003", "/proc/501");
    try expectRewritten("/proc/7000/task/7010/comm", "/proc/500/task/502/comm");
    try expectRewritten("/proc/self/task/7010", "/proc/self/task/502");
    // Another process's threads are not ours to know; other paths stay as they are.
    try expectRewritten("/proc/7003/task/502", "/proc/501/task/502");
    try expectRewritten("/proc/9/status", "/proc/9/status");
    try expectRewritten("/proc/501x/status", "/proc/501x/status");
    try expectRewritten("/proc/selfish", "/proc/selfish");
    try expectRewritten("/proc/12345678901/status", "/proc/12345678901/status");
}

test "proc_paths: readlink of /proc/self and /proc/thread-self answers with first ids" {
    pids.setTableForTest(.{ .virtual = 500, .real = 7000 }, &.{});
    defer pids.clearTableForTest();
    thread_ids.add(502, 7010);
    defer thread_ids.reset();
    var buffer: [64]u8 = undefined;
    try std.testing.expectEqualStrings("500", virtualLink(.self, "7000", &buffer).?);
    const thread = virtualLink(.thread_self, "7000/task/7010", &buffer).?;
    try std.testing.expectEqualStrings("500/task/502", thread);
    try std.testing.expectEqual(Link.self, selfLink("/proc/self"));
    try std.testing.expectEqual(Link.other, selfLink("/proc/self/"));
    try std.testing.expectEqual(Link.thread_self, selfLink("/proc/thread-self"));
    try std.testing.expectEqual(Link.other, selfLink("/proc/sel"));
    try std.testing.expect(underProc("/proc/1"));
    try std.testing.expect(!underProc("/pro"));
    try std.testing.expect(!underProc(null));
}

test "proc_paths: a rewritten path that would not fit is refused" {
    pids.setTableForTest(.{ .virtual = 5, .real = 1234567 }, &.{});
    defer pids.clearTableForTest();
    var long: [limits.path_size_max]u8 = undefined;
    @memset(&long, 'a');
    @memcpy(long[0.."/proc/5/".len], "/proc/5/");
    long[long.len - 1] = 0;
    var buffer: [limits.path_size_max]u8 = undefined;
    try std.testing.expectEqual(@as(?[*:0]const u8, null), realPath(@ptrCast(&long), &buffer));
}
