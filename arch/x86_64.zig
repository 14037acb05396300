//! x86_64: the facts and machine-level operations the runtime and restart program need.
//! Context switching follows the System V ABI: a saved context is the callee-saved registers,
//! the stack pointer and the return address, plus the x87 control word and MXCSR (also
//! callee-saved); everything else is either dead at a call or lives in a signal frame.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;

pub const name = "x86_64";
/// The architecture of the other word size on the same processors: a computation may hold
/// processes of both, and each image is restored by the mtcp_restart of its own.
pub const sibling = "i386";
pub const elf_machine: std.elf.EM = .X86_64;
pub const pointer_size = 8;
/// Checkpoint and restart work on this architecture.
pub const supported = true;
/// `tid` in glibc's `struct pthread` (x86_64, glibc 2.11 and later), relative to the thread
/// pointer, which points at the start of `struct pthread` on x86; the runtime tries this
/// first and otherwise searches from `glibc_tid_search_start`.
pub const glibc_tid_offset: isize = 0x2d0;
pub const glibc_tid_search_start: isize = 0;
/// R_X86_64_RELATIVE: the only relocation a static-pie needs at run time.
pub const relocation_relative: u32 = 8;
/// mtcp_restart moves itself to a hole at or above this address: the low 4 GiB are where
/// non-PIE programs, their heaps and 32-bit-pointer allocations live.
pub const restart_hole_floor: u64 = 1 << 32;
/// Anonymous regions this large are mapped NORESERVE at restart (huge reservations, as DMTCP).
pub const noreserve_size_min: u64 = 1 << 30;

pub const Context = extern struct {
    rbx: u64 = 0,
    rbp: u64 = 0,
    r12: u64 = 0,
    r13: u64 = 0,
    r14: u64 = 0,
    r15: u64 = 0,
    rsp: u64 = 0,
    rip: u64 = 0,
    mxcsr: u32 = 0,
    fpu_control: u16 = 0,
    reserved: u16 = 0,
};

comptime {
    assert(@offsetOf(Context, "rsp") == 48);
    assert(@offsetOf(Context, "mxcsr") == 64);
}

/// setjmp: returns 0 now, and `value` (never 0) each time `restoreContext` resumes it.
pub inline fn saveContext(context: *Context) usize {
    const save: *const fn (*Context) callconv(.c) usize = @ptrCast(&saveNaked);
    return save(context);
}

fn saveNaked() callconv(.naked) void {
    asm volatile (
        \\ movq %%rbx, 0(%%rdi)
        \\ movq %%rbp, 8(%%rdi)
        \\ movq %%r12, 16(%%rdi)
        \\ movq %%r13, 24(%%rdi)
        \\ movq %%r14, 32(%%rdi)
        \\ movq %%r15, 40(%%rdi)
        \\ leaq 8(%%rsp), %%rdx
        \\ movq %%rdx, 48(%%rdi)
        \\ movq (%%rsp), %%rdx
        \\ movq %%rdx, 56(%%rdi)
        \\ stmxcsr 64(%%rdi)
        \\ fnstcw 68(%%rdi)
        \\ xorl %%eax, %%eax
        \\ retq
    );
}

/// longjmp: continues the `saveContext` call that filled `context`, which returns `value`.
pub inline fn restoreContext(context: *const Context, value: usize) noreturn {
    assert(value != 0);
    assert(context.rsp != 0 and context.rip != 0);
    const Restore = *const fn (*const Context, usize) callconv(.c) noreturn;
    const restore: Restore = @ptrCast(&restoreNaked);
    restore(context, value);
}

fn restoreNaked() callconv(.naked) noreturn {
    asm volatile (
        \\ movq 0(%%rdi), %%rbx
        \\ movq 8(%%rdi), %%rbp
        \\ movq 16(%%rdi), %%r12
        \\ movq 24(%%rdi), %%r13
        \\ movq 32(%%rdi), %%r14
        \\ movq 40(%%rdi), %%r15
        \\ ldmxcsr 64(%%rdi)
        \\ fldcw 68(%%rdi)
        \\ movq 48(%%rdi), %%rsp
        \\ movq %%rsi, %%rax
        \\ jmpq *56(%%rdi)
    );
}

pub fn stackPointer(context: *const Context) usize {
    return context.rsp;
}

pub fn instructionPointer(context: *const Context) usize {
    return context.rip;
}

const arch_set_fs = 0x1002;
const arch_get_fs = 0x1003;

/// The calling thread's thread pointer (%fs base: glibc's thread control block).
pub fn threadPointer() usize {
    var value: usize = 0;
    const rc = linux.syscall2(.arch_prctl, arch_get_fs, @intFromPtr(&value));
    assert(linux.E.init(rc) == .SUCCESS);
    return value;
}

pub fn setThreadPointer(value: usize) void {
    const rc = linux.syscall2(.arch_prctl, arch_set_fs, value);
    assert(linux.E.init(rc) == .SUCCESS);
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
        \\ movq %%rdi, %%rsp
        \\ movq %%rdx, %%rdi
        \\ xorl %%ebp, %%ebp
        \\ callq *%%rsi
        \\ ud2
    );
}

