//! Every kind of kernel object the runtime saves and restores, one file each. A new kind is
//! one new file exporting `kind` plus one line in `list`.
//!
//! Who does what at restart: mtcp_restart maps the memory back (it must: nothing of the
//! program exists before), so `memory` has no restore work in the runtime; every other kind
//! restores itself in the restored runtime, from the image's records, before any application
//! thread runs again.
const std = @import("std");
const linux = std.os.linux;
const image = @import("format").image;
const image_writer = @import("image_writer.zig");
const spares = @import("spares.zig");
const limits = @import("limits");
const proc = @import("proc.zig");
const pids = @import("pids.zig");

/// HiddenByEmulator: the kernel object exists but the emulator (qemu-user) keeps what the
/// program sees of it to itself, so it cannot be saved.
pub const SaveError = image_writer.Error || error{ Unreadable, TooMany, HiddenByEmulator };
pub const RestoreError = error{ Unrestorable, BadRecord };

/// Shared state a save hook reaches: the image being written.
pub const SaveContext = struct {
    writer: *image_writer.Writer,
    page_size: usize,
    /// Descriptors of ours that the image must not record: the image being written and the
    /// coordinator connection (a restart gets a new one).
    image_fd: i32,
    coordinator_fd: i32,
    /// The checkpoint thread's own stack, which changes while it is written.
    stack_start: usize,
    stack_end: usize,

    /// The program's descriptors, listed once per checkpoint by the first kind that asks.
    fds: ?[]const i32 = null,

    /// True for a descriptor of ours: the image, the coordinator connection, the spare
    /// connections and their eventfd (spares.zig), the pid map kept for exec (pids.zig).
    pub fn isOwn(self: *const SaveContext, fd: i32) bool {
        return fd == self.image_fd or fd == self.coordinator_fd or spares.isOwn(fd) or
            pids.isOwn(fd);
    }

    /// The program's open descriptors (ours left out), from /proc/self/fd: every kind that
    /// saves descriptors walks this one list.
    pub fn programFds(self: *SaveContext) SaveError![]const i32 {
        if (self.fds) |listed| return listed;
        var list_fd: i32 = -1;
        const count = proc.listNumbers("/proc/self/fd", &fd_list, &list_fd) catch |err|
            switch (err) {
                error.TooLarge => return error.TooMany,
                else => return error.Unreadable,
            };
        var kept: usize = 0;
        for (fd_list[0..count]) |fd| {
            if (fd == list_fd or self.isOwn(fd)) continue;
            fd_list[kept] = fd;
            kept += 1;
        }
        self.fds = fd_list[0..kept];
        return self.fds.?;
    }
};

var fd_list: [limits.fds_max]i32 = undefined;

/// Shared state a restore hook reaches.
pub const RestoreContext = struct {
    info: *const image.RestartInfo,
    /// Descriptors of ours a restored descriptor may collide with; hooks that move one
    /// update it here.
    image_fd: *i32,
    coordinator_fd: *i32,
};

pub const Record = struct {
    header: *const image.RecordHeader,
    body: []align(8) const u8,
};

pub const ResumeContext = struct {
    restarted: bool,
};

pub const Kind = struct {
    /// Record tag this kind owns; @tagName(tag) is its name in logs and `dmtcp inspect`.
    tag: image.RecordTag,
    /// Checkpoint thread; application threads suspended; must not allocate or block.
    save: *const fn (context: *SaveContext) SaveError!void,
    /// Restarted process, before any application thread runs; records come in image order.
    restore: *const fn (context: *RestoreContext, record: Record) RestoreError!void,
    /// After a checkpoint and after a restart, just before threads are released.
    on_resume: ?*const fn (context: *ResumeContext) void = null,
};

/// Image order, which is restore order: the process record first (its working directory is
/// what relative paths of descriptors were opened against), then threads (informational),
/// signal dispositions (before any thread runs again, so that a signal arriving at once
/// finds its handler, our checkpoint signal's included), pending signals (taking a periodic
/// POSIX timer's signal re-arms the timer, so they are saved before) and timers (their
/// resume hook needs the re-created threads' ids), then descriptors, and memory last, as it
/// is by far the largest and mtcp_restart reads every other record before it maps anything.
/// Process ids come right after the process record (mtcp_restart forks the tree from them);
/// pipes, sockets and shared descriptions after descriptors, so that a number a descriptor
/// restored before took for itself is replaced last (a shared description replaces the file
/// that `files` opened on its own), pseudo-terminals last of those (a slave replaces what
/// `files` kept on 0, 1 or 2); eventfds, signalfds and timerfds, then epoll instances, which
/// watch all of those; the terminal after them all, as it acts on 0, 1 and 2.
pub const list = [_]Kind{
    @import("process.zig").kind,
    @import("pids.zig").kind,
    @import("threads.zig").kind,
    @import("signals.zig").kind,
    @import("pending_signals.zig").kind,
    @import("timers.zig").kind,
    @import("files.zig").kind,
    @import("pipes.zig").kind,
    @import("sockets.zig").kind,
    @import("descriptions.zig").kind,
    @import("ptys.zig").kind,
    @import("events.zig").kind,
    @import("epoll.zig").kind,
    @import("terminal.zig").kind,
    @import("memory.zig").kind,
};

comptime {
    for (list, 0..) |a, index| {
        for (list[index + 1 ..]) |b| std.debug.assert(a.tag != b.tag);
    }
}

/// A restore hook for records another program handles (memory: mtcp_restart).
pub fn restoreNothing(context: *RestoreContext, record: Record) RestoreError!void {
    _ = context;
    _ = record;
}

/// One line on stderr, for what the program should know but that does not stop it.
pub fn warn(comptime parts: []const []const u8, detail: []const u8) void {
    inline for (parts) |part| _ = linux.write(2, part.ptr, part.len);
    _ = linux.write(2, detail.ptr, detail.len);
    _ = linux.write(2, "\n", 1);
}
