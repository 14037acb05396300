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
/// `emulated()` as it was when this process (incarnation) started: set with the foreign
/// threads, so that hot paths need not ask /proc again.
var emulated_now = false;

/// Records the threads of the process other than the caller, if an emulator runs it. Call
/// only where the caller is the program's only thread.
pub fn noteForeignThreads() void {
    foreign_count = 0;
    emulated_now = emulated();
    signals_learnt = false;
    if (!emulated_now) return;
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

/// `emulated()`, as noted by the last `noteForeignThreads`.
pub fn active() bool {
    return emulated_now;
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

/// The program's number of each signal the kernel counts as `program_signals[index]` in the
/// masks of /proc/<pid>/status (bit index: signal - 1); 0 when unknown. Natively they are the
/// same. qemu-user maps the program's signals to the host's, which are what /proc shows: it
/// shifts the real-time ones to keep some host signals for itself and moves SIGABRT, by
/// rules that change between releases. So the mapping is learnt, not assumed.
var program_signals: [64]u8 = [_]u8{0} ** 64;
var signals_learnt = false;

/// Signals whose sending has side effects beyond being pending (continuing the process,
/// flushing pending stop or continue signals), or which qemu keeps to itself unblocked.
const unlearnable = [_]u8{
    linux.SIG.KILL, linux.SIG.STOP, linux.SIG.CONT, linux.SIG.TSTP,
    linux.SIG.TTIN, linux.SIG.TTOU, linux.SIG.SEGV, linux.SIG.BUS,
};

/// Learns `program_signals` under an emulator, once per process: the calling thread, which
/// must block every signal (the checkpoint thread), sends itself each signal in turn, sees
/// which bit of its own SigPnd it sets, and takes it back. Those it cannot learn keep their
/// number. Natively nothing is done.
pub fn learnSignals() void {
    if (!emulated_now or signals_learnt) return;
    signals_learnt = true;
    for (&program_signals, 1..) |*entry, signal| entry.* = @intCast(signal);
    const pid = linux.getpid();
    const tid = linux.gettid();
    var signal: u8 = 1;
    while (signal <= 64) : (signal += 1) {
        if (std.mem.indexOfScalar(u8, &unlearnable, signal) != null) continue;
        const before = ownPendingKernel();
        if (linux.E.init(linux.tgkill(pid, tid, signal)) != .SUCCESS) continue;
        const added = ownPendingKernel() & ~before;
        take(signal);
        if (@popCount(added) != 1) continue;
        program_signals[@ctz(added)] = signal;
    }
}

/// Takes back the pending `signal` that `learnSignals` sent itself.
fn take(signal: u8) void {
    assert(signal >= 1 and signal <= 64);
    const set: u64 = @as(u64, 1) << @intCast(signal - 1);
    const zero: linux.timespec = .{ .sec = 0, .nsec = 0 };
    const rc = linux.syscall4(.rt_sigtimedwait, @intFromPtr(&set), 0, @intFromPtr(&zero), 8);
    assert(linux.E.init(rc) != .SUCCESS or rc == signal);
}

/// A signal mask read from /proc/<pid>/status, in the program's numbering.
pub fn programMask(kernel_mask: u64) u64 {
    if (!emulated_now or !signals_learnt) return kernel_mask;
    var mask: u64 = 0;
    var rest = kernel_mask;
    while (rest != 0) {
        const index = @ctz(rest);
        rest &= rest - 1;
        const signal = program_signals[index];
        if (signal != 0) mask |= @as(u64, 1) << @intCast(signal - 1);
    }
    return mask;
}

/// SigPnd of /proc/thread-self/status: the calling thread's own pending signals, as the
/// kernel numbers them; 0 when it cannot be read.
pub fn ownPendingKernel() u64 {
    return statusMask("/proc/thread-self/status", "SigPnd");
}

/// One signal mask line (SigPnd, SigBlk, ...) of a /proc status file; 0 when unreadable.
pub fn statusMask(path: [:0]const u8, comptime key: []const u8) u64 {
    var buffer: [4096]u8 = undefined;
    const text = proc.readFile(path, &buffer) catch return 0;
    const line = "\n" ++ key ++ ":\t";
    const start = (std.mem.indexOf(u8, text, line) orelse return 0) + line.len;
    const end = std.mem.indexOfScalarPos(u8, text, start, '\n') orelse return 0;
    return std.fmt.parseInt(u64, text[start..end], 16) catch 0;
}

test "emulator: the signals /proc shows are the program's, natively or learnt" {
    noteForeignThreads();
    var all = linux.sigfillset();
    var old: linux.sigset_t = undefined;
    _ = linux.sigprocmask(linux.SIG.SETMASK, &all, &old);
    defer _ = linux.sigprocmask(linux.SIG.SETMASK, &old, null);
    learnSignals();
    const usr1: u64 = 1 << (linux.SIG.USR1 - 1);
    try std.testing.expectEqual(usr1, programMask(usr1));
    // The first real-time signal glibc leaves to programs (SIGRTMIN, 34).
    const rt: u8 = 34;
    _ = linux.tgkill(linux.getpid(), linux.gettid(), rt);
    const pending = programMask(ownPendingKernel());
    take(rt);
    try std.testing.expectEqual(@as(u64, 1) << (rt - 1), pending);
    try std.testing.expectEqual(@as(u64, 0), ownPendingKernel());
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
