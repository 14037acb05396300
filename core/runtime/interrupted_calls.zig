//! System calls the checkpoint signal interrupts, and how they continue.
//!
//! A thread blocked in a system call when the checkpoint signal arrives leaves the call to
//! run our handler. Under SA_RESTART the kernel itself re-enters calls that answered
//! ERESTARTSYS (read, write, accept, wait4, futex without timeout, ...): the signal frame
//! already points at the call again. Calls that answered ERESTARTNOHAND or
//! ERESTART_RESTARTBLOCK (nanosleep, clock_nanosleep, poll, select, epoll_wait, pause,
//! sigsuspend, futex with a timeout) and calls that answer EINTR outright (sigtimedwait)
//! would return EINTR to a program that never saw a signal of its own: the kernel turns
//! them into EINTR whenever a handler runs, and sigreturn cancels restart_syscall.
//!
//! So, before it signals a thread, the checkpoint thread reads /proc/self/task/<tid>/syscall
//! (the call's number, arguments, stack and instruction pointers). The thread's handler, if
//! its frame shows -EINTR at the same instruction with the same stack pointer and arguments,
//! rewrites the frame so that sigreturn enters the same call again: the program never sees
//! the EINTR, and nothing is lost, since an interrupted call has done nothing. A relative
//! sleep with a remaining-time pointer continues with the remaining time the kernel wrote
//! there; without one it sleeps its whole duration again (late, never early). The same
//! rewrite serves a restarted process, whose frames come back with the memory.
//!
//! wait4 and waitid, which the kernel itself would enter again, are planned too: after a
//! restart the pid they wait for has a new kernel pid (interrupted_waits.zig).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const arch = @import("arch").current;
const limits = @import("limits");
const proc = @import("proc.zig");
const interrupted_waits = @import("interrupted_waits.zig");
const emulator = @import("emulator.zig");

pub const Call = struct {
    tid: i32 = 0,
    number: usize = 0,
    args: [6]usize = .{ 0, 0, 0, 0, 0, 0 },
    stack_pointer: usize = 0,
    instruction_pointer: usize = 0,
};

/// Calls noted in the current suspension; written by the checkpoint thread before it sends
/// the signal, read by the signalled thread in its handler.
var calls: [limits.threads_max]Call = undefined;
var call_count: std.atomic.Value(u32) = .init(0);

const eintr: usize = @bitCast(-@as(isize, @intFromEnum(linux.E.INTR)));

pub fn reset() void {
    call_count.store(0, .release);
}

/// Checkpoint thread, before it signals `tid`: notes the call the thread is blocked in, if any.
pub fn note(tid: i32) void {
    assert(tid > 0);
    // Under qemu-user the file describes qemu's own system call on the host (host numbers,
    // arguments, stack and code), and the program's first argument, which its frame no
    // longer holds on ARM, is nowhere the program can read: such calls see EINTR.
    if (emulator.active()) return;
    const count = call_count.load(.acquire);
    if (count == calls.len) return;
    var path_buffer: [64]u8 = undefined;
    const path = std.fmt.bufPrintZ(&path_buffer, "/proc/self/task/{d}/syscall", .{tid}) catch
        unreachable;
    var text_buffer: [256]u8 = undefined;
    const text = proc.readFile(path, &text_buffer) catch return;
    var call: Call = .{ .tid = tid };
    if (!parse(text, &call)) return;
    calls[count] = call;
    call_count.store(count + 1, .release);
}

/// "NR 0xA1 0xA2 0xA3 0xA4 0xA5 0xA6 0xSP 0xPC"; "running" or "-1 0xSP 0xPC" otherwise.
fn parse(text: []const u8, call: *Call) bool {
    var fields = std.mem.tokenizeAny(u8, text, " \n");
    const number_text = fields.next() orelse return false;
    const number = std.fmt.parseInt(isize, number_text, 10) catch return false;
    if (number < 0) return false;
    call.number = @intCast(number);
    var values: [8]usize = undefined;
    for (&values) |*value| {
        const field = fields.next() orelse return false;
        if (!std.mem.startsWith(u8, field, "0x")) return false;
        // A 64-bit kernel prints a 32-bit process's registers whole; the call used their
        // low halves (compat system calls truncate them).
        const whole = std.fmt.parseInt(u64, field[2..], 16) catch return false;
        value.* = @truncate(whole);
    }
    call.args = values[0..6].*;
    call.stack_pointer = values[6];
    call.instruction_pointer = values[7];
    return true;
}

pub const Restart = struct {
    number: usize,
    args: [6]usize,
    /// Right after the call: where the program goes on once it returns.
    return_address: usize,
    /// The kernel had already set the frame to enter the call again (ERESTARTSYS under
    /// SA_RESTART): the instruction pointer is back on the call and the result register
    /// holds the call's number.
    rewound: bool,
    /// wait4 and waitid: their id, kept virtual across a restart.
    wait: ?interrupted_waits.Wait = null,
};

