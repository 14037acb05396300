//! armv7 (hard-float EABI, ARM state): the facts and machine-level operations the runtime and
//! restart program need. Context switching follows AAPCS: a saved context is the callee-saved
//! registers r4-r11, the stack pointer, the link register (where `saveContext` returns to,
//! with the Thumb bit if the caller is Thumb code), the VFP registers d8-d15 and FPSCR.
//!
//! TLS is TLS variant 1: TPIDRURO (CP15 c13, read-only to user code) points at glibc's thread
//! control block, which follows `struct pthread`; only the kernel sets it (`set_tls`).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;

pub const name = "armv7";
/// The architecture of the other word size on the same processors: a computation may hold
/// processes of both, and each image is restored by the mtcp_restart of its own.
pub const sibling = "aarch64";
pub const elf_machine: std.elf.EM = .ARM;
pub const pointer_size = 4;
/// Checkpoint and restart work on this architecture.
pub const supported = true;
/// `tid` in glibc's `struct pthread` relative to the thread pointer: `tid` is 26 words into
/// `struct pthread`, which ends at the thread pointer; `struct pthread` is 1280 bytes in
/// glibc 2.36 (Debian 12), 1216 in older releases; the runtime searches below the thread
/// pointer when this guess misses.
pub const glibc_tid_offset: isize = 26 * pointer_size - 1280;
pub const glibc_tid_search_start: isize = -1536;
/// R_ARM_RELATIVE (REL: the addend is in place).
pub const relocation_relative: u32 = 23;
/// mtcp_restart moves itself to a hole at or above this address: the low 256 MiB are where
/// non-PIE programs and their heaps live.
pub const restart_hole_floor: u64 = 0x1000_0000;
/// Anonymous regions this large are mapped NORESERVE at restart (DMTCP's 32-bit threshold).
pub const noreserve_size_min: u64 = 10 << 20;

pub const Context = extern struct {
    /// r4-r11.
    registers: [8]u32 = [_]u32{0} ** 8,
    sp: u32 = 0,
    lr: u32 = 0,
    /// d8-d15.
    vector: [8]u64 = [_]u64{0} ** 8,
    fpscr: u32 = 0,
    reserved: u32 = 0,
};

comptime {
    assert(@offsetOf(Context, "sp") == 32);
    assert(@offsetOf(Context, "vector") == 40);
    assert(@offsetOf(Context, "fpscr") == 104);
}

/// setjmp: returns 0 now, and `value` (never 0) each time `restoreContext` resumes it.
pub inline fn saveContext(context: *Context) usize {
    const save: *const fn (*Context) callconv(.c) usize = @ptrCast(&saveNaked);
    return save(context);
}

