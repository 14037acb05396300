//! i386: the facts and machine-level operations the runtime and restart program need.
//! Context switching follows the i386 System V ABI (cdecl): a saved context is the callee-saved
//! registers (ebx, esi, edi, ebp), the stack pointer and the return address, plus the x87
//! control word and MXCSR (pentium4 baseline: SSE2). Arguments arrive on the stack.
//!
//! The thread pointer is the base of a TLS segment in the GDT that %gs selects: glibc asks the
//! kernel for the first free TLS entry (set_thread_area with entry -1) when it starts, so a
//! fresh process asking the same way gets the same entry, and the selector saved in every
//! signal frame stays valid after a restart.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;

pub const name = "i386";
/// The architecture of the other word size on the same processors: a computation may hold
/// processes of both, and each image is restored by the mtcp_restart of its own.
pub const sibling = "x86_64";
pub const elf_machine: std.elf.EM = .@"386";
pub const pointer_size = 4;
/// Checkpoint and restart work on this architecture.
pub const supported = true;
/// `tid` in glibc's `struct pthread`, relative to the thread pointer (which points at the
/// start of `struct pthread` on x86): 26 words in, as DMTCP uses, for every glibc since 2.11.
pub const glibc_tid_offset: isize = 26 * pointer_size;
/// Where the runtime looks for the thread id if it is not at `glibc_tid_offset`: `struct
/// pthread` starts at the thread pointer.
pub const glibc_tid_search_start: isize = 0;
/// R_386_RELATIVE: the only relocation a static-pie needs at run time (REL: addend in place).
pub const relocation_relative: u32 = 8;
/// mtcp_restart moves itself to a hole at or above this address: the low 256 MiB are where
/// non-PIE programs and their heaps live.
pub const restart_hole_floor: u64 = 0x1000_0000;
/// Anonymous regions this large are mapped NORESERVE at restart (DMTCP's 32-bit threshold).
pub const noreserve_size_min: u64 = 10 << 20;

pub const Context = extern struct {
    ebx: u32 = 0,
    esi: u32 = 0,
    edi: u32 = 0,
    ebp: u32 = 0,
    esp: u32 = 0,
    eip: u32 = 0,
    mxcsr: u32 = 0,
    fpu_control: u16 = 0,
    reserved: u16 = 0,
};

comptime {
    assert(@offsetOf(Context, "esp") == 16);
    assert(@offsetOf(Context, "mxcsr") == 24);
    assert(@offsetOf(Context, "fpu_control") == 28);
}

/// setjmp: returns 0 now, and `value` (never 0) each time `restoreContext` resumes it.
pub inline fn saveContext(context: *Context) usize {
    const save: *const fn (*Context) callconv(.c) usize = @ptrCast(&saveNaked);
    return save(context);
}

fn saveNaked() callconv(.naked) void {
    asm volatile (
        \\ movl 4(%%esp), %%eax
        \\ movl %%ebx, 0(%%eax)
        \\ movl %%esi, 4(%%eax)
        \\ movl %%edi, 8(%%eax)
        \\ movl %%ebp, 12(%%eax)
        \\ leal 4(%%esp), %%ecx
        \\ movl %%ecx, 16(%%eax)
        \\ movl (%%esp), %%ecx
        \\ movl %%ecx, 20(%%eax)
        \\ stmxcsr 24(%%eax)
        \\ fnstcw 28(%%eax)
        \\ xorl %%eax, %%eax
        \\ retl
    );
}

/// longjmp: continues the `saveContext` call that filled `context`, which returns `value`.
pub inline fn restoreContext(context: *const Context, value: usize) noreturn {
    assert(value != 0);
    assert(context.esp != 0 and context.eip != 0);
    const Restore = *const fn (*const Context, usize) callconv(.c) noreturn;
    const restore: Restore = @ptrCast(&restoreNaked);
    restore(context, value);
}

fn restoreNaked() callconv(.naked) noreturn {
    asm volatile (
        \\ movl 4(%%esp), %%ecx
        \\ movl 8(%%esp), %%eax
        \\ movl 0(%%ecx), %%ebx
        \\ movl 4(%%ecx), %%esi
        \\ movl 8(%%ecx), %%edi
        \\ movl 12(%%ecx), %%ebp
        \\ ldmxcsr 24(%%ecx)
        \\ fldcw 28(%%ecx)
        \\ movl 16(%%ecx), %%esp
        \\ jmpl *20(%%ecx)
    );
}

pub fn stackPointer(context: *const Context) usize {
    return context.esp;
}

pub fn instructionPointer(context: *const Context) usize {
    return context.eip;
}

fn segmentGs() u32 {
    return asm volatile ("movl %%gs, %[selector]"
        : [selector] "=r" (-> u32),
    );
}

