//! x86_64: the facts and machine-level operations the runtime and restart program need.
const std = @import("std");

pub const name = "x86_64";
pub const elf_machine: std.elf.EM = .X86_64;
pub const pointer_size = 8;
