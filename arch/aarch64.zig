//! aarch64: the facts and machine-level operations the runtime and restart program need.
//! Checkpointing is not implemented here yet: the interface compiles so that the runtime and
//! mtcp_restart build, and every operation stops with a clear message if reached.
const std = @import("std");

pub const name = "aarch64";
pub const elf_machine: std.elf.EM = .AARCH64;
pub const pointer_size = 8;
pub const supported = false;
/// `tid` in glibc's `struct pthread` for this architecture (26 pointers in, as DMTCP uses).
pub const glibc_tid_offset: usize = 26 * pointer_size;
pub const relocation_relative: u32 = 1027;

pub const Context = extern struct {
    registers: [16]u64 = [_]u64{0} ** 16,
};

const unsupported = "not yet supported on aarch64";

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
