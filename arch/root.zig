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
        // Registers and context, TLS (and how clone takes it), stack switch, cache flush.
        for (.{
            "Context",            "saveContext",   "restoreContext",        "stackPointer",
            "instructionPointer", "threadPointer", "setThreadPointer",      "TlsStorage",
            "cloneTls",           "jumpOnStack",   "flushInstructionCache", "writeJump",
            "jump_size",
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