/// The calling thread's thread pointer: the base of the TLS segment %gs selects (0 if none).
pub fn threadPointer() usize {
    const selector = segmentGs();
    if (selector == 0) return 0;
    var descriptor = std.mem.zeroes(linux.user_desc);
    descriptor.entry_number = selector >> 3;
    const rc = linux.syscall1(.get_thread_area, @intFromPtr(&descriptor));
    assert(linux.E.init(rc) == .SUCCESS);
    return descriptor.base_addr;
}

/// Points this thread's TLS segment at `value`: the entry %gs already selects, or (a fresh
/// process, such as mtcp_restart) the first free one, which is the one glibc took.
pub fn setThreadPointer(value: usize) void {
    const selector = segmentGs();
    const entry: u32 = if (selector == 0) std.math.maxInt(u32) else selector >> 3;
    var descriptor = tlsDescriptor(value, entry);
    const rc = linux.syscall1(.set_thread_area, @intFromPtr(&descriptor));
    assert(linux.E.init(rc) == .SUCCESS);
    assert(descriptor.entry_number != std.math.maxInt(u32));
    asm volatile ("movl %[selector], %%gs"
        :
        : [selector] "r" (descriptor.entry_number << 3 | 3),
    );
}

fn tlsDescriptor(base: usize, entry_number: u32) linux.user_desc {
    return .{
        .entry_number = entry_number,
        .base_addr = base,
        .limit = 0xfffff,
        .flags = .{
            .seg_32bit = 1,
            .contents = 0,
            .read_exec_only = 0,
            .limit_in_pages = 1,
            .seg_not_present = 0,
            .useable = 1,
        },
    };
}

/// What clone's CLONE_SETTLS argument points to here: a segment descriptor.
pub const TlsStorage = linux.user_desc;

/// clone's CLONE_SETTLS argument for a thread whose thread pointer is `thread_pointer`: on
/// i386 the address of a descriptor for the entry this thread's %gs selects (the kernel
/// copies it during clone, so `storage` may be reused afterwards).
pub fn cloneTls(thread_pointer: usize, storage: *TlsStorage) usize {
    const selector = segmentGs();
    assert(selector != 0);
    storage.* = tlsDescriptor(thread_pointer, selector >> 3);
    return @intFromPtr(storage);
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
    // The callee finds its argument at 4(%esp) and, per the ABI, %esp + 4 16-byte aligned.
    asm volatile (
        \\ movl 4(%%esp), %%ecx
        \\ movl 8(%%esp), %%edx
        \\ movl 12(%%esp), %%eax
        \\ movl %%ecx, %%esp
        \\ subl $12, %%esp
        \\ pushl %%eax
        \\ xorl %%ebp, %%ebp
        \\ calll *%%edx
        \\ ud2
    );
}

/// The kernel checks this word before an rseq abort handler (glibc's RSEQ_SIG for x86,
/// sysdeps/unix/sysv/linux/x86/bits/rseq.h: the same for 32 and 64 bits).
pub const rseq_signature: u32 = 0x53053053;

/// A system call as a signal frame shows it: the registers it was made with and what it
/// returned so far. Only the argument registers and the result are read from the frame.
pub const SyscallSite = struct {
    args: [6]usize,
    result: usize,
    stack_pointer: usize,
    instruction_pointer: usize,
};

/// How many leading `SyscallSite.args` the result overwrote: none, eax is no argument.
pub const syscall_args_clobbered_count = 0;

/// Indices into the kernel's `struct sigcontext_32` (uc_mcontext), 32-bit words; the
/// segment registers gs, fs, es and ds come first.
const register = struct {
    const edi = 4;
    const esi = 5;
    const ebp = 6;
    const esp = 7;
    const ebx = 8;
    const edx = 9;
    const ecx = 10;
    const eax = 11;
    const eip = 14;
};
/// uc_flags, uc_link and uc_stack (12 bytes) precede uc_mcontext in `struct ucontext`.
const mcontext_offset = 20;
/// `int $0x80` is two bytes (cd 80). A call made through the vDSO's `sysenter` (glibc's
/// `__kernel_vsyscall`) shows the same: the kernel sets the frame's eip to the landing pad
/// right after the `int $0x80` that follows `sysenter` there, precisely so that eip - 2
/// enters the call again, and puts the sixth argument, which `sysenter` cannot carry in
/// ebp, back into ebp (arch/x86/entry/common.c, do_fast_syscall_32).
const syscall_instruction_size = 2;

comptime {
    // Checked against the standard library's view when this is the compiled architecture.
    if (@import("builtin").cpu.arch == .x86) {
        assert(mcontext_offset == @offsetOf(linux.ucontext_t, "mcontext"));
        assert(register.eip == linux.REG.EIP);
        assert(register.eax == linux.REG.EAX);
        assert(register.ebx == linux.REG.EBX);
        assert(register.esp == linux.REG.ESP);
    }
}

