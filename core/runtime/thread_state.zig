//! The kernel's per-thread state that a re-created thread does not inherit: the alternate
//! signal stack, the clear-child-tid address (what pthread_join waits on), the robust futex
//! list, the rseq registration and the thread's name. Each thread captures its own in the
//! checkpoint signal's handler (these calls act only on the calling thread) and sets it again
//! there after a restart, before it returns to the program. Registers, FPU and vector state
//! and the signal mask are not here: they are in the signal frame on the thread's own stack,
//! which is saved with the memory, and rt_sigreturn puts them back.
//!
//! rseq: glibc 2.35 and later register an area inside each thread control block, at
//! `__rseq_offset` from the thread pointer (a weak reference: older glibc has no such symbol
//! and registers nothing). Whether this thread registered it, and with which length, is asked
//! of the kernel itself: registering the same area again answers EBUSY.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const arch = @import("arch").current;

const rseq_offset = @extern(?*const isize, .{ .name = "__rseq_offset", .linkage = .weak });
const rseq_size = @extern(?*const u32, .{ .name = "__rseq_size", .linkage = .weak });
/// glibc registers every thread's area with its RSEQ_SIG; asking with another one fails.
const rseq_signature: u32 = arch.rseq_signature;

/// The original rseq ABI's `struct rseq` size: glibc registers at least this much.
const rseq_size_min = 32;
const rseq_flag_unregister = 1;
const pr_get_tid_address = 40;
const ss_onstack = 1;
const ss_disable = 2;
const name_size = 16;

pub const State = struct {
    alt_stack: linux.stack_t = .{ .sp = undefined, .flags = ss_disable, .size = 0 },
    clear_tid_address: usize = 0,
    robust_list_head: usize = 0,
    robust_list_size: usize = 0,
    /// The registered rseq area and length; 0 when the thread has none.
    rseq_area: usize = 0,
    rseq_size: u32 = 0,
    name: [name_size]u8 = [_]u8{0} ** name_size,
};

/// Runs on the thread itself, in the checkpoint signal's handler.
pub fn capture(state: *State, thread_pointer: usize) void {
    assert(thread_pointer != 0 or !arch.supported);
    state.* = .{};
    var stack: linux.stack_t = undefined;
    if (linux.E.init(linux.sigaltstack(null, &stack)) == .SUCCESS) state.alt_stack = stack;
    var address: usize = 0;
    const tid_rc = linux.prctl(pr_get_tid_address, @intFromPtr(&address), 0, 0, 0);
    if (linux.E.init(tid_rc) == .SUCCESS) state.clear_tid_address = address;
    var head: usize = 0;
    var size: usize = 0;
    const robust_rc = linux.syscall3(.get_robust_list, 0, @intFromPtr(&head), @intFromPtr(&size));
    if (linux.E.init(robust_rc) == .SUCCESS) {
        state.robust_list_head = head;
        state.robust_list_size = size;
    }
    captureRseq(state, thread_pointer);
    _ = linux.prctl(@intFromEnum(linux.PR.GET_NAME), @intFromPtr(&state.name), 0, 0, 0);
    assert(state.rseq_size == 0 or state.rseq_size >= rseq_size_min);
}

fn captureRseq(state: *State, thread_pointer: usize) void {
    const offset = (rseq_offset orelse return).*;
    const feature_size = (rseq_size orelse return).*;
    if (feature_size == 0) return; // glibc did not register (disabled, or refused).
    const area: usize = @bitCast(@as(isize, @bitCast(thread_pointer)) + offset);
    const aligned = std.mem.alignForward(u32, feature_size, rseq_size_min);
    const candidates = [2]u32{ rseq_size_min, @max(aligned, rseq_size_min) };
    for (candidates) |size| {
        const rc = linux.syscall4(.rseq, area, size, 0, rseq_signature);
        switch (linux.E.init(rc)) {
            .BUSY => {
                state.rseq_area = area;
                state.rseq_size = size;
                return;
            },
            // It was not registered and now is: leave the thread as it was.
            .SUCCESS => {
                _ = linux.syscall4(.rseq, area, size, rseq_flag_unregister, rseq_signature);
                return;
            },
            else => {},
        }
    }
}

/// Runs on the re-created thread, in the checkpoint signal's handler, before it returns.
pub fn restore(state: *const State) void {
    assert(state.rseq_size == 0 or state.rseq_area != 0);
    if (state.alt_stack.flags & ss_disable == 0) {
        var stack = state.alt_stack;
        stack.flags &= ~@as(i32, ss_onstack);
        _ = linux.sigaltstack(&stack, null);
    }
    if (state.clear_tid_address != 0) {
        _ = linux.syscall1(.set_tid_address, state.clear_tid_address);
    }
    if (state.robust_list_head != 0) {
        _ = linux.syscall2(.set_robust_list, state.robust_list_head, state.robust_list_size);
    }
    if (state.rseq_size != 0) {
        const rc = linux.syscall4(.rseq, state.rseq_area, state.rseq_size, 0, rseq_signature);
        assert(linux.E.init(rc) != .FAULT);
    }
    if (state.name[0] != 0) {
        _ = linux.prctl(@intFromEnum(linux.PR.SET_NAME), @intFromPtr(&state.name), 0, 0, 0);
    }
}

test "thread_state: capture reads this thread's name and robust list" {
    if (!arch.supported) return error.SkipZigTest;
    var state: State = .{};
    capture(&state, arch.threadPointer());
    try std.testing.expect(state.name[0] != 0);
    // qemu-user does not implement get_robust_list, so under it the head reads as none.
    const emulated = @import("emulator.zig").emulated();
    if (@import("builtin").link_libc and !emulated) {
        try std.testing.expect(state.robust_list_head != 0);
    }
    restore(&state);
}
