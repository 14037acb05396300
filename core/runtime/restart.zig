//! The restored runtime's side of a restart. mtcp_restart has mapped the memory back and
//! calls `entry` (its address is in the image header) with the thread pointer already set to
//! the main thread's, on its own stack, with a `RestartInfo`. Then, in order:
//!
//!  1. block every signal: the threads about to be re-created inherit this mask, and only the
//!     checkpoint thread keeps it (the others get theirs back from their signal frames);
//!  2. correct glibc's cached thread id of the main thread (threads.fixMainTid);
//!  3. take the settings from mtcp_restart's environment (the coordinator, token and
//!     checkpoint directory of this restart), keeping the program's own environment block;
//!  4. run every kind's restore hook over the image's records (descriptors, cwd, ...);
//!  5. re-create the other threads and the checkpoint thread, and jump back into the main
//!     thread's signal handler. The checkpoint thread then unmaps mtcp_restart once every
//!     thread has left its stack (`dropRestartProgram`) and rejoins a coordinator (`rejoin`).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const format = @import("format");
const image = format.image;
const environment = @import("environment.zig");
const connection = @import("connection.zig");
const worker = @import("worker.zig");
const threads = @import("threads.zig");
const kinds = @import("kinds.zig");
const spares = @import("spares.zig");
const emulator = @import("emulator.zig");

/// A copy: mtcp_restart's memory, where the original lives, is unmapped later.
pub var info: image.RestartInfo = undefined;
var body: [image.body_size_max]u8 align(8) = undefined;
/// CLOCK_MONOTONIC when `entry` began, for DMTCP_TIMINGS.
pub var entered_ns: u64 = 0;

pub fn entry(info_pointer: *const image.RestartInfo) callconv(.c) noreturn {
    const all = linux.sigfillset();
    _ = linux.sigprocmask(linux.SIG.SETMASK, &all, null);
    var time: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &time);
    entered_ns = @as(u64, @intCast(time.sec)) * std.time.ns_per_s + @as(u64, @intCast(time.nsec));
    info = info_pointer.*;
    if (info.version != image.restart_info_version) {
        @panic("restart: mtcp_restart of another version");
    }
    threads.fixMainTid();
    spares.forgetAfterRestart();
    emulator.noteForeignThreads();
    worker.state.pid = linux.getpid();
    const envp: [*:null]?[*:0]u8 = @ptrFromInt(@as(usize, @intCast(info.envp)));
    var settings = environment.parse(envp);
    settings.fd_value = worker.state.settings.fd_value;
    settings.pid_map_value = worker.state.settings.pid_map_value;
    worker.state.settings = settings;
    if (info.coordinator_fd < 0 and settings.inherited_fd >= 0 and
        settings.inherited_fd_pid == worker.state.pid)
    {
        info.coordinator_fd = settings.inherited_fd;
    }
    restoreRecords();
    _ = linux.close(info.image_fd);
    info.image_fd = -1;
    threads.recreate();
    threads.resumeMain();
}

/// Reads the image's records once more (mtcp_restart checked them all) and hands each to the
/// kind that owns its tag.
fn restoreRecords() void {
    var header: image.Header = undefined;
    readAt(std.mem.asBytes(&header), 0);
    assert(header.magic == image.magic);
    var context: kinds.RestoreContext = .{
        .info = &info,
        .image_fd = &info.image_fd,
        .coordinator_fd = &info.coordinator_fd,
    };
    var offset: u64 = image.header_size;
    var index: u32 = 0;
    while (index < header.record_count) : (index += 1) {
        var record: image.RecordHeader = undefined;
        readAt(std.mem.asBytes(&record), offset);
        assert(record.body_size <= body.len);
        readAt(body[0..record.body_size], offset + image.record_header_size);
        const view: kinds.Record = .{ .header = &record, .body = body[0..record.body_size] };
        inline for (kinds.list) |entry_kind| {
            if (record.tag == @intFromEnum(entry_kind.tag)) {
                entry_kind.restore(&context, view) catch |err| {
                    const prefix = "dmtcp: restart: restoring " ++ @tagName(entry_kind.tag) ++ ": ";
                    kinds.warn(&.{prefix}, @errorName(err));
                };
            }
        }
        offset = image.nextOffset(offset, &record, header.page_size);
    }
}

fn readAt(buffer: []u8, offset: u64) void {
    var done: usize = 0;
    while (done < buffer.len) {
        const rc = linux.pread(
            info.image_fd,
            buffer[done..].ptr,
            buffer.len - done,
            @intCast(offset + done),
        );
        if (linux.E.init(rc) == .INTR) continue;
        if (linux.E.init(rc) != .SUCCESS or rc == 0) {
            @panic("restart: the image cannot be read again");
        }
        done += rc;
    }
}

/// Unmaps what is left of mtcp_restart; no thread runs on it any more.
pub fn dropRestartProgram() void {
    assert(info.restart_end > info.restart_start);
    const start: usize = @intCast(info.restart_start);
    _ = linux.munmap(@ptrFromInt(start), @intCast(info.restart_end - info.restart_start));
}

/// Connects this restarted worker to its coordinator: the connection the restarter made
/// (DMTCP_COORD_FD), else a new one with hello_restart when an address and token are
/// known. False when there is no coordinator: the program then runs unmanaged.
pub fn rejoin() connection.Error!bool {
    const fd = info.coordinator_fd;
    if (fd >= 0 and worker.isSocket(fd)) {
        worker.adopt(fd);
        // The restarter registered us under its own pid: say which process we are.
        try worker.announce();
        return true;
    }
    if (!worker.state.settings.enabled) return false;
    const settings = &worker.state.settings;
    const new_fd = try connection.connect(settings.address, settings.port);
    errdefer _ = linux.close(new_fd);
    _ = try connection.helloRestart(new_fd, &settings.token, worker.state.identity(), .{
        .worker_id = worker.state.worker_id,
        .computation_id = worker.state.computation_id,
        .generation = worker.state.generation,
        .peer_count = worker.state.peer_count,
    });
    worker.adopt(new_fd);
    return true;
}

comptime {
    assert(limits.restart_env_count_max > 8);
}
