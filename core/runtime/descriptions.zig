//! Open file descriptions shared between descriptors: a regular file opened once and
//! inherited across fork (or dup'ed) has one offset for all its holders. Saved: for each
//! descriptor on a regular file that another descriptor of the computation shares, a
//! `file_description` record naming the description's owner, the holder with the lowest
//! (pid at the checkpoint, fd), which every holder computes alike, with the path, flags and
//! the shared offset. Holders are looked for in this process and in its *family*: the tree
//! of workers it belongs to (up through the parents that run a checkpoint thread, then down
//! through /proc/<pid>/task/<tid>/children). Two descriptors share a description when
//! kcmp(KCMP_FILE) says so; kcmp needs ptrace access to the other process (same user, and
//! with Yama's ptrace_scope 1 only from an ancestor); where it is refused a heuristic stands
//! in: the same file, the same flags and the same position (/proc/<pid>/fdinfo).
//!
//! Restored: mtcp_restart opens each description once before it forks the tree; each holder
//! puts it over the copy files.zig opened on its own (inherited.zig).
//! Not yet: descriptions shared with a process outside the family (a root reparented to
//! init after its parent exited; a descriptor passed over a Unix socket), and shared
//! descriptions of pipes, sockets and directories.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");
const inherited = @import("inherited.zig");

pub const kind: kinds.Kind = .{ .tag = .file_description, .save = save, .restore = restore };

const kcmp_file = 0;

var others: [limits.fds_max]i32 = undefined;
var family: [limits.family_max]i32 = undefined;
var family_count: usize = 0;
var family_known = false;
var tasks: [limits.threads_max]i32 = undefined;
var path_buffer: [limits.path_size_max + 1]u8 = undefined;
var text_buffer: [4096]u8 = undefined;

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    const fds = try context.programFds();
    family_known = false;
    const self = linux.getpid();
    for (fds) |fd| {
        var stat: linux.Stat = undefined;
        if (linux.E.init(linux.fstat(fd, &stat)) != .SUCCESS) continue;
        if (!linux.S.ISREG(stat.mode)) continue;
        var link_buffer: [32]u8 = undefined;
        const rc = linux.readlink(proc.fdPath(&link_buffer, fd), &path_buffer, path_buffer.len);
        if (linux.E.init(rc) != .SUCCESS) continue;
        const path = path_buffer[0..rc];
        if (path.len == 0 or path[0] != '/' or std.mem.endsWith(u8, path, " (deleted)")) continue;
        var owner: Holder = .{ .pid = self, .fd = fd };
        var shared = false;
        for (fds) |other| {
            if (other == fd) continue;
            if (!same(self, fd, self, other)) continue;
            shared = true;
            owner = owner.lower(.{ .pid = self, .fd = other });
        }
        if (!family_known) findFamily(self);
        for (family[0..family_count]) |pid| {
            if (pid != self) sharedWith(self, fd, pid, &owner, &shared);
        }
        if (shared) try write(context, fd, owner, path);
    }
}

const Holder = struct {
    pid: i32,
    fd: i32,

    fn lower(self: Holder, other: Holder) Holder {
        if (other.pid < self.pid or (other.pid == self.pid and other.fd < self.fd)) return other;
        return self;
    }
};

/// Compares `fd` with every descriptor of process `pid`.
fn sharedWith(self: i32, fd: i32, pid: i32, owner: *Holder, shared: *bool) void {
    assert(pid != self);
    var path: [48]u8 = undefined;
    const dir = std.fmt.bufPrintZ(&path, "/proc/{d}/fd", .{pid}) catch unreachable;
    const count = proc.listNumbers(dir.ptr, &others, null) catch return;
    for (others[0..count]) |other| {
        if (!same(self, fd, pid, other)) continue;
        shared.* = true;
        owner.* = owner.lower(.{ .pid = pid, .fd = other });
    }
}

/// True when `fd` of `self` and `other_fd` of `pid` are one open file description.
fn same(self: i32, fd: i32, pid: i32, other_fd: i32) bool {
    const rc = linux.syscall5(
        .kcmp,
        @bitCast(@as(isize, self)),
        @bitCast(@as(isize, pid)),
        kcmp_file,
        @bitCast(@as(isize, fd)),
        @bitCast(@as(isize, other_fd)),
    );
    return switch (linux.E.init(rc)) {
        .SUCCESS => rc == 0,
        .PERM, .ACCES, .NOSYS => alike(fd, pid, other_fd),
        else => false,
    };
}

