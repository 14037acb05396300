//! aarch64: the facts and machine-level operations the runtime and restart program need.
//! Context switching follows AAPCS64: a saved context is the callee-saved registers x19-x28,
//! the frame pointer x29, the link register x30 (where `saveContext` returns to), the stack
//! pointer, the low halves of v8-v15 (d8-d15) and FPCR; everything else is dead at a call or
//! lives in a signal frame.
//!
//! TLS is TLS variant 1: TPIDR_EL0, which user code reads and writes itself, points at glibc's
//! thread control block, which follows `struct pthread` in memory.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;

pub const name = "aarch64";
/// The architecture of the other word size on the same processors: a computation may hold
/// processes of both, and each image is restored by the mtcp_restart of its own.
pub const sibling = "armv7";
pub const elf_machine: std.elf.EM = .AARCH64;
pub const pointer_size = 8;
/// Checkpoint and restart work on this architecture.
pub const supported = true;
/// `tid` in glibc's `struct pthread` relative to the thread pointer: `tid` is 26 words into
/// `struct pthread`, which ends at the thread pointer; `struct pthread` is 1856 bytes in
/// glibc 2.36 (Debian 12), 1776 in older releases, so the runtime searches below the thread
/// pointer when this guess misses.
pub const glibc_tid_offset: isize = 26 * pointer_size - 1856;
pub const glibc_tid_search_start: isize = -2048;
/// R_AARCH64_RELATIVE.
pub const relocation_relative: u32 = 1027;
/// mtcp_restart moves itself to a hole at or above this address (as on x86_64).
pub const restart_hole_floor: u64 = 1 << 32;
/// Anonymous regions this large are mapped NORESERVE at restart (huge reservations).
pub const noreserve_size_min: u64 = 1 << 30;

pub const Context = extern struct {
    /// x19-x28, then x29 (frame pointer) and x30 (link register: where the save returns).
    registers: [12]u64 = [_]u64{0} ** 12,
    sp: u64 = 0,
    /// d8-d15.
    vector: [8]u64 = [_]u64{0} ** 8,
    fpcr: u64 = 0,
};

comptime {
    assert(@offsetOf(Context, "sp") == 96);
    assert(@offsetOf(Context, "vector") == 104);
    assert(@offsetOf(Context, "fpcr") == 168);
}

/// setjmp: returns 0 now, and `value` (never 0) each time `restoreContext` resumes it.
pub inline fn saveContext(context: *Context) usize {
    const save: *const fn (*Context) callconv(.c) usize = @ptrCast(&saveNaked);
    return save(context);
}

