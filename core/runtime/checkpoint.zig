//! The checkpoint sequence, run by the checkpoint thread when the coordinator asks:
//!
//!  1. suspend every other thread (threads.zig);            barrier `suspended`
//!  2.                                                       barrier `checkpointed`
//!  3. save this thread's context, then write the image to `<dir>/ckpt_<name>_<id>-<worker>
//!     .dmtcp.tmp` (0600) and fsync it;                       barrier `written`
//!  4. rename it over `.dmtcp`, or on any failure unlink the temporary file and leave the
//!     previous image alone; report `image_written` (success, or checkpoint_failed with the
//!     reason); exit if asked to;
//!  5. release the threads and report `resuming`.
//!
//! Step 3 is fork-like: `saveAndWrite` returns `.restarted` when a restarted process jumps
//! back into the saved context; the thread then rejoins a coordinator (`afterRestart`).
//! A failed write never kills the program: SIGXFSZ stays blocked on this thread (every
//! signal is), so ulimit -f shows up as EFBIG, reported like ENOSPC or EACCES.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const arch = @import("arch").current;
const limits = @import("limits");
const format = @import("format");
const protocol = format.protocol;
const image = format.image;
const connection = @import("connection.zig");
const worker = @import("worker.zig");
const threads = @import("threads.zig");
const kinds = @import("kinds.zig");
const image_writer = @import("image_writer.zig");
const restart = @import("restart.zig");
const pending_signals = @import("pending_signals.zig");
const spares = @import("spares.zig");

const Outcome = enum { written, failed, restarted };

/// The checkpoint in progress; static so the checkpoint thread's stack stays small.
var final_path: [limits.path_size_max]u8 = undefined;
var temp_path: [limits.path_size_max + 8]u8 = undefined;
var final_size: usize = 0;
var reason_buffer: [256]u8 = undefined;
var reason: []const u8 = "";
/// CLOCK_MONOTONIC at the steps of the checkpoint in progress, for DMTCP_TIMINGS.
var started_ns: u64 = 0;
var suspended_ns: u64 = 0;
var written_ns: u64 = 0;

pub fn run(request: *const protocol.Header) connection.Error!void {
    assert(protocol.kindOf(request) == .checkpoint);
    const exit_after: protocol.Flags = @bitCast(request.flags);
    worker.state.generation = request.generation;
    if (request.computation_id != 0) worker.state.computation_id = request.computation_id;
    reason = "";
    started_ns = nowNs();
    const suspended = threads.suspendAll();
    suspended_ns = nowNs();
    if (suspended) |_| {} else |err| setReason("threads did not stop: ", @errorName(err), .SUCCESS);
    errdefer threads.releaseAll();
    try barrier(.suspended, .suspended);
    try barrier(.checkpointed, .checkpointing);
    buildPaths() catch setReason("checkpoint path too long", "", .SUCCESS);
    const outcome: Outcome = if (reason.len == 0) saveAndWrite() else .failed;
    if (outcome == .restarted) return afterRestart();
    // The coordinator gone before every image is written: this image is not part of a
    // complete checkpoint, so it must not be left behind (the previous one stays).
    errdefer if (outcome == .written) {
        _ = linux.unlinkat(linux.AT.FDCWD, @ptrCast(&temp_path), 0);
    };
    written_ns = nowNs();
    try barrier(.written, .checkpointed);
    var status: protocol.Status = .success;
    if (outcome == .written) {
        const rc = linux.renameat(
            linux.AT.FDCWD,
            @ptrCast(&temp_path),
            linux.AT.FDCWD,
            @ptrCast(&final_path),
        );
        if (linux.E.init(rc) != .SUCCESS) setReason("rename failed: ", "", linux.E.init(rc));
    }
    if (reason.len > 0) {
        _ = linux.unlinkat(linux.AT.FDCWD, @ptrCast(&temp_path), 0);
        status = .checkpoint_failed;
    }
    try reportImage(status);
    if (exit_after.exit_after_checkpoint and status == .success) linux.exit_group(0);
    try resumeThreads(false);
    if (worker.state.settings.timings) reportTimings();
}

fn nowNs() u64 {
    var time: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &time);
    return @as(u64, @intCast(time.sec)) * std.time.ns_per_s + @as(u64, @intCast(time.nsec));
}

/// "dmtcp: timings: threads N suspend_us S write_us W total_us T" on stderr.
fn reportTimings() void {
    assert(suspended_ns >= started_ns);
    var buffer: [160]u8 = undefined;
    const text = std.fmt.bufPrint(&buffer, "dmtcp: timings: threads {d} suspend_us {d} " ++
        "write_us {d} total_us {d}\n", .{
        threads.saved().len,
        (suspended_ns - started_ns) / std.time.ns_per_us,
        (written_ns -| suspended_ns) / std.time.ns_per_us,
        (nowNs() - started_ns) / std.time.ns_per_us,
    }) catch unreachable;
    _ = linux.write(2, text.ptr, text.len);
}

