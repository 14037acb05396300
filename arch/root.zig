//! One file per architecture, one interface. Shared code uses `current` and never tests the
//! CPU itself; the comptime block checks that each file provides the whole interface.
const std = @import("std");
const builtin = @import("builtin");

pub const x86_64 = @import("x86_64.zig");
pub const @"i386" = @import("i386.zig");
pub const aarch64 = @import("aarch64.zig");
pub const armv7 = @import("armv7.zig");

pub const current = switch (builtin.cpu.arch) {
    .x86_64 => x86_64,
    .x86 => @"i386",
    .aarch64 => aarch64,
    .arm => armv7,
    else => @compileError("unsupported architecture"),
};

comptime {
    for (.{ x86_64, @"i386", aarch64, armv7 }) |arch| {
        std.debug.assert(arch.name.len > 0);
        std.debug.assert(!std.mem.eql(u8, arch.sibling, arch.name));
        std.debug.assert(arch.elf_machine != .NONE);
        std.debug.assert(arch.pointer_size == 4 or arch.pointer_size == 8);
        std.debug.assert(@TypeOf(arch.glibc_tid_offset) == isize);
        std.debug.assert(@mod(arch.glibc_tid_offset, 4) == 0);
        std.debug.assert(@mod(arch.glibc_tid_search_start, 4) == 0);
        std.debug.assert(arch.relocation_relative != 0);
        std.debug.assert(arch.restart_hole_floor % (1 << 21) == 0);
        std.debug.assert(arch.noreserve_size_min >= 1 << 20);
        std.debug.assert(@TypeOf(arch.supported) == bool);
        std.debug.assert(@TypeOf(arch.rseq_signature) == u32);
        std.debug.assert(arch.syscall_args_clobbered_count <= 1);
        // Registers and context, TLS (and how clone takes it), stack switch, cache flush,
        // and a system call as a signal frame shows it (read, and made to enter again).
        for (.{
            "Context",            "saveContext",     "restoreContext",        "stackPointer",
            "instructionPointer", "threadPointer",   "setThreadPointer",      "TlsStorage",
            "cloneTls",           "jumpOnStack",     "flushInstructionCache", "writeJump",
            "jump_size",          "SyscallSite",     "syscallSite",           "restartSyscall",
            "rewoundSyscall",     "completeSyscall",
        }) |declaration| {
            if (!@hasDecl(arch, declaration)) {
                @compileError(arch.name ++ " lacks " ++ declaration);
            }
        }
    }
}

test {
    _ = current;
}

test "arch: current matches the compiled pointer size" {
    try std.testing.expectEqual(@sizeOf(usize), current.pointer_size);
}

/// A relative sleep that a timer's signal breaks, entered again by the handler from its frame
/// as the runtime does for the checkpoint signal (core/runtime/interrupted_calls.zig).
const Interrupted = struct {
    const linux = std.os.linux;
    /// `struct timespec` and `struct itimerval` of the plain (not *_time64) calls: two longs.
    const Pair = extern struct { first: isize, second: isize };
    const sleep_ns = 150 * std.time.ns_per_ms;
    const timer_us = 20 * std.time.us_per_ms;

    var request: Pair = .{ .first = 0, .second = sleep_ns };
    var site: ?current.SyscallSite = null;
    var restarted_count: u32 = 0;

    fn args() [6]usize {
        const clock_monotonic = 1;
        return .{ clock_monotonic, 0, @intFromPtr(&request), 0, 0, 0 };
    }

    fn handler(signal: i32, info: *const linux.siginfo_t, ucontext: ?*anyopaque) callconv(.c) void {
        _ = signal;
        _ = info;
        const frame = ucontext orelse return;
        const seen = current.syscallSite(frame);
        site = seen;
        const eintr: usize = @bitCast(-@as(isize, @intFromEnum(linux.E.INTR)));
        if (seen.result != eintr) return;
        // The registers past the call's four arguments hold the caller's values: keep them.
        var restart_args = seen.args;
        restart_args[0..4].* = args()[0..4].*;
        current.restartSyscall(frame, @intFromEnum(linux.SYS.clock_nanosleep), restart_args);
        restarted_count += 1;
    }

    /// Arms the timer and sleeps; returns the sleep's result once the handler broke it.
    fn sleepOnce() usize {
        const once: Pair = .{ .first = 0, .second = 0 };
        const timer: [2]Pair = .{ once, .{ .first = 0, .second = timer_us } };
        const armed = linux.syscall3(.setitimer, 0, @intFromPtr(&timer), 0);
        std.debug.assert(linux.E.init(armed) == .SUCCESS);
        const a = args();
        return linux.syscall4(.clock_nanosleep, a[0], a[1], a[2], a[3]);
    }
};

test "arch: a system call a signal broke enters again from the signal frame" {
    const linux = std.os.linux;
    var action: linux.Sigaction = .{
        .handler = .{ .sigaction = Interrupted.handler },
        .mask = linux.sigemptyset(),
        .flags = linux.SA.SIGINFO,
    };
    _ = &action;
    try std.testing.expectEqual(@as(usize, 0), linux.sigaction(linux.SIG.ALRM, &action, null));
    defer {
        action.handler = .{ .handler = linux.SIG.DFL };
        action.flags = 0;
        _ = linux.sigaction(linux.SIG.ALRM, &action, null);
    }
    // The timer may fire before the sleep starts on a loaded machine: a few tries.
    var attempt: u32 = 0;
    while (attempt < 5 and Interrupted.restarted_count == 0) : (attempt += 1) {
        try std.testing.expectEqual(@as(usize, 0), Interrupted.sleepOnce());
    }
    try std.testing.expectEqual(@as(u32, 1), Interrupted.restarted_count);
    const site = Interrupted.site.?;
    const expected = Interrupted.args();
    const kept = current.syscall_args_clobbered_count;
    try std.testing.expectEqualSlices(usize, expected[kept..4], site.args[kept..4]);
    try std.testing.expect(site.stack_pointer != 0);
    try std.testing.expect(site.instruction_pointer != 0);
}
