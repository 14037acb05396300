//! i386: the facts and machine-level operations the runtime and restart program need.
const std = @import("std");

pub const name = "i386";
pub const elf_machine: std.elf.EM = .@"386";
pub const pointer_size = 4;