/// Bytes `writeJump` writes: `jmp *0(%rip)` and the 8-byte target after it.
pub const jump_size = 14;

/// Writes at `at` an instruction sequence that jumps to `target`, clobbering no register
/// (vDSO trampolines: the caller's arguments pass through untouched).
pub fn writeJump(at: usize, target: usize) void {
    const code: *[jump_size]u8 = @ptrFromInt(at);
    code[0..6].* = .{ 0xff, 0x25, 0x00, 0x00, 0x00, 0x00 };
    std.mem.writeInt(u64, code[6..14], target, .little);
}

/// The kernel checks this word before an rseq abort handler (glibc's RSEQ_SIG for x86).
pub const rseq_signature: u32 = 0x53053053;

/// A system call as a signal frame shows it: the registers it was made with and what it
/// returned so far. Only the argument registers and the result are read from the frame.
pub const SyscallSite = struct {
    args: [6]usize,
    result: usize,
    stack_pointer: usize,
    instruction_pointer: usize,
};

/// How many leading `SyscallSite.args` the result overwrote: none, rax is no argument.
pub const syscall_args_clobbered_count = 0;

/// Indices into the kernel's `struct sigcontext` general registers (uc_mcontext).
const register = struct {
    const r8 = 0;
    const r9 = 1;
    const r10 = 2;
    const rdi = 8;
    const rsi = 9;
    const rdx = 12;
    const rax = 13;
    const rsp = 15;
    const rip = 16;
};
/// uc_flags, uc_link and uc_stack precede uc_mcontext in the kernel's `struct ucontext`.
const mcontext_offset = 40;
/// `syscall` is two bytes (0f 05): the interrupted call restarts two bytes back.
const syscall_instruction_size = 2;

comptime {
    // Checked against the standard library's view when this is the compiled architecture.
    if (@import("builtin").cpu.arch == .x86_64) {
        assert(mcontext_offset == @offsetOf(linux.ucontext_t, "mcontext"));
        assert(register.rip == linux.REG.RIP);
    }
}

fn registers(ucontext: *anyopaque) *[23]u64 {
    return @ptrFromInt(@intFromPtr(ucontext) + mcontext_offset);
}

/// Where and how the thread that took the signal was interrupted.
pub fn syscallSite(ucontext: *anyopaque) SyscallSite {
    const r = registers(ucontext);
    return .{
        .args = .{
            r[register.rdi], r[register.rsi], r[register.rdx],
            r[register.r10], r[register.r8],  r[register.r9],
        },
        .result = r[register.rax],
        .stack_pointer = r[register.rsp],
        .instruction_pointer = r[register.rip],
    };
}

/// Makes sigreturn enter system call `number` again with `args`, as the kernel itself does
/// for a call interrupted with ERESTARTSYS under SA_RESTART.
pub fn restartSyscall(ucontext: *anyopaque, number: usize, args: [6]usize) void {
    const r = registers(ucontext);
    assert(r[register.rip] > syscall_instruction_size);
    r[register.rax] = number;
    r[register.rip] -= syscall_instruction_size;
    r[register.rdi] = args[0];
    r[register.rsi] = args[1];
    r[register.rdx] = args[2];
    r[register.r10] = args[3];
    r[register.r8] = args[4];
    r[register.r9] = args[5];
}

/// True when the kernel has already rewound the frame to enter call `number` again (a call
/// interrupted with ERESTARTSYS under SA_RESTART): rip is back on the `syscall` that
/// `after_call` follows, and rax holds the number again.
pub fn rewoundSyscall(ucontext: *anyopaque, number: usize, after_call: usize) bool {
    const r = registers(ucontext);
    return r[register.rax] == number and r[register.rip] + syscall_instruction_size == after_call;
}

/// Makes sigreturn go on after a system call, at `instruction_pointer` (the address right
/// after the `syscall` instruction), as if the call had returned `result`.
pub fn completeSyscall(ucontext: *anyopaque, instruction_pointer: usize, result: usize) void {
    const r = registers(ucontext);
    assert(instruction_pointer > syscall_instruction_size);
    r[register.rip] = instruction_pointer;
    r[register.rax] = result;
}

/// x86 keeps instruction and data caches coherent.
pub fn flushInstructionCache(start: usize, size: usize) void {
    _ = start;
    _ = size;
}

test "x86_64: a saved context resumes with the given value" {
    if (comptime @import("builtin").cpu.arch != .x86_64) return error.SkipZigTest;
    const State = struct {
        var context: Context = .{};
        var resumed: u32 = 0;
    };
    const value = saveContext(&State.context);
    if (value == 0) {
        try std.testing.expect(State.context.rsp != 0);
        restoreContext(&State.context, 7);
    }
    State.resumed += 1;
    try std.testing.expectEqual(@as(usize, 7), value);
    try std.testing.expectEqual(@as(u32, 1), State.resumed);
}
