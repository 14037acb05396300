//! Process-wide state: the working directory, the umask, the process name, and the kernel's
//! record of the address space layout (start and end of code, data, heap, stack, arguments
//! and environment: the prctl PR_SET_MM_MAP fields).
//!
//! The layout matters for the heap: glibc's malloc grows the main arena with brk(), which the
//! kernel allows only above its own start_brk. mtcp_restart's start_brk is its own, so the
//! restored heap could not grow in place; PR_SET_MM_MAP (allowed without privilege as long as
//! the executable link is left alone) gives the kernel back the program's values. It also
//! makes /proc/<pid>/cmdline and environ show the program's own again.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");

pub const kind: kinds.Kind = .{ .tag = .process, .save = save, .restore = restore };

var cwd_buffer: [limits.path_size_max]u8 = undefined;

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    var record: image.Process = std.mem.zeroes(image.Process);
    // umask can only be read by setting it; application threads are suspended.
    const mask = linux.syscall1(.umask, 0o022);
    _ = linux.syscall1(.umask, mask);
    record.umask = @intCast(mask);
    record.checkpoint_signal = 0;
    readLayout(&record) catch return error.Unreadable;
    _ = linux.prctl(@intFromEnum(linux.PR.GET_NAME), @intFromPtr(&record.comm), 0, 0, 0);
    const rc = linux.getcwd(&cwd_buffer, cwd_buffer.len);
    if (linux.E.init(rc) != .SUCCESS) return error.Unreadable;
    // The kernel returns the length including the NUL.
    const cwd = std.mem.sliceTo(cwd_buffer[0..rc], 0);
    record.cwd_size = @intCast(cwd.len);
    try context.writer.record(.process, &.{ std.mem.asBytes(&record), cwd }, &.{}, 0, 0);
}

/// /proc/self/stat fields 26-28 and 45-51 (1-based), counted after the ")" that ends the name,
/// which may itself contain spaces and parentheses; brk itself from brk(0). qemu-user writes
/// this file itself with only 44 fields, most of them 0: then the layout stays unknown
/// (zero), and restart leaves the kernel's alone (qemu refuses PR_SET_MM anyway).
fn readLayout(record: *image.Process) !void {
    var buffer: [2048]u8 = undefined;
    const text = try proc.readFile("/proc/self/stat", &buffer);
    const close = std.mem.lastIndexOfScalar(u8, text, ')') orelse return error.BadStat;
    var fields = std.mem.tokenizeScalar(u8, text[close + 1 ..], ' ');
    // The first field after the name is field 3 (state).
    var number: usize = 3;
    while (fields.next()) |field| : (number += 1) {
        const target: *u64 = switch (number) {
            26 => &record.start_code,
            27 => &record.end_code,
            28 => &record.start_stack,
            45 => &record.start_data,
            46 => &record.end_data,
            47 => &record.start_brk,
            48 => &record.arg_start,
            49 => &record.arg_end,
            50 => &record.env_start,
            51 => &record.env_end,
            else => continue,
        };
        target.* = std.fmt.parseInt(u64, std.mem.trimRight(u8, field, "\n"), 10) catch
            return error.BadStat;
    }
    if (number <= 28) return error.BadStat;
    record.brk = linux.syscall1(.brk, 0);
    assert(record.brk >= record.start_brk);
}

/// PR_SET_MM_MAP's argument (include/uapi/linux/prctl.h).
const MmMap = extern struct {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64 = 0,
    auxv_size: u32 = 0,
    exe_fd: u32 = std.math.maxInt(u32),
};
const pr_set_mm_map = 14;

fn restore(context: *kinds.RestoreContext, record: kinds.Record) kinds.RestoreError!void {
    _ = context;
    assert(record.header.tag == @intFromEnum(image.RecordTag.process));
    const process = std.mem.bytesToValue(image.Process, record.body[0..@sizeOf(image.Process)]);
    const cwd = record.body[@sizeOf(image.Process)..][0..process.cwd_size];
    if (cwd.len < cwd_buffer.len) {
        @memcpy(cwd_buffer[0..cwd.len], cwd);
        cwd_buffer[cwd.len] = 0;
        const rc = linux.chdir(@ptrCast(&cwd_buffer));
        if (linux.E.init(rc) != .SUCCESS) kinds.warn(&.{"dmtcp: restart: cannot enter "}, cwd);
    }
    _ = linux.syscall1(.umask, process.umask);
    _ = linux.prctl(@intFromEnum(linux.PR.SET_NAME), @intFromPtr(&process.comm), 0, 0, 0);
    if (process.end_code == 0 or process.env_end == 0) return; // Layout unknown (qemu-user).
    var map: MmMap = .{
        .start_code = process.start_code,
        .end_code = process.end_code,
        .start_data = process.start_data,
        .end_data = process.end_data,
        .start_brk = process.start_brk,
        .brk = process.brk,
        .start_stack = process.start_stack,
        .arg_start = process.arg_start,
        .arg_end = process.arg_end,
        .env_start = process.env_start,
        .env_end = process.env_end,
    };
    const rc = linux.prctl(
        @intFromEnum(linux.PR.SET_MM),
        pr_set_mm_map,
        @intFromPtr(&map),
        @sizeOf(MmMap),
        0,
    );
    if (linux.E.init(rc) != .SUCCESS) {
        kinds.warn(
            &.{"dmtcp: restart: the heap cannot grow with brk (PR_SET_MM_MAP: "},
            @tagName(linux.E.init(rc)),
        );
    }
}

test "process: the layout is read from /proc/self/stat" {
    var record: image.Process = std.mem.zeroes(image.Process);
    try readLayout(&record);
    // qemu-user writes the file itself, without the layout.
    if (@import("emulator.zig").emulated()) return error.SkipZigTest;
    try std.testing.expect(record.start_code < record.end_code);
    try std.testing.expect(record.arg_start < record.arg_end);
    try std.testing.expect(record.start_brk <= record.brk);
}
