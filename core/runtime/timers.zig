//! Timers: the three interval timers (setitimer: real, which alarm() also uses, virtual and
//! profiling) and POSIX timers (timer_create). The kernel forgets them all across the exec
//! of mtcp_restart; a program holds the kernel's ids of its POSIX timers.
//!
//! Saved: each armed timer's interval and the time left until its next expiry, read while
//! the program's threads are suspended (after their pending signals were taken, which is
//! what re-arms a periodic POSIX timer waiting for its signal to be delivered); POSIX
//! timers are listed from /proc/self/timers (id, signal and value, notification, clock).
//! A checkpoint that continues changes nothing: the timers kept running all along.
//!
//! Restored after a restart, once every thread exists again (a SIGEV_THREAD_ID timer names
//! a thread, by its new id), before the threads are released: each with its remaining time
//! and interval, so the time the program was not running does not count. POSIX timers get
//! their old ids: with PR_TIMER_CREATE_RESTORE_IDS (Linux 6.15) the kernel takes the wanted
//! id from timer_create's output argument; before it, ids are handed out in increasing
//! order from 0 in a new process, so timers are created (and the unwanted ones deleted)
//! until each id is reached. CPU-time clocks naming the process or a thread are renamed.
//!
//! CPU-time timers (ITIMER_VIRTUAL, ITIMER_PROF, POSIX timers on CLOCK_PROCESS_CPUTIME_ID or
//! a thread's clock) come back with the CPU time they had left; the clocks themselves start
//! again near 0 in the restarted process. Overruns: the signal of a timer pending at the
//! checkpoint is taken with its si_overrun (pending_signals.zig), which comes back with it;
//! expirations while the program was not running are not counted (its timers were stopped);
//! timer_getoverrun() answers for the re-created timer, 0 until its own next signal.
//! (test/programs/cpu_timers.c, test/integration/signals-suite.ts)
//!
//! Under qemu-user POSIX timers cannot be saved: qemu gives the program ids of a table of its
//! own (0x0caf0000 | slot) and this file lists the host timers behind them, so a checkpoint of
//! a program that has one fails with HiddenByEmulator (docs/architectures.md).
//!
//! SIGEV_THREAD timers are SIGEV_THREAD_ID timers aimed at a helper thread of ours by the time
//! the kernel has them (timer_threads.zig), and come back as those.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");
const threads = @import("threads.zig");
const timer_threads = @import("timer_threads.zig");
const emulator = @import("emulator.zig");

pub const kind: kinds.Kind = .{
    .tag = .timer,
    .save = save,
    .restore = kinds.restoreNothing,
    .on_resume = onResume,
};

/// This kind's table: filled at the checkpoint, part of the restored memory.
var timers: [limits.timers_max + 3]image.Timer = undefined;
var timer_count: usize = 0;
/// The process id at the checkpoint, for CPU-time clocks that name it.
var checkpoint_pid: i32 = 0;

/// Kernel `struct itimerval` and `struct itimerspec`: two pairs of (seconds, fraction).
const Pair = [4]isize;
const pr_timer_create_restore_ids = 77;
const sigev_thread_id = 4;

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    timer_count = 0;
    checkpoint_pid = linux.getpid();
    const itimers = [_]image.TimerKind{ .itimer_real, .itimer_virtual, .itimer_prof };
    for (itimers, 0..) |which, index| {
        var value: Pair = undefined;
        const rc = linux.syscall2(.getitimer, index, @intFromPtr(&value));
        if (linux.E.init(rc) != .SUCCESS) continue;
        if (value[2] == 0 and value[3] == 0) continue; // Disarmed.
        add(.{
            .kind = @intFromEnum(which),
            .interval_ns = nanoseconds(value[0], value[1] * std.time.ns_per_us),
            .remaining_ns = nanoseconds(value[2], value[3] * std.time.ns_per_us),
        });
    }
    try savePosix();
    for (timers[0..timer_count]) |*timer| {
        try context.writer.record(.timer, &.{std.mem.asBytes(timer)}, &.{}, 0, 0);
    }
}

fn add(timer: image.Timer) void {
    assert(timer_count < timers.len);
    timers[timer_count] = timer;
    timer_count += 1;
}

fn nanoseconds(seconds: isize, fraction_ns: isize) u64 {
    assert(seconds >= 0 and fraction_ns >= 0);
    return @as(u64, @intCast(seconds)) * std.time.ns_per_s + @as(u64, @intCast(fraction_ns));
}

var proc_buffer: [limits.timers_max * 128]u8 = undefined;