/// In the handler: the call to enter again when this thread returns, if the signal broke one.
pub fn plan(tid: i32, ucontext: ?*anyopaque) ?Restart {
    assert(tid > 0);
    const frame = ucontext orelse return null;
    const site = arch.syscallSite(frame);
    // Where the result register is also the first argument's (ARM), the frame no longer
    // has that argument: only /proc/<tid>/syscall does, so it is compared from the second.
    const kept = arch.syscall_args_clobbered_count;
    const count = call_count.load(.acquire);
    for (calls[0..count]) |*call| {
        if (call.tid != tid) continue;
        if (call.stack_pointer != site.stack_pointer) return null;
        if (!std.mem.eql(usize, call.args[kept..], site.args[kept..])) return null;
        if (call.number == @intFromEnum(linux.SYS.restart_syscall)) return null;
        const rewound = arch.rewoundSyscall(frame, call.number, call.instruction_pointer);
        const interrupted = site.result == eintr and
            site.instruction_pointer == call.instruction_pointer;
        const wait = interrupted_waits.plan(call.number, call.args);
        // The kernel enters other calls again by itself; only a wait's ids need us.
        if (!interrupted and !(rewound and wait != null)) return null;
        return .{
            .number = call.number,
            .args = continued(call.number, call.args),
            .return_address = call.instruction_pointer,
            .rewound = rewound,
            .wait = wait,
        };
    }
    return null;
}

/// A relative sleep continues with the remaining time the kernel wrote back, when it could.
fn continued(number: usize, args: [6]usize) [6]usize {
    var result = args;
    const timer_abstime = 1;
    if (number == syscallNumber("nanosleep")) {
        if (args[1] != 0) result[0] = args[1];
    } else if (number == syscallNumber("clock_nanosleep") or
        number == syscallNumber("clock_nanosleep_time64"))
    {
        if (args[1] & timer_abstime == 0 and args[3] != 0) result[2] = args[3];
    }
    return result;
}

/// The call's number on this architecture, or one no call has when it lacks the call
/// (aarch64 has no nanosleep; only 32-bit ones have the *_time64 calls glibc prefers there).
fn syscallNumber(comptime name: []const u8) usize {
    if (!@hasField(linux.SYS, name)) return std.math.maxInt(usize);
    return @intFromEnum(@field(linux.SYS, name));
}

/// In the handler, right before it returns: sigreturn then enters the call again.
pub fn apply(ucontext: ?*anyopaque, restart: Restart, restarted: bool) void {
    const frame = ucontext orelse unreachable;
    if (restart.wait) |wait| if (restarted) return applyWait(frame, restart, wait);
    // The kernel enters it again by itself, with the same ids, still the kernel's.
    if (restart.rewound) return;
    const before = arch.syscallSite(frame);
    arch.restartSyscall(frame, restart.number, restart.args);
    const after = arch.syscallSite(frame);
    assert(std.mem.eql(usize, &after.args, &restart.args));
    assert(after.instruction_pointer < before.instruction_pointer);
    assert(after.stack_pointer == before.stack_pointer);
}

/// A wait in a process just restarted: it goes in again with its child's new kernel pid, or,
/// when the program made it itself, is made here and sigreturn goes on past it.
fn applyWait(frame: *anyopaque, restart: Restart, wait: interrupted_waits.Wait) void {
    const args = interrupted_waits.realArgs(restart.number, restart.args, wait);
    if (wait.finish_here) {
        const result = interrupted_waits.finish(frame, restart.number, args, wait);
        arch.completeSyscall(frame, restart.return_address, result);
        return;
    }
    if (restart.rewound) arch.completeSyscall(frame, restart.return_address, eintr);
    arch.restartSyscall(frame, restart.number, args);
    assert(std.mem.eql(usize, &arch.syscallSite(frame).args, &args));
}

test "interrupted_calls: /proc/<tid>/syscall lines are parsed" {
    var call: Call = .{};
    const line = "230 0x0 0x0 0x7ffd1 0x7ffd1 0x0 0x0 0x7ffd0 0x7f12\n";
    try std.testing.expect(parse(line, &call));
    try std.testing.expectEqual(@as(usize, 230), call.number);
    try std.testing.expectEqual(@as(usize, 0x7ffd1), call.args[2]);
    try std.testing.expectEqual(@as(usize, 0x7f12), call.instruction_pointer);
    try std.testing.expect(!parse("running\n", &call));
    try std.testing.expect(!parse("-1 0x7ffd0 0x7f12\n", &call));
}

test "interrupted_calls: a relative sleep continues with its remaining time" {
    const number = @intFromEnum(linux.SYS.clock_nanosleep);
    const relative = continued(number, .{ 1, 0, 0x100, 0x200, 0, 0 });
    try std.testing.expectEqual(@as(usize, 0x200), relative[2]);
    const absolute = continued(number, .{ 1, 1, 0x100, 0x200, 0, 0 });
    try std.testing.expectEqual(@as(usize, 0x100), absolute[2]);
}