/// Keep minimal: nothing may change in this frame between the save and the write, since
/// the image holds this frame as the write found it and the registers as the save found them.
/// The write is never a tail call: that would pop this frame (aarch64 does) and let the
/// write's own frame overwrite the return address that the restarted thread returns through.
noinline fn saveAndWrite() Outcome {
    if (arch.saveContext(&threads.checkpoint_context) != 0) return .restarted;
    return @call(.never_tail, writeImage, .{});
}

noinline fn writeImage() Outcome {
    const flags: linux.O = .{ .ACCMODE = .WRONLY, .CREAT = true, .TRUNC = true, .CLOEXEC = true };
    const rc = linux.openat(linux.AT.FDCWD, @ptrCast(&temp_path), flags, 0o600);
    if (linux.E.init(rc) != .SUCCESS) {
        setReason("cannot create the image: ", "", linux.E.init(rc));
        return .failed;
    }
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    var writer = image_writer.Writer.init(fd, std.heap.pageSize());
    var context: kinds.SaveContext = .{
        .writer = &writer,
        .page_size = std.heap.pageSize(),
        .image_fd = fd,
        .coordinator_fd = worker.state.fd,
        .stack_start = worker.state.stack_start,
        .stack_end = worker.state.stack_end,
    };
    inline for (kinds.list) |entry| {
        entry.save(&context) catch |err| {
            setReason("saving " ++ @tagName(entry.tag) ++ ": ", @errorName(err), writer.errno);
            return .failed;
        };
    }
    var header = imageHeader();
    writer.finish(&header) catch |err| {
        setReason("writing the header: ", @errorName(err), writer.errno);
        return .failed;
    };
    const sync = linux.fsync(fd);
    if (linux.E.init(sync) != .SUCCESS) {
        setReason("fsync failed: ", "", linux.E.init(sync));
        return .failed;
    }
    return .written;
}

fn imageHeader() image.Header {
    var header: image.Header = .{
        .arch = @intFromEnum(protocol.Arch.current()),
        .elf_class = if (@sizeOf(usize) == 8) image.elf_class_64 else image.elf_class_32,
        .page_size = @intCast(std.heap.pageSize()),
        .computation_id = worker.state.computation_id,
        .worker_id = worker.state.worker_id,
        .generation = worker.state.generation,
        .peer_count = worker.state.peer_count,
        .real_pid = @intCast(worker.state.pid),
        .restart_entry = @intFromPtr(&restart.entry),
        .restart_thread_pointer = if (threads.mainSlot()) |slot| slot.thread_pointer else 0,
    };
    var now: linux.timespec = undefined;
    _ = linux.syscall2(.clock_gettime, @intFromEnum(linux.CLOCK.REALTIME), @intFromPtr(&now));
    const seconds: u64 = @intCast(now.sec);
    const nanoseconds: u64 = @intCast(now.nsec);
    header.creation_time_ns = seconds * std.time.ns_per_s + nanoseconds;
    const name = worker.state.identity().name;
    const size = @min(name.len, header.program_name.len - 1);
    @memcpy(header.program_name[0..size], name[0..size]);
    var uts: linux.utsname = undefined;
    if (linux.E.init(linux.uname(&uts)) == .SUCCESS) {
        const release = std.mem.sliceTo(&uts.release, 0);
        const release_size = @min(release.len, header.kernel_release.len - 1);
        @memcpy(header.kernel_release[0..release_size], release[0..release_size]);
    }
    return header;
}

/// "<prefix><what happened> (E<NAME>)": the user reads it in `dmtcp command --bcheckpoint`.
fn setReason(comptime prefix: []const u8, detail: []const u8, errno: linux.E) void {
    if (reason.len > 0) return;
    if (errno == .SUCCESS) {
        reason = std.fmt.bufPrint(&reason_buffer, "{s}{s}", .{ prefix, detail }) catch
            reason_buffer[0..0];
        return;
    }
    reason = std.fmt.bufPrint(&reason_buffer, "{s}{s} (E{s})", .{
        prefix, explain(errno) orelse detail, @tagName(errno),
    }) catch reason_buffer[0..0];
}

/// The failures a checkpoint directory runs into, in words.
fn explain(errno: linux.E) ?[]const u8 {
    return switch (errno) {
        .NOSPC => "no space left on the device",
        .DQUOT => "disk quota exceeded",
        .FBIG => "the image exceeds the file-size limit (ulimit -f)",
        .ROFS => "the file system is read-only",
        .ACCES, .PERM => "permission denied",
        .NOENT => "the checkpoint directory does not exist",
        .NOTDIR => "the checkpoint directory is not a directory",
        .IO => "input/output error",
        else => null,
    };
}

