//! SIGEV_THREAD timers. glibc runs a SIGEV_THREAD timer's function from a helper thread that
//! it starts with every signal blocked (set inside pthread_create, where no wrapper of ours
//! sees it), so the checkpoint could never suspend that thread. Our `timer_create` turns such
//! a request into a SIGEV_THREAD_ID timer aimed at a helper thread of ours, a glibc thread
//! that leaves the checkpoint signal open and waits for signal 32 (glibc's SIGTIMER, which
//! programs cannot use); at each expiry it starts a detached thread that runs the program's
//! function with its value, with the signal mask of the thread that created the timer.
//! To the checkpoint, the helper and those threads are ordinary threads (the helper is
//! re-entered in its rt_sigtimedwait), and the timer an ordinary SIGEV_THREAD_ID timer
//! (timers.zig) whose value is the address of its slot here. Other timers go to glibc.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const threads = @import("threads.zig");
const proc = @import("proc.zig");

extern "c" fn dlsym(handle: ?*anyopaque, name: [*:0]const u8) ?*anyopaque;
extern "c" fn pthread_create(
    thread: *usize,
    attributes: ?*const anyopaque,
    start: *const fn (?*anyopaque) callconv(.c) ?*anyopaque,
    argument: ?*anyopaque,
) c_int;
extern "c" fn pthread_detach(thread: usize) c_int;

const sigev_thread = 2;
const sigev_thread_id = 4;
const timer_signal = 32;
const si_timer = -2;
/// dlsym's RTLD_NEXT: the next definition after ours, glibc's.
const rtld_next: ?*anyopaque = @ptrFromInt(std.math.maxInt(usize));

/// `struct sigevent` (64 bytes): for SIGEV_THREAD `first` is the function and `second` the
/// thread attributes; for SIGEV_THREAD_ID `first` holds the thread id.
const SigEvent = extern struct {
    value: usize,
    signal: i32,
    notify: i32,
    first: usize,
    second: usize,
    pad: [64 - 3 * @sizeOf(usize) - 8]u8,
};

comptime {
    assert(@sizeOf(SigEvent) == 64);
}

const Function = *const fn (usize) callconv(.c) void;

const Slot = struct {
    function: ?Function = null,
    value: usize = 0,
    /// The creating thread's signal mask, for the threads that run the function.
    mask: u64 = 0,
};

var slots: [limits.thread_timers_max]Slot = [_]Slot{.{}} ** limits.thread_timers_max;
var lock: std.atomic.Value(bool) = .init(false);
/// The helper's kernel thread id; 0 until it runs.
var helper_tid: std.atomic.Value(i32) = .init(0);
var proc_buffer: [limits.timers_max * 128]u8 = undefined;
/// /proc/self/timers shows a timer's value as "signal: 32/<%px>", zero-padded to full width.
const hex_width = 2 * @sizeOf(usize);
const value_format = std.fmt.comptimePrint("/{{x:0>{d}}}", .{hex_width});

const TimerCreate = *const fn (i32, ?*const SigEvent, *anyopaque) callconv(.c) c_int;

export fn timer_create(clock: i32, event: ?*const SigEvent, timer: *anyopaque) c_int {
    const next: TimerCreate = @ptrCast(@alignCast(dlsym(rtld_next, "timer_create") orelse
        return fail(.NOSYS)));
    const request = event orelse return next(clock, event, timer);
    if (request.notify != sigev_thread) return next(clock, event, timer);
    const function: Function = @ptrFromInt(request.first);
    while (lock.cmpxchgWeak(false, true, .acquire, .monotonic) != null) {
        std.atomic.spinLoopHint();
    }
    defer lock.store(false, .release);
    const tid = startHelper() orelse return fail(.AGAIN);
    const slot = claim() orelse return fail(.AGAIN);
    slot.* = .{ .function = function, .value = request.value, .mask = currentMask() };
    var converted = std.mem.zeroes(SigEvent);
    converted.value = @intFromPtr(slot);
    converted.signal = timer_signal;
    converted.notify = sigev_thread_id;
    converted.first = @as(u32, @bitCast(tid));
    const rc = next(clock, &converted, timer);
    if (rc != 0) slot.function = null;
    return rc;
}

fn fail(errno: linux.E) c_int {
    std.c._errno().* = @intFromEnum(errno);
    return -1;
}

fn currentMask() u64 {
    var mask: u64 = 0;
    _ = linux.syscall4(.rt_sigprocmask, linux.SIG.BLOCK, 0, @intFromPtr(&mask), 8);
    return mask;
}