fn saveNaked() callconv(.naked) void {
    asm volatile (
        \\ stp x19, x20, [x0, #0]
        \\ stp x21, x22, [x0, #16]
        \\ stp x23, x24, [x0, #32]
        \\ stp x25, x26, [x0, #48]
        \\ stp x27, x28, [x0, #64]
        \\ stp x29, x30, [x0, #80]
        \\ mov x2, sp
        \\ str x2, [x0, #96]
        \\ stp d8, d9, [x0, #104]
        \\ stp d10, d11, [x0, #120]
        \\ stp d12, d13, [x0, #136]
        \\ stp d14, d15, [x0, #152]
        \\ mrs x2, fpcr
        \\ str x2, [x0, #168]
        \\ mov x0, #0
        \\ ret
    );
}

/// longjmp: continues the `saveContext` call that filled `context`, which returns `value`.
pub inline fn restoreContext(context: *const Context, value: usize) noreturn {
    assert(value != 0);
    assert(context.sp != 0 and context.registers[11] != 0);
    const Restore = *const fn (*const Context, usize) callconv(.c) noreturn;
    const restore: Restore = @ptrCast(&restoreNaked);
    restore(context, value);
}

fn restoreNaked() callconv(.naked) noreturn {
    asm volatile (
        \\ ldp x19, x20, [x0, #0]
        \\ ldp x21, x22, [x0, #16]
        \\ ldp x23, x24, [x0, #32]
        \\ ldp x25, x26, [x0, #48]
        \\ ldp x27, x28, [x0, #64]
        \\ ldp x29, x30, [x0, #80]
        \\ ldr x2, [x0, #96]
        \\ mov sp, x2
        \\ ldp d8, d9, [x0, #104]
        \\ ldp d10, d11, [x0, #120]
        \\ ldp d12, d13, [x0, #136]
        \\ ldp d14, d15, [x0, #152]
        \\ ldr x2, [x0, #168]
        \\ msr fpcr, x2
        \\ mov x0, x1
        \\ ret
    );
}

pub fn stackPointer(context: *const Context) usize {
    return context.sp;
}

pub fn instructionPointer(context: *const Context) usize {
    return context.registers[11];
}

/// The calling thread's thread pointer (TPIDR_EL0).
pub fn threadPointer() usize {
    return asm volatile ("mrs %[value], tpidr_el0"
        : [value] "=r" (-> usize),
    );
}

pub fn setThreadPointer(value: usize) void {
    asm volatile ("msr tpidr_el0, %[value]"
        :
        : [value] "r" (value),
        : .{ .memory = true });
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
        \\ mov sp, x0
        \\ mov x0, x2
        \\ mov x29, #0
        \\ mov x30, #0
        \\ blr x1
        \\ brk #0
    );
}

/// The kernel checks this word before an rseq abort handler: glibc's RSEQ_SIG for aarch64,
/// `brk #0x45e0` (sysdeps/unix/sysv/linux/aarch64/bits/rseq.h, little-endian data).
pub const rseq_signature: u32 = 0xd428bc00;

/// A system call as a signal frame shows it: the registers it was made with and what it
/// returned so far. Only the argument registers and the result are read from the frame.
pub const SyscallSite = struct {
    args: [6]usize,
    result: usize,
    stack_pointer: usize,
    instruction_pointer: usize,
};

/// How many leading `SyscallSite.args` the result overwrote: x0 is the first argument and
/// the result, and the frame has no copy of the first (the kernel's orig_x0); the caller
/// takes it from /proc/<tid>/syscall, which shows orig_x0.
pub const syscall_args_clobbered_count = 1;

/// uc_flags, uc_link, uc_stack (24 bytes) and the 1024-bit uc_sigmask precede uc_mcontext
/// in the kernel's `struct ucontext`, which is 16-byte aligned: 40 + 128, rounded up.
const mcontext_offset = 176;
/// In `struct sigcontext`: fault_address, then x0-x30, sp, pc, pstate (8 bytes each).
const regs_offset = 8;
const sp_index = 31;
const pc_index = 32;
/// The system call number travels in x8.
const number_index = 8;
/// `svc #0` is four bytes: the interrupted call restarts four bytes back.
const syscall_instruction_size = 4;

comptime {
    // Checked against the standard library's view when this is the compiled architecture.
    if (@import("builtin").cpu.arch == .aarch64) {
        assert(mcontext_offset == @offsetOf(linux.ucontext_t, "mcontext"));
        assert(regs_offset == @offsetOf(linux.mcontext_t, "regs"));
        assert(regs_offset + pc_index * 8 == @offsetOf(linux.mcontext_t, "pc"));
        assert(regs_offset + sp_index * 8 == @offsetOf(linux.mcontext_t, "sp"));
    }
}

/// x0-x30, sp and pc of the frame.
fn registers(ucontext: *anyopaque) *[33]u64 {
    return @ptrFromInt(@intFromPtr(ucontext) + mcontext_offset + regs_offset);
}

/// Where and how the thread that took the signal was interrupted.
pub fn syscallSite(ucontext: *anyopaque) SyscallSite {
    const r = registers(ucontext);
    return .{
        .args = r[0..6].*,
        .result = r[0],
        .stack_pointer = r[sp_index],
        .instruction_pointer = r[pc_index],
    };
}

/// Makes sigreturn enter system call `number` again with `args`, as the kernel itself does
/// for a call interrupted with ERESTARTSYS under SA_RESTART: x0 back to the first argument,
/// the number in x8, pc back onto the `svc`.
pub fn restartSyscall(ucontext: *anyopaque, number: usize, args: [6]usize) void {
    const r = registers(ucontext);
    assert(r[pc_index] > syscall_instruction_size);
    assert(r[pc_index] % 4 == 0);
    r[0..6].* = args;
    r[number_index] = number;
    r[pc_index] -= syscall_instruction_size;
}

/// True when the kernel has already rewound the frame to enter call `number` again (a call
/// interrupted with ERESTARTSYS under SA_RESTART): pc back on the `svc` that `after_call`
/// follows (x8 still holds the number; x0 the first argument again).
pub fn rewoundSyscall(ucontext: *anyopaque, number: usize, after_call: usize) bool {
    const r = registers(ucontext);
    return r[number_index] == number and r[pc_index] + syscall_instruction_size == after_call;
}

/// Makes sigreturn go on after a system call, at `instruction_pointer` (the address right
/// after the `svc`), as if the call had returned `result`.
pub fn completeSyscall(ucontext: *anyopaque, instruction_pointer: usize, result: usize) void {
    const r = registers(ucontext);
    assert(instruction_pointer > syscall_instruction_size);
    r[pc_index] = instruction_pointer;
    r[0] = result;
}

/// Code written as data (mtcp_restart's moved copy, restored program text) must be cleaned
/// from the data cache to the point of unification and invalidated from the instruction
/// cache before it runs: line by line, with the line sizes CTR_EL0 gives.
pub fn flushInstructionCache(start: usize, size: usize) void {
    assert(size > 0);
    const ctr = asm volatile ("mrs %[value], ctr_el0"
        : [value] "=r" (-> u64),
    );
    const data_line: usize = @as(usize, 4) << @intCast((ctr >> 16) & 0xf);
    const code_line: usize = @as(usize, 4) << @intCast(ctr & 0xf);
    const end = start + size;
    var line = start & ~(data_line - 1);
    while (line < end) : (line += data_line) {
        asm volatile ("dc cvau, %[line]"
            :
            : [line] "r" (line),
            : .{ .memory = true });
    }
    asm volatile ("dsb ish" ::: .{ .memory = true });
    line = start & ~(code_line - 1);
    while (line < end) : (line += code_line) {
        asm volatile ("ic ivau, %[line]"
            :
            : [line] "r" (line),
            : .{ .memory = true });
    }
    asm volatile ("dsb ish\nisb" ::: .{ .memory = true });
}

test "aarch64: a saved context resumes with the given value" {
    if (comptime @import("builtin").cpu.arch != .aarch64) return error.SkipZigTest;
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

/// Bytes `writeJump` writes: `ldr x16, #8; br x16` and the 8-byte target.
pub const jump_size = 16;

/// Writes at `at` a jump to `target` through x16, the intra-procedure-call scratch register
/// the ABI lets a veneer clobber (vDSO trampolines).
pub fn writeJump(at: usize, target: usize) void {
    const code: *[jump_size]u8 = @ptrFromInt(at);
    std.mem.writeInt(u32, code[0..4], 0x58000050, .little); // ldr x16, #8
    std.mem.writeInt(u32, code[4..8], 0xd61f0200, .little); // br x16
    std.mem.writeInt(u64, code[8..16], target, .little);
}

test "aarch64: a call is entered again at its svc with x0 and x8 set back" {
    if (comptime @import("builtin").cpu.arch != .aarch64) return error.SkipZigTest;
    var frame = std.mem.zeroes(linux.ucontext_t);
    const args = [6]usize{ 10, 11, 12, 13, 14, 15 };
    frame.mcontext.regs[0] = @bitCast(@as(isize, -4));
    frame.mcontext.pc = 0x1004;
    frame.mcontext.sp = 0x8000;
    try std.testing.expectEqual(frame.mcontext.regs[0], syscallSite(&frame).result);
    restartSyscall(&frame, 115, args);
    try std.testing.expectEqual(@as(usize, 0x1000), frame.mcontext.pc);
    try std.testing.expectEqual(@as(usize, 115), frame.mcontext.regs[8]);
    try std.testing.expectEqualSlices(usize, &args, &syscallSite(&frame).args);
    try std.testing.expectEqual(@as(usize, 0x8000), syscallSite(&frame).stack_pointer);
}