/// Without kcmp: the same file, opened with the same flags, at the same position.
fn alike(fd: i32, pid: i32, other_fd: i32) bool {
    var path: [64]u8 = undefined;
    var own: linux.Stat = undefined;
    var other: linux.Stat = undefined;
    if (linux.E.init(linux.fstat(fd, &own)) != .SUCCESS) return false;
    const link = std.fmt.bufPrintZ(&path, "/proc/{d}/fd/{d}", .{ pid, other_fd }) catch
        unreachable;
    const found = linux.fstatat(linux.AT.FDCWD, link.ptr, &other, 0);
    if (linux.E.init(found) != .SUCCESS) return false;
    if (own.dev != other.dev or own.ino != other.ino) return false;
    var mine: [2]u64 = undefined;
    var theirs: [2]u64 = undefined;
    const self_info = std.fmt.bufPrintZ(&path, "/proc/self/fdinfo/{d}", .{fd}) catch unreachable;
    if (!fdinfo(self_info.ptr, &mine)) return false;
    const info = std.fmt.bufPrintZ(&path, "/proc/{d}/fdinfo/{d}", .{ pid, other_fd }) catch
        unreachable;
    if (!fdinfo(info.ptr, &theirs)) return false;
    return mine[0] == theirs[0] and mine[1] == theirs[1];
}

/// "pos:" and "flags:" (octal) of one /proc/<pid>/fdinfo/<fd>.
fn fdinfo(path: [*:0]const u8, out: *[2]u64) bool {
    const text = proc.readFile(path, &text_buffer) catch return false;
    out.* = .{ 0, 0 };
    var lines = std.mem.splitScalar(u8, text, '\n');
    var found: usize = 0;
    while (lines.next()) |line| {
        const value = std.mem.trim(u8, line[std.mem.indexOfScalar(u8, line, ':') orelse
            continue ..][1..], " \t");
        if (std.mem.startsWith(u8, line, "pos:")) {
            out[0] = std.fmt.parseInt(u64, value, 10) catch return false;
            found += 1;
        } else if (std.mem.startsWith(u8, line, "flags:")) {
            // O_CLOEXEC is the descriptor's, not the description's.
            const flags = std.fmt.parseInt(u64, value, 8) catch return false;
            out[1] = flags & ~@as(u64, @as(u32, @bitCast(linux.O{ .CLOEXEC = true })));
            found += 1;
        }
    }
    return found == 2;
}

fn write(context: *kinds.SaveContext, fd: i32, owner: Holder, path: []const u8) !void {
    assert(owner.fd >= 0);
    var offset: u64 = 0;
    if (@sizeOf(usize) == 8) {
        const rc = linux.lseek(fd, 0, linux.SEEK.CUR);
        if (linux.E.init(rc) == .SUCCESS) offset = rc;
    } else {
        const number: usize = @bitCast(@as(isize, fd));
        _ = linux.syscall5(.llseek, number, 0, 0, @intFromPtr(&offset), linux.SEEK.CUR);
    }
    const record: image.FileDescription = .{
        .fd = fd,
        .owner_pid = @intCast(owner.pid),
        .owner_fd = owner.fd,
        .open_flags = @truncate(linux.fcntl(fd, linux.F.GETFL, 0)),
        .offset = offset,
        .path_size = @intCast(@min(path.len, limits.path_size_max)),
    };
    const body = [_][]const u8{ std.mem.asBytes(&record), path[0..record.path_size] };
    try context.writer.record(.file_description, &body, &.{}, 0, 0);
}

/// The workers of this process's tree: up through parents that are workers, then every
/// descendant of the topmost one.
fn findFamily(self: i32) void {
    family_known = true;
    var top = self;
    var steps: usize = 0;
    while (steps < limits.family_max) : (steps += 1) {
        const parent = parentOf(top) orelse break;
        if (parent <= 1 or !isWorker(parent)) break;
        top = parent;
    }
    family[0] = top;
    family_count = 1;
    var index: usize = 0;
    while (index < family_count) : (index += 1) addChildren(family[index]);
    assert(family_count <= family.len);
}