/// `<dir>/ckpt_<name>_<computation id, 16 hex>-<worker id>.dmtcp` and the same with `.tmp`.
fn buildPaths() error{NoSpaceLeft}!void {
    const dir = worker.state.settings.checkpointDir();
    const text = try std.fmt.bufPrintZ(&final_path, "{s}/ckpt_{s}_{x:0>16}-{d}.dmtcp", .{
        if (dir.len == 0) "." else dir,
        worker.state.identity().name,
        worker.state.computation_id,
        worker.state.worker_id,
    });
    final_size = text.len;
    _ = try std.fmt.bufPrintZ(&temp_path, "{s}.tmp", .{text});
}

fn message(kind: protocol.Kind, state: protocol.WorkerState) protocol.Header {
    return .{
        .kind = @intFromEnum(kind),
        .real_pid = @intCast(worker.state.pid),
        .worker_id = worker.state.worker_id,
        .generation = worker.state.generation,
        .computation_id = worker.state.computation_id,
        .state = @intFromEnum(state),
        .arch = @intFromEnum(protocol.Arch.current()),
    };
}

/// Reports reaching `which` and waits until the coordinator releases it.
fn barrier(which: protocol.Barrier, state: protocol.WorkerState) connection.Error!void {
    var request = message(.barrier, state);
    request.barrier = @intFromEnum(which);
    // At `suspended` no thread can fork any more: the spares held now are all this process
    // holds; the coordinator waits for the others (taken by children) to speak or close.
    var held: [limits.spare_count_max * 11]u8 = undefined;
    const held_ids = if (which == .suspended) spares.heldPayload(&held) else "";
    try connection.send(worker.state.fd, &request, held_ids);
    var count: usize = 0;
    while (count < limits.message_count_max) : (count += 1) {
        var reply: protocol.Header = undefined;
        var payload: [0]u8 = .{};
        _ = try connection.receive(worker.state.fd, &reply, &payload);
        switch (protocol.kindOf(&reply)) {
            .kill => linux.exit_group(0),
            .accept => worker.state.worker_id = reply.worker_id,
            .barrier_released => if (reply.barrier == @intFromEnum(which)) {
                if (which == .checkpointed) worker.state.peer_count = reply.peer_count;
                return;
            },
            else => {},
        }
    }
    return error.BadMessage;
}

fn reportImage(status: protocol.Status) connection.Error!void {
    var report = message(.image_written, .checkpointed);
    report.status = @intFromEnum(status);
    var payload: [limits.path_size_max + 300]u8 = undefined;
    @memcpy(payload[0..final_size], final_path[0..final_size]);
    payload[final_size] = 0;
    var size = final_size + 1;
    if (status != .success) {
        @memcpy(payload[size..][0..reason.len], reason);
        payload[size + reason.len] = 0;
        size += reason.len + 1;
    }
    try connection.send(worker.state.fd, &report, payload[0..size]);
}

fn resumeThreads(restarted: bool) connection.Error!void {
    var context: kinds.ResumeContext = .{ .restarted = restarted };
    inline for (kinds.list) |entry| if (entry.on_resume) |hook| hook(&context);
    threads.releaseAll();
    // The main thread queues the taken signals again before it returns to the program; the
    // next checkpoint must not begin before (its slots and entries are reused).
    if (threads.saved().len == 0 or !pending_signals.waitQueued()) {
        pending_signals.queueAgain(threads.currentTid);
    }
    var resuming = message(.resuming, .running);
    try connection.send(worker.state.fd, &resuming, "");
}

/// The restarted process, on the re-created checkpoint thread: every application thread is
/// back in its handler. Drop mtcp_restart's memory, rejoin a coordinator (the one the
/// restart was given, not the one in the image), pass the `restarted` barrier, resume.
fn afterRestart() connection.Error!void {
    threads.waitRestarted() catch @panic("restart: a thread did not come back");
    restart.dropRestartProgram();
    errdefer threads.releaseAll();
    // Nobody to report to: the program runs on, unmanaged (errdefer releases it).
    if (!try restart.rejoin()) return error.Closed;
    try barrier(.restarted, .restarting);
    try resumeThreads(true);
    if (worker.state.settings.timings) reportRestartTimings();
}

/// "dmtcp: timings: restart threads N resumed_us R": from the runtime's restart entry to the
/// release of the threads (mtcp_restart's own work, mapping the memory, comes before).
fn reportRestartTimings() void {
    var buffer: [96]u8 = undefined;
    const line = "dmtcp: timings: restart threads {d} resumed_us {d}\n";
    const text = std.fmt.bufPrint(&buffer, line, .{
        threads.saved().len,
        (nowNs() - restart.entered_ns) / std.time.ns_per_us,
    }) catch unreachable;
    _ = linux.write(2, text.ptr, text.len);
}