fn signalBit(signal: u8) u64 {
    assert(signal >= 1 and signal <= 64);
    return @as(u64, 1) << @intCast(signal - 1);
}

/// A free slot; when none is, those whose timer is gone (not in /proc/self/timers) are freed.
fn claim() ?*Slot {
    if (freeSlot()) |slot| return slot;
    const text = proc.readFile("/proc/self/timers", &proc_buffer) catch return null;
    for (&slots) |*slot| {
        var name: [1 + hex_width]u8 = undefined;
        const value = std.fmt.bufPrint(&name, value_format, .{@intFromPtr(slot)}) catch
            unreachable;
        if (std.mem.indexOf(u8, text, value) == null) slot.function = null;
    }
    return freeSlot();
}

fn freeSlot() ?*Slot {
    for (&slots) |*slot| if (slot.function == null) return slot;
    return null;
}

/// The helper's thread id, starting it on first use.
fn startHelper() ?i32 {
    const known = helper_tid.load(.acquire);
    if (known != 0) return known;
    var thread: usize = 0;
    if (pthread_create(&thread, null, helperMain, null) != 0) return null;
    _ = pthread_detach(thread);
    var spins: u32 = 0;
    while (helper_tid.load(.acquire) == 0) : (spins += 1) {
        assert(spins < 1 << 30);
        _ = linux.sched_yield();
    }
    return helper_tid.load(.acquire);
}

/// Serves expiries for as long as the process lives.
fn helperMain(_: ?*anyopaque) callconv(.c) ?*anyopaque {
    // Every signal blocked but ours: the program's signals go to the program's threads.
    const mask: u64 = ~signalBit(threads.checkpointSignal());
    _ = linux.syscall4(.rt_sigprocmask, linux.SIG.SETMASK, @intFromPtr(&mask), 0, 8);
    helper_tid.store(linux.gettid(), .release);
    const wait_set: u64 = signalBit(timer_signal);
    while (true) {
        var info: [128]u8 align(8) = undefined;
        const set_address = @intFromPtr(&wait_set);
        const rc = linux.syscall4(.rt_sigtimedwait, set_address, @intFromPtr(&info), 0, 8);
        if (linux.E.init(rc) != .SUCCESS or rc != timer_signal) continue;
        if (std.mem.readInt(i32, info[8..12], .little) != si_timer) continue;
        // siginfo's union starts after three ints, pointer-aligned; _timer's si_sigval follows
        // si_tid and si_overrun.
        const value_offset = std.mem.alignForward(usize, 12, @sizeOf(usize)) + 8;
        const value = std.mem.readInt(usize, info[value_offset..][0..@sizeOf(usize)], .little);
        expire(value);
    }
}

fn expire(slot_address: usize) void {
    const first = @intFromPtr(&slots[0]);
    if (slot_address < first or slot_address >= first + @sizeOf(@TypeOf(slots))) return;
    if ((slot_address - first) % @sizeOf(Slot) != 0) return;
    const slot: *Slot = @ptrFromInt(slot_address);
    if (slot.function == null) return;
    var thread: usize = 0;
    if (pthread_create(&thread, null, runFunction, slot) != 0) return;
    _ = pthread_detach(thread);
}

fn runFunction(argument: ?*anyopaque) callconv(.c) ?*anyopaque {
    const slot: *const Slot = @ptrCast(@alignCast(argument.?));
    const function = slot.function orelse return null;
    const value = slot.value;
    const mask = slot.mask & ~signalBit(threads.checkpointSignal());
    _ = linux.syscall4(.rt_sigprocmask, linux.SIG.SETMASK, @intFromPtr(&mask), 0, 8);
    function(value);
    return null;
}

/// A forked child has neither the helper nor the timers (fork does not copy them).
pub fn afterFork() void {
    helper_tid.store(0, .release);
    for (&slots) |*slot| slot.* = .{};
    lock.store(false, .release);
}

/// After a restart the helper runs again under another thread id.
pub fn afterRestart() void {
    const old = helper_tid.load(.acquire);
    if (old == 0) return;
    helper_tid.store(threads.currentTid(old) orelse 0, .release);
}

test "timer_threads: the sigevent layout puts the thread id after signal and notify" {
    try std.testing.expectEqual(@as(usize, @sizeOf(usize) + 8), @offsetOf(SigEvent, "first"));
}
