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