fn registers(ucontext: *anyopaque) *[19]u32 {
    return @ptrFromInt(@intFromPtr(ucontext) + mcontext_offset);
}

/// Where and how the thread that took the signal was interrupted.
pub fn syscallSite(ucontext: *anyopaque) SyscallSite {
    const r = registers(ucontext);
    return .{
        .args = .{
            r[register.ebx], r[register.ecx], r[register.edx],
            r[register.esi], r[register.edi], r[register.ebp],
        },
        .result = r[register.eax],
        .stack_pointer = r[register.esp],
        .instruction_pointer = r[register.eip],
    };
}

/// Makes sigreturn enter system call `number` again with `args`, as the kernel itself does
/// for a call interrupted with ERESTARTSYS under SA_RESTART: eax back to the number, eip
/// back onto the `int $0x80`.
pub fn restartSyscall(ucontext: *anyopaque, number: usize, args: [6]usize) void {
    const r = registers(ucontext);
    assert(r[register.eip] > syscall_instruction_size);
    r[register.eax] = @intCast(number);
    r[register.eip] -= syscall_instruction_size;
    r[register.ebx] = args[0];
    r[register.ecx] = args[1];
    r[register.edx] = args[2];
    r[register.esi] = args[3];
    r[register.edi] = args[4];
    r[register.ebp] = args[5];
}

/// True when the kernel has already rewound the frame to enter call `number` again (a call
/// interrupted with ERESTARTSYS under SA_RESTART): eip back on the `int $0x80` that
/// `after_call` follows, eax holding the number again.
pub fn rewoundSyscall(ucontext: *anyopaque, number: usize, after_call: usize) bool {
    const r = registers(ucontext);
    return r[register.eax] == number and r[register.eip] + syscall_instruction_size == after_call;
}

/// Makes sigreturn go on after a system call, at `instruction_pointer` (the address right
/// after the call's instruction), as if the call had returned `result`.
pub fn completeSyscall(ucontext: *anyopaque, instruction_pointer: usize, result: usize) void {
    const r = registers(ucontext);
    assert(instruction_pointer > syscall_instruction_size);
    r[register.eip] = @intCast(instruction_pointer);
    r[register.eax] = @truncate(result);
}

/// x86 keeps instruction and data caches coherent.
pub fn flushInstructionCache(start: usize, size: usize) void {
    _ = start;
    _ = size;
}

test "i386: a saved context resumes with the given value" {
    if (comptime @import("builtin").cpu.arch != .x86) return error.SkipZigTest;
    const State = struct {
        var context: Context = .{};
        var resumed: u32 = 0;
    };
    const value = saveContext(&State.context);
    if (value == 0) {
        try std.testing.expect(State.context.esp != 0);
        restoreContext(&State.context, 7);
    }
    State.resumed += 1;
    try std.testing.expectEqual(@as(usize, 7), value);
    try std.testing.expectEqual(@as(u32, 1), State.resumed);
}

/// Bytes `writeJump` writes: `jmp rel32` (every address is in reach on 32 bits).
pub const jump_size = 5;

/// Writes at `at` a jump to `target` that clobbers no register (vDSO trampolines).
pub fn writeJump(at: usize, target: usize) void {
    const code: *[jump_size]u8 = @ptrFromInt(at);
    code[0] = 0xe9;
    std.mem.writeInt(u32, code[1..5], @truncate(target -% (at + jump_size)), .little);
}

test "i386: a call is entered again at its int $0x80 with eax set back" {
    if (comptime @import("builtin").cpu.arch != .x86) return error.SkipZigTest;
    var frame = std.mem.zeroes(linux.ucontext_t);
    const args = [6]usize{ 10, 11, 12, 13, 14, 15 };
    frame.mcontext.gregs[linux.REG.EAX] = @bitCast(@as(isize, -4));
    frame.mcontext.gregs[linux.REG.EIP] = 0x1002;
    frame.mcontext.gregs[linux.REG.ESP] = 0x8000;
    try std.testing.expectEqual(frame.mcontext.gregs[linux.REG.EAX], syscallSite(&frame).result);
    restartSyscall(&frame, 407, args);
    try std.testing.expectEqual(@as(usize, 0x1000), frame.mcontext.gregs[linux.REG.EIP]);
    try std.testing.expectEqual(@as(usize, 407), frame.mcontext.gregs[linux.REG.EAX]);
    try std.testing.expectEqual(@as(usize, 15), frame.mcontext.gregs[linux.REG.EBP]);
    try std.testing.expectEqualSlices(usize, &args, &syscallSite(&frame).args);
}
