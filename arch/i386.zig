//! i386: the facts and machine-level operations the runtime and restart program need.
//! Checkpointing is not implemented here yet: the interface compiles so that the runtime and
//! mtcp_restart build, and every operation stops with a clear message if reached.
const std = @import("std");

pub const name = "i386";
pub const elf_machine: std.elf.EM = .@"386";
pub const pointer_size = 4;
pub const supported = false;
/// `tid` in glibc's `struct pthread` for this architecture (26 pointers in, as DMTCP uses).
pub const glibc_tid_offset: usize = 26 * pointer_size;
pub const relocation_relative: u32 = 8;

pub const Context = extern struct {
    registers: [16]u64 = [_]u64{0} ** 16,
};

const unsupported = "not yet supported on i386";

pub inline fn saveContext(context: *Context) usize {
    _ = context;
    @panic(unsupported);
}

pub inline fn restoreContext(context: *const Context, value: usize) noreturn {
    _ = context;
    _ = value;
    @panic(unsupported);
}

pub fn stackPointer(context: *const Context) usize {
    return @intCast(context.registers[0]);
}

pub fn instructionPointer(context: *const Context) usize {
    return @intCast(context.registers[1]);
}

pub fn threadPointer() usize {
    @panic(unsupported);
}

pub fn setThreadPointer(value: usize) void {
    _ = value;
    @panic(unsupported);
}

pub inline fn jumpOnStack(
    stack_top: usize,
    entry: *const fn (usize) callconv(.c) noreturn,
    arg: usize,
) noreturn {
    _ = stack_top;
    _ = entry;
    _ = arg;
    @panic(unsupported);
}

pub fn flushInstructionCache(start: usize, size: usize) void {
    _ = start;
    _ = size;
    @panic(unsupported);
}

/// Bytes `writeJump` writes: `jmp rel32` (every address is in reach on 32 bits).
pub const jump_size = 5;

/// Writes at `at` a jump to `target` that clobbers no register (vDSO trampolines).
pub fn writeJump(at: usize, target: usize) void {
    const code: *[jump_size]u8 = @ptrFromInt(at);
    code[0] = 0xe9;
    std.mem.writeInt(u32, code[1..5], @truncate(target -% (at + jump_size)), .little);
}
