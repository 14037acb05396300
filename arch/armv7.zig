//! armv7: the facts and machine-level operations the runtime and restart program need.
//! Checkpointing is not implemented here yet: the interface compiles so that the runtime and
//! mtcp_restart build, and every operation stops with a clear message if reached.
const std = @import("std");

pub const name = "armv7";
pub const elf_machine: std.elf.EM = .ARM;
pub const pointer_size = 4;
pub const supported = false;
/// `tid` in glibc's `struct pthread` for this architecture (26 pointers in, as DMTCP uses).
pub const glibc_tid_offset: usize = 26 * pointer_size;
pub const relocation_relative: u32 = 23;

pub const Context = extern struct {
    registers: [16]u64 = [_]u64{0} ** 16,
};

const unsupported = "not yet supported on armv7";

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
