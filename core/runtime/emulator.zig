//! Running under qemu-user (an ARM program on an x86_64 host, started through binfmt_misc):
//! the kernel's process is the emulator, and what the program sees of it is partly the
//! emulator's. Most of it is translated for the program (/proc/self/maps, /proc/self/exe,
//! signals, memory), but /proc/self/task is not: it also lists the emulator's own threads
//! (qemu's RCU thread), which never run program code and block every signal, so they would
//! never stop for a checkpoint, and which the emulator re-creates itself after a restart.
//!
//! Those threads exist before the program's first instruction, so they are the ones present
//! when this library's constructor runs (and, in a restarted process, when the restart entry
//! runs; in a forked child, when fork returns): `noteForeignThreads` records them then, and
//! the checkpoint leaves them alone. Without an emulator nothing is recorded, so a native
//! thread that blocks the checkpoint signal still fails the checkpoint loudly.
//! How emulation shows: /proc/self/exe is translated to the program, while the link of the
//! same process under /proc/self/task/<pid>/ is not and names the emulator.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const proc = @import("proc.zig");

/// qemu-user starts one thread of its own (RCU); a few more leave room for other emulators.
const foreign_max = 8;

var foreign: [foreign_max]i32 = [_]i32{0} ** foreign_max;
var foreign_count: usize = 0;

/// Records the threads of the process other than the caller, if an emulator runs it. Call
/// only where the caller is the program's only thread.
pub fn noteForeignThreads() void {
    foreign_count = 0;
    if (!emulated()) return;
    var tids: [limits.threads_max]i32 = undefined;
    const count = proc.listNumbers("/proc/self/task", &tids, null) catch return;
    const self = linux.gettid();
    for (tids[0..count]) |tid| {
        if (tid == self) continue;
        if (foreign_count == foreign.len) break;
        foreign[foreign_count] = tid;
        foreign_count += 1;
    }
    assert(foreign_count <= foreign.len);
}

/// True for a thread of the emulator's own, which is not suspended or saved.
pub fn isForeign(tid: i32) bool {
    assert(tid > 0);
    return std.mem.indexOfScalar(i32, foreign[0..foreign_count], tid) != null;
}

/// True when an emulator runs this process (qemu-user).
pub fn emulated() bool {
    var program: [limits.path_size_max]u8 = undefined;
    var process: [limits.path_size_max]u8 = undefined;
    var path_buffer: [64]u8 = undefined;
    const path = std.fmt.bufPrintZ(&path_buffer, "/proc/self/task/{d}/exe", .{linux.getpid()}) catch
        unreachable;
    const program_rc = linux.readlinkat(linux.AT.FDCWD, "/proc/self/exe", &program, program.len);
    const process_rc = linux.readlinkat(linux.AT.FDCWD, path.ptr, &process, process.len);
    if (linux.E.init(program_rc) != .SUCCESS or linux.E.init(process_rc) != .SUCCESS) return false;
    return !std.mem.eql(u8, program[0..program_rc], process[0..process_rc]);
}

test "emulator: foreign threads are the emulator's, and there are none natively" {
    noteForeignThreads();
    if (emulated()) {
        try std.testing.expect(foreign_count >= 1);
    } else {
        try std.testing.expectEqual(@as(usize, 0), foreign_count);
    }
    try std.testing.expect(!isForeign(linux.gettid()));
}
