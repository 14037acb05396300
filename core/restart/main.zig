//! mtcp_restart: the static, libc-free program that turns itself into a checkpointed process.
//! This build knows its architecture and the protocol; restoring images arrives with the image
//! format. It refuses what it cannot do, with one line on stderr and the failure code.
const std = @import("std");
const linux = std.os.linux;
const arch = @import("arch");

pub fn main() u8 {
    var args = std.process.args();
    _ = args.skip();
    const first = args.next() orelse return fail("usage: mtcp_restart IMAGE");
    if (std.mem.eql(u8, first, "--version")) {
        print("mtcp_restart (dmtcp) " ++ arch.current.name ++ "\n");
        return 0;
    }
    return fail("this build cannot restore images yet");
}

fn print(text: []const u8) void {
    _ = linux.write(1, text.ptr, text.len);
}

fn fail(reason: []const u8) u8 {
    const prefix = "mtcp_restart: ";
    _ = linux.write(2, prefix.ptr, prefix.len);
    _ = linux.write(2, reason.ptr, reason.len);
    _ = linux.write(2, "\n", 1);
    return 99;
}

pub const panic = std.debug.FullPanic(fatal);

fn fatal(message: []const u8, _: ?usize) noreturn {
    _ = fail(message);
    linux.exit_group(99);
}