/// /proc/self/timers: "ID: n", "signal: s/value", "notify: how/pid.n or tid.n", "ClockID: c".
fn savePosix() kinds.SaveError!void {
    const text = proc.readFile("/proc/self/timers", &proc_buffer) catch |err| switch (err) {
        error.TooLarge => return error.TooMany,
        // Without CONFIG_CHECKPOINT_RESTORE the file does not exist: no timers to list.
        error.OpenFailed => return,
        error.ReadFailed => return error.Unreadable,
    };
    // qemu-user makes a host timer for each of the program's and gives the program an id
    // of its own table (0x0caf0000 | slot): the file lists the host's timers, whose ids and
    // signal numbers the program cannot use, and nothing links them to the program's.
    if (text.len > 0 and emulator.active()) return error.HiddenByEmulator;
    var lines = std.mem.tokenizeScalar(u8, text, '\n');
    const posix = @intFromEnum(image.TimerKind.posix);
    var timer: image.Timer = .{ .kind = posix, .interval_ns = 0, .remaining_ns = 0 };
    var count: usize = 0;
    while (lines.next()) |line| {
        parseLine(line, &timer) catch return error.Unreadable;
        if (!std.mem.startsWith(u8, line, "ClockID:")) continue;
        // The last line of an entry.
        if (count == limits.timers_max) return error.TooMany;
        var spec: Pair = undefined;
        const rc = linux.syscall2(.timer_gettime, @intCast(timer.id), @intFromPtr(&spec));
        if (linux.E.init(rc) != .SUCCESS) return error.Unreadable;
        timer.interval_ns = nanoseconds(spec[0], spec[1]);
        timer.remaining_ns = nanoseconds(spec[2], spec[3]);
        add(timer);
        count += 1;
    }
}

fn parseLine(line: []const u8, timer: *image.Timer) error{Bad}!void {
    const colon = std.mem.indexOfScalar(u8, line, ':') orelse return error.Bad;
    const key = line[0..colon];
    const value = std.mem.trim(u8, line[colon + 1 ..], " \t");
    const parse = std.fmt.parseInt;
    if (std.mem.eql(u8, key, "ID")) {
        timer.id = parse(i32, value, 10) catch return error.Bad;
    } else if (std.mem.eql(u8, key, "signal")) {
        const slash = std.mem.indexOfScalar(u8, value, '/') orelse return error.Bad;
        timer.signal = parse(u32, value[0..slash], 10) catch return error.Bad;
        timer.value = parse(u64, value[slash + 1 ..], 16) catch return error.Bad;
    } else if (std.mem.eql(u8, key, "notify")) {
        const slash = std.mem.indexOfScalar(u8, value, '/') orelse return error.Bad;
        const how = value[0..slash];
        // SIGEV_SIGNAL 0, SIGEV_NONE 1, SIGEV_THREAD 2.
        timer.notify = 0;
        if (std.mem.eql(u8, how, "none")) timer.notify = 1;
        if (std.mem.eql(u8, how, "thread")) timer.notify = 2;
        const target = value[slash + 1 ..];
        timer.tid = 0;
        if (std.mem.startsWith(u8, target, "tid.")) {
            timer.notify |= sigev_thread_id;
            timer.tid = parse(u32, target[4..], 10) catch return error.Bad;
        }
    } else if (std.mem.eql(u8, key, "ClockID")) {
        timer.clock = parse(i32, value, 10) catch return error.Bad;
    }
}

fn onResume(context: *kinds.ResumeContext) void {
    if (!context.restarted) return;
    timer_threads.afterRestart();
    for (timers[0..timer_count]) |*timer| {
        if (timer.kind != @intFromEnum(image.TimerKind.posix)) restoreItimer(timer);
    }
    restorePosix();
}

fn restoreItimer(timer: *const image.Timer) void {
    assert(timer.kind != @intFromEnum(image.TimerKind.posix));
    const value = pair(timer.interval_ns, timer.remaining_ns, std.time.ns_per_us);
    const which = timer.kind - @intFromEnum(image.TimerKind.itimer_real);
    const rc = linux.syscall3(.setitimer, which, @intFromPtr(&value), 0);
    if (linux.E.init(rc) != .SUCCESS) {
        kinds.warn(&.{"dmtcp: restart: setitimer: "}, @tagName(linux.E.init(rc)));
    }
}

fn pair(interval_ns: u64, remaining_ns: u64, unit_ns: u64) Pair {
    // An armed timer with less than one unit left must still fire.
    const remaining = if (remaining_ns > 0 and remaining_ns < unit_ns) unit_ns else remaining_ns;
    return .{
        @intCast(interval_ns / std.time.ns_per_s),
        @intCast(interval_ns % std.time.ns_per_s / unit_ns),
        @intCast(remaining / std.time.ns_per_s),
        @intCast(remaining % std.time.ns_per_s / unit_ns),
    };
}