fn parentOf(pid: i32) ?i32 {
    var path: [48]u8 = undefined;
    const name = std.fmt.bufPrintZ(&path, "/proc/{d}/stat", .{pid}) catch unreachable;
    const text = proc.readFile(name.ptr, &text_buffer) catch return null;
    const close = std.mem.lastIndexOfScalar(u8, text, ')') orelse return null;
    var fields = std.mem.tokenizeScalar(u8, text[close + 1 ..], ' ');
    _ = fields.next() orelse return null; // State.
    return std.fmt.parseInt(i32, fields.next() orelse return null, 10) catch null;
}

/// A worker runs our checkpoint thread, named "dmtcp:ckpt".
fn isWorker(pid: i32) bool {
    var path: [64]u8 = undefined;
    const dir = std.fmt.bufPrintZ(&path, "/proc/{d}/task", .{pid}) catch unreachable;
    const count = proc.listNumbers(dir.ptr, &tasks, null) catch return false;
    for (tasks[0..count]) |tid| {
        const name = std.fmt.bufPrintZ(&path, "/proc/{d}/task/{d}/comm", .{ pid, tid }) catch
            unreachable;
        const text = proc.readFile(name.ptr, &text_buffer) catch continue;
        if (std.mem.startsWith(u8, text, "dmtcp:ckpt")) return true;
    }
    return false;
}

fn addChildren(pid: i32) void {
    var path: [64]u8 = undefined;
    const dir = std.fmt.bufPrintZ(&path, "/proc/{d}/task", .{pid}) catch unreachable;
    const count = proc.listNumbers(dir.ptr, &tasks, null) catch return;
    for (tasks[0..count]) |tid| {
        const name = std.fmt.bufPrintZ(&path, "/proc/{d}/task/{d}/children", .{ pid, tid }) catch
            unreachable;
        const text = proc.readFile(name.ptr, &text_buffer) catch continue;
        var numbers = std.mem.tokenizeScalar(u8, text, ' ');
        while (numbers.next()) |number| {
            const child = std.fmt.parseInt(i32, std.mem.trim(u8, number, "\n"), 10) catch continue;
            if (family_count == family.len) return;
            family[family_count] = child;
            family_count += 1;
        }
    }
}

fn restore(context: *kinds.RestoreContext, record: kinds.Record) kinds.RestoreError!void {
    assert(record.header.tag == @intFromEnum(image.RecordTag.file_description));
    const size = @sizeOf(image.FileDescription);
    const description = std.mem.bytesToValue(image.FileDescription, record.body[0..size]);
    if (description.fd < 0 or description.owner_fd < 0) return error.BadRecord;
    inherited.take(context.info);
    const key = image.descriptionKey(description.owner_pid, description.owner_fd);
    // Not opened by mtcp_restart: the copy files.zig opened stays, with its own offset.
    const entry = inherited.find(key) orelse return;
    inherited.moveAside(context.image_fd, description.fd);
    inherited.moveAside(context.coordinator_fd, description.fd);
    const flags = linux.fcntl(description.fd, linux.F.GETFD, 0);
    const fd_flags: u32 = if (linux.E.init(flags) == .SUCCESS) @truncate(flags) else 0;
    if (!inherited.placeAt(entry.read_fd, description.fd, fd_flags)) return error.Unrestorable;
}

test "descriptions: a dup shares its description, a second open does not" {
    const path = "/proc/self/exe";
    const first = linux.openat(linux.AT.FDCWD, path, .{ .CLOEXEC = true }, 0);
    try std.testing.expectEqual(linux.E.SUCCESS, linux.E.init(first));
    defer _ = linux.close(@intCast(first));
    const second = linux.openat(linux.AT.FDCWD, path, .{ .CLOEXEC = true }, 0);
    defer _ = linux.close(@intCast(second));
    const copy = linux.dup(@intCast(first));
    defer _ = linux.close(@intCast(copy));
    const self = linux.getpid();
    try std.testing.expect(same(self, @intCast(first), self, @intCast(copy)));
    try std.testing.expect(!same(self, @intCast(first), self, @intCast(second)));
    try std.testing.expect(alike(@intCast(first), self, @intCast(copy)));
}
