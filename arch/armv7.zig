//! armv7: the facts and machine-level operations the runtime and restart program need.
const std = @import("std");

pub const name = "armv7";
pub const elf_machine: std.elf.EM = .ARM;
pub const pointer_size = 4;