fn saveNaked() callconv(.naked) void {
    asm volatile (
        \\ stm r0, {r4-r11}
        \\ str sp, [r0, #32]
        \\ str lr, [r0, #36]
        \\ add r1, r0, #40
        \\ vstmia r1, {d8-d15}
        \\ vmrs r2, fpscr
        \\ str r2, [r0, #104]
        \\ mov r0, #0
        \\ bx lr
    );
}

/// longjmp: continues the `saveContext` call that filled `context`, which returns `value`.
pub inline fn restoreContext(context: *const Context, value: usize) noreturn {
    assert(value != 0);
    assert(context.sp != 0 and context.lr != 0);
    const Restore = *const fn (*const Context, usize) callconv(.c) noreturn;
    const restore: Restore = @ptrCast(&restoreNaked);
    restore(context, value);
}

fn restoreNaked() callconv(.naked) noreturn {
    asm volatile (
        \\ ldm r0, {r4-r11}
        \\ ldr r2, [r0, #32]
        \\ mov sp, r2
        \\ ldr lr, [r0, #36]
        \\ add r2, r0, #40
        \\ vldmia r2, {d8-d15}
        \\ ldr r2, [r0, #104]
        \\ vmsr fpscr, r2
        \\ mov r0, r1
        \\ bx lr
    );
}

pub fn stackPointer(context: *const Context) usize {
    return context.sp;
}

pub fn instructionPointer(context: *const Context) usize {
    return context.lr;
}

/// The calling thread's thread pointer (TPIDRURO).
pub fn threadPointer() usize {
    return asm volatile ("mrc p15, 0, %[value], c13, c0, 3"
        : [value] "=r" (-> usize),
    );
}

pub fn setThreadPointer(value: usize) void {
    const rc = linux.syscall1(.set_tls, value);
    assert(linux.E.init(rc) == .SUCCESS);
    assert(threadPointer() == value);
}

/// clone's CLONE_SETTLS argument is the thread pointer itself here.
pub const TlsStorage = void;

pub fn cloneTls(thread_pointer: usize, storage: *TlsStorage) usize {
    _ = storage;
    assert(thread_pointer != 0);
    return thread_pointer;
}

/// Calls `entry(arg)` on a new stack whose top is `stack_top`; never returns.
pub inline fn jumpOnStack(
    stack_top: usize,
    entry: *const fn (usize) callconv(.c) noreturn,
    arg: usize,
) noreturn {
    assert(stack_top % 16 == 0);
    const jump: *const fn (usize, usize, usize) callconv(.c) noreturn = @ptrCast(&jumpNaked);
    jump(stack_top, @intFromPtr(entry), arg);
}

fn jumpNaked() callconv(.naked) noreturn {
    asm volatile (
        \\ mov sp, r0
        \\ mov r0, r2
        \\ mov r11, #0
        \\ mov lr, #0
        \\ blx r1
        \\ udf #0
    );
}

/// The kernel checks this word before an rseq abort handler: glibc's RSEQ_SIG for
/// little-endian arm, `udf #24035` in A32 (sysdeps/unix/sysv/linux/arm/bits/rseq.h).
pub const rseq_signature: u32 = 0xe7f5def3;

/// A system call as a signal frame shows it: the registers it was made with and what it
/// returned so far. Only the argument registers and the result are read from the frame.
pub const SyscallSite = struct {
    args: [6]usize,
    result: usize,
    stack_pointer: usize,
    instruction_pointer: usize,
};

/// How many leading `SyscallSite.args` the result overwrote: r0 is the first argument and
/// the result, and the frame has no copy of the first (the kernel's ORIG_r0); the caller
/// takes it from /proc/<tid>/syscall, which shows ORIG_r0.
pub const syscall_args_clobbered_count = 1;

/// Indices into the kernel's `struct sigcontext` (uc_mcontext), 32-bit words: trap_no,
/// error_code and oldmask come first, then r0-r10, fp, ip, sp, lr, pc, cpsr.
const register = struct {
    const r0 = 3;
    const r7 = 10;
    const sp = 16;
    const pc = 18;
    const cpsr = 19;
};
/// uc_flags, uc_link and uc_stack (12 bytes) precede uc_mcontext in `struct ucontext`.
const mcontext_offset = 20;
/// CPSR's T bit: the thread ran Thumb code, whose `svc #0` is two bytes, not four.
const cpsr_thumb: u32 = 1 << 5;

comptime {
    // Checked against the standard library's view when this is the compiled architecture.
    if (@import("builtin").cpu.arch == .arm) {
        assert(mcontext_offset == @offsetOf(linux.ucontext_t, "mcontext"));
        assert(register.r0 * 4 == @offsetOf(linux.mcontext_t, "arm_r0"));
        assert(register.r7 * 4 == @offsetOf(linux.mcontext_t, "arm_r7"));
        assert(register.sp * 4 == @offsetOf(linux.mcontext_t, "arm_sp"));
        assert(register.pc * 4 == @offsetOf(linux.mcontext_t, "arm_pc"));
        assert(register.cpsr * 4 == @offsetOf(linux.mcontext_t, "arm_cpsr"));
    }
}

fn registers(ucontext: *anyopaque) *[21]u32 {
    return @ptrFromInt(@intFromPtr(ucontext) + mcontext_offset);
}

/// Where and how the thread that took the signal was interrupted.
pub fn syscallSite(ucontext: *anyopaque) SyscallSite {
    const r = registers(ucontext);
    return .{
        .args = r[register.r0..][0..6].*,
        .result = r[register.r0],
        .stack_pointer = r[register.sp],
        .instruction_pointer = r[register.pc],
    };
}

/// Makes sigreturn enter system call `number` again with `args`, as the kernel itself does
/// for a call interrupted with ERESTARTSYS under SA_RESTART: r0 back to the first argument,
/// the number in r7 (EABI), pc back onto the `svc`, which is 2 bytes in Thumb state.
pub fn restartSyscall(ucontext: *anyopaque, number: usize, args: [6]usize) void {
    const r = registers(ucontext);
    const thumb = r[register.cpsr] & cpsr_thumb != 0;
    const syscall_instruction_size: u32 = if (thumb) 2 else 4;
    assert(r[register.pc] > syscall_instruction_size);
    assert(r[register.pc] % syscall_instruction_size == 0);
    r[register.r0..][0..6].* = args;
    r[register.r7] = number;
    r[register.pc] -= syscall_instruction_size;
}

/// True when the kernel has already rewound the frame to enter call `number` again (a call
/// interrupted with ERESTARTSYS under SA_RESTART): pc back on the `svc` (2 bytes in Thumb
/// state) that `after_call` follows, r7 still holding the number.
pub fn rewoundSyscall(ucontext: *anyopaque, number: usize, after_call: usize) bool {
    const r = registers(ucontext);
    const size: u32 = if (r[register.cpsr] & cpsr_thumb != 0) 2 else 4;
    return r[register.r7] == number and r[register.pc] + size == after_call;
}

/// Makes sigreturn go on after a system call, at `instruction_pointer` (the address right
/// after the `svc`), as if the call had returned `result`.
pub fn completeSyscall(ucontext: *anyopaque, instruction_pointer: usize, result: usize) void {
    const r = registers(ucontext);
    assert(instruction_pointer > 4);
    r[register.pc] = @intCast(instruction_pointer);
    r[register.r0] = @truncate(result);
}

/// Code written as data must reach the instruction cache before it runs: the kernel's
/// cacheflush call (ARM-private system call) cleans and invalidates the range.
pub fn flushInstructionCache(start: usize, size: usize) void {
    assert(size > 0);
    const rc = linux.syscall3(.cacheflush, start, start + size, 0);
    assert(linux.E.init(rc) == .SUCCESS);
}

test "armv7: a saved context resumes with the given value" {
    if (comptime @import("builtin").cpu.arch != .arm) return error.SkipZigTest;
    const State = struct {
        var context: Context = .{};
        var resumed: u32 = 0;
    };
    const value = saveContext(&State.context);
    if (value == 0) {
        try std.testing.expect(State.context.sp != 0);
        restoreContext(&State.context, 7);
    }
    State.resumed += 1;
    try std.testing.expectEqual(@as(usize, 7), value);
    try std.testing.expectEqual(@as(u32, 1), State.resumed);
}

/// Bytes `writeJump` writes: a load of pc and the 4-byte target (plus a Thumb alignment nop).
pub const jump_size = 10;

/// Writes at `at` a jump to `target` that clobbers no register (vDSO trampolines). The low
/// bit of an address says Thumb, for both the entry point and the target.
pub fn writeJump(at: usize, target: usize) void {
    if (at & 1 == 0) {
        const code: *[8]u8 = @ptrFromInt(at);
        std.mem.writeInt(u32, code[0..4], 0xe51ff004, .little); // ldr pc, [pc, #-4]
        std.mem.writeInt(u32, code[4..8], @intCast(target), .little);
        return;
    }
    // Thumb: `ldr.w pc, [pc, #0]` reads from the next word-aligned address after pc + 4.
    var code: [*]u8 = @ptrFromInt(at - 1);
    if (@intFromPtr(code) % 4 != 0) {
        std.mem.writeInt(u16, code[0..2], 0xbf00, .little); // nop
        code += 2;
    }
    std.mem.writeInt(u16, code[0..2], 0xf8df, .little);
    std.mem.writeInt(u16, code[2..4], 0xf000, .little);
    std.mem.writeInt(u32, code[4..8], @intCast(target), .little);
}

test "armv7: a call is entered again 4 bytes back in ARM state, 2 in Thumb state" {
    if (comptime @import("builtin").cpu.arch != .arm) return error.SkipZigTest;
    var frame = std.mem.zeroes(linux.ucontext_t);
    const args = [6]usize{ 10, 11, 12, 13, 14, 15 };
    frame.mcontext.arm_r0 = @bitCast(@as(isize, -4));
    frame.mcontext.arm_pc = 0x1004;
    frame.mcontext.arm_sp = 0x8000;
    restartSyscall(&frame, 162, args);
    try std.testing.expectEqual(@as(usize, 0x1000), frame.mcontext.arm_pc);
    try std.testing.expectEqual(@as(usize, 162), frame.mcontext.arm_r7);
    try std.testing.expectEqualSlices(usize, &args, &syscallSite(&frame).args);
    frame.mcontext.arm_cpsr = cpsr_thumb;
    frame.mcontext.arm_pc = 0x1002;
    restartSyscall(&frame, 162, args);
    try std.testing.expectEqual(@as(usize, 0x1000), frame.mcontext.arm_pc);
    try std.testing.expectEqual(@as(usize, 0x8000), syscallSite(&frame).stack_pointer);
}