/// The kernel's `struct sigevent` (64 bytes): value, signal, notify, then the thread id.
const SigEvent = extern struct {
    value: usize,
    signal: i32,
    notify: i32,
    tid: i32,
    pad: [64 - @sizeOf(usize) - 12]u8 = [_]u8{0} ** (64 - @sizeOf(usize) - 12),
};

fn restorePosix() void {
    sortById();
    const exact = linux.E.init(linux.prctl(pr_timer_create_restore_ids, 1, 0, 0, 0)) == .SUCCESS;
    defer if (exact) {
        _ = linux.prctl(pr_timer_create_restore_ids, 0, 0, 0, 0);
    };
    for (timers[0..timer_count]) |*timer| {
        if (timer.kind != @intFromEnum(image.TimerKind.posix)) continue;
        const created = if (exact) createExact(timer) else createCounting(timer);
        if (!created) {
            kinds.warn(&.{"dmtcp: restart: a POSIX timer cannot be made again with its id"}, "");
            continue;
        }
        if (timer.remaining_ns == 0) continue;
        const spec = pair(timer.interval_ns, timer.remaining_ns, 1);
        _ = linux.syscall4(.timer_settime, @intCast(timer.id), 0, @intFromPtr(&spec), 0);
    }
}

fn createOne(timer: *const image.Timer, id: *i32) linux.E {
    var event: SigEvent = .{
        .value = @truncate(timer.value),
        .signal = @intCast(timer.signal),
        .notify = timer.notify,
        .tid = 0,
    };
    if (timer.notify & sigev_thread_id != 0) {
        event.tid = threads.currentTid(@intCast(timer.tid)) orelse @intCast(timer.tid);
    }
    const clock = renameClock(timer.clock);
    const clock_arg: usize = @bitCast(@as(isize, clock));
    const rc = linux.syscall3(.timer_create, clock_arg, @intFromPtr(&event), @intFromPtr(id));
    return linux.E.init(rc);
}

fn createExact(timer: *const image.Timer) bool {
    var id: i32 = timer.id;
    if (createOne(timer, &id) != .SUCCESS) return false;
    assert(id == timer.id);
    return true;
}

/// Ids come in increasing order: create until the wanted one, deleting those in between.
fn createCounting(timer: *const image.Timer) bool {
    var attempts: usize = 0;
    while (attempts < limits.timer_id_attempts_max) : (attempts += 1) {
        var id: i32 = 0;
        if (createOne(timer, &id) != .SUCCESS) return false;
        if (id == timer.id) return true;
        _ = linux.syscall1(.timer_delete, @intCast(id));
        if (id > timer.id) return false;
    }
    return false;
}

fn sortById() void {
    const Less = struct {
        fn less(_: void, a: image.Timer, b: image.Timer) bool {
            return a.id < b.id;
        }
    };
    std.sort.insertion(image.Timer, timers[0..timer_count], {}, Less.less);
}

/// A CPU-time clock names a process or thread by id (include/linux/posix-timers.h): ~id in
/// the bits above the lowest three, bit 2 set for a thread. Ours are renamed; 0 means self.
fn renameClock(clock: i32) i32 {
    if (clock >= 0) return clock;
    const id = ~(clock >> 3);
    if (id == 0) return clock;
    const per_thread = clock & 4 != 0;
    var now = id;
    if (per_thread) now = threads.currentTid(id) orelse id;
    if (!per_thread and id == checkpoint_pid) now = linux.getpid();
    return (~now << 3) | (clock & 7);
}

test "timers: /proc/self/timers entries are parsed" {
    var timer: image.Timer = .{ .kind = 4, .interval_ns = 0, .remaining_ns = 0 };
    try parseLine("ID: 3", &timer);
    try parseLine("signal: 34/0000000000001092", &timer);
    try parseLine("notify: signal/tid.4711", &timer);
    try parseLine("ClockID: 1", &timer);
    try std.testing.expectEqual(@as(i32, 3), timer.id);
    try std.testing.expectEqual(@as(u32, 34), timer.signal);
    try std.testing.expectEqual(@as(u64, 0x1092), timer.value);
    try std.testing.expectEqual(@as(i32, sigev_thread_id), timer.notify);
    try std.testing.expectEqual(@as(u32, 4711), timer.tid);
    try std.testing.expectEqual(@as(i32, 1), timer.clock);
}

test "timers: a CPU-time clock of another process keeps its id" {
    const other: i32 = (~@as(i32, 99999) << 3) | 2;
    checkpoint_pid = 1;
    try std.testing.expectEqual(other, renameClock(other));
    try std.testing.expectEqual(@as(i32, 1), renameClock(1));
}
