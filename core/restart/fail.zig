//! mtcp_restart's one way out on failure: one line on stderr, exit code 99 (DMTCP's).
const std = @import("std");
const linux = std.os.linux;

pub const exit_code = 99;

pub fn fail(reason: []const u8) noreturn {
    const prefix = "mtcp_restart: ";
    _ = linux.write(2, prefix.ptr, prefix.len);
    _ = linux.write(2, reason.ptr, reason.len);
    _ = linux.write(2, "\n", 1);
    linux.exit_group(exit_code);
}
