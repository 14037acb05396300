//! wait4 and waitid across a restart. A thread blocked in one when the checkpoint signal comes
//! leaves it with ERESTARTSYS, and under our SA_RESTART the kernel enters it again with the
//! same registers once the handler returns. After a restart those registers name the child by
//! a kernel pid it no longer has, and the call fails with ECHILD (glibc's system() then
//! returns -1). So the plan (interrupted_calls.zig) keeps the call's id as a virtual id, made
//! virtual in the checkpoint's handler with the table of the run being checkpointed (the
//! register holds that run's kernel pid, equal to the virtual one only in the first run), and
//! the call goes in again with the kernel pid of the run it continues in.
//!
//! What the call returns must be the program's too: glibc's system() compares the pid its
//! wait4 returns with the one it spawned. A call made by the wrappers of pids.zig returns into
//! them, and they translate it. A call made by the program or by libc itself returns straight
//! to its caller: after a restart the handler makes that call itself, with the program's
//! signal mask, and writes the translated result into the signal frame. A checkpoint that
//! comes meanwhile finds a wrapper's call there (pids.inWaitCall), so frames nest at most once.
//! Not covered: a program's handler that runs during that call and ends in siglongjmp leaves
//! the call unfinished, as it would leave a plain wait4.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const pids = @import("pids.zig");
const threads = @import("threads.zig");

pub const Wait = struct {
    /// The call's pid, group or pidfd argument, with a pid or group made virtual.
    virtual_id: i32,
    /// The program or libc made the call, not a wrapper: after a restart the handler
    /// finishes it, so that the result is translated.
    finish_here: bool,
};

const wait4_number = @intFromEnum(linux.SYS.wait4);
const waitid_number = @intFromEnum(linux.SYS.waitid);

/// In the handler, before the save: the ids of a wait, with this run's table.
pub fn plan(number: usize, args: [6]usize) ?Wait {
    const finish_here = !pids.inWaitCall();
    if (number == wait4_number) {
        return .{ .virtual_id = pids.toVirtualTarget(int(args[0])), .finish_here = finish_here };
    }
    if (number == waitid_number) {
        const virtual_id = pids.toVirtualId(args[0], int(args[1]));
        return .{ .virtual_id = virtual_id, .finish_here = finish_here };
    }
    return null;
}

/// The call's arguments with its id made real for the run it goes on in.
pub fn realArgs(number: usize, args: [6]usize, wait: Wait) [6]usize {
    var result = args;
    if (number == wait4_number) {
        result[0] = word(pids.toRealTarget(wait.virtual_id));
    } else {
        assert(number == waitid_number);
        result[1] = word(pids.toRealId(args[0], wait.virtual_id));
    }
    return result;
}

/// After a restart, in the handler: makes the wait the program was in, with the program's
/// signal mask (its own handlers run, and the next checkpoint can come), and returns what
/// the program gets: the kernel's result in the program's ids.
pub fn finish(ucontext: *anyopaque, number: usize, args: [6]usize, wait: Wait) usize {
    assert(wait.finish_here);
    var mask = programMask(ucontext);
    const signal = threads.checkpointSignal();
    assert(signal > 0);
    mask &= ~(@as(u64, 1) << @intCast(signal - 1));
    var handler_mask: u64 = 0;
    setMask(&mask, &handler_mask);
    defer setMask(&handler_mask, null);
    if (number == wait4_number) return pids.waitCall(wait.virtual_id, args[1], args[2], args[3]);
    assert(number == waitid_number);
    return pids.waitidCall(args[0], wait.virtual_id, args[2], args[3], args[4]);
}

/// The signal mask the interrupted code ran with: sigreturn restores it from the frame.
fn programMask(ucontext: *anyopaque) u64 {
    const frame: *const linux.ucontext_t = @ptrCast(@alignCast(ucontext));
    const bytes = std.mem.asBytes(&frame.sigmask);
    return std.mem.readInt(u64, bytes[0..8], .little);
}

fn setMask(mask: *const u64, old: ?*u64) void {
    const how = linux.SIG.SETMASK;
    const rc = linux.syscall4(.rt_sigprocmask, how, @intFromPtr(mask), @intFromPtr(old), 8);
    assert(linux.E.init(rc) == .SUCCESS);
}

/// A register holding an int: its low 32 bits.
fn int(value: usize) i32 {
    return @bitCast(@as(u32, @truncate(value)));
}

fn word(value: i32) usize {
    return @bitCast(@as(isize, value));
}

test "interrupted_waits: a wait's id is kept virtual and made real again" {
    const any_child: usize = @bitCast(@as(isize, -1));
    const wait = plan(wait4_number, .{ any_child, 0, 0, 0, 0, 0 }) orelse
        return error.TestUnexpectedResult;
    try std.testing.expectEqual(@as(i32, -1), wait.virtual_id);
    try std.testing.expect(wait.finish_here);
    const args = realArgs(wait4_number, .{ 0, 0x10, 0, 0, 0, 0 }, .{
        .virtual_id = 4321,
        .finish_here = true,
    });
    try std.testing.expectEqual(@as(usize, 4321), args[0]);
    try std.testing.expectEqual(@as(usize, 0x10), args[1]);
    try std.testing.expectEqual(@as(?Wait, null), plan(@intFromEnum(linux.SYS.read), args));
}

test "interrupted_waits: the program's signal mask is read from the signal frame" {
    const State = struct {
        var seen: u64 = 0;
        fn handler(_: i32, _: *const linux.siginfo_t, ucontext: ?*anyopaque) callconv(.c) void {
            seen = programMask(ucontext.?);
        }
    };
    var action: linux.Sigaction = .{
        .handler = .{ .sigaction = State.handler },
        .mask = linux.sigemptyset(),
        .flags = linux.SA.SIGINFO,
    };
    var old_action: linux.Sigaction = undefined;
    _ = linux.sigaction(linux.SIG.USR1, &action, &old_action);
    defer _ = linux.sigaction(linux.SIG.USR1, &old_action, null);
    var mask: u64 = 0;
    const none: u64 = 0;
    const how = linux.SIG.BLOCK;
    _ = linux.syscall4(.rt_sigprocmask, how, @intFromPtr(&none), @intFromPtr(&mask), 8);
    const blocked: u64 = @as(u64, 1) << (linux.SIG.CHLD - 1);
    var program_mask = mask | blocked;
    setMask(&program_mask, null);
    _ = linux.tkill(linux.gettid(), linux.SIG.USR1);
    setMask(&mask, null);
    try std.testing.expectEqual(program_mask, State.seen);
}
