//! The program's view of the checkpoint signal (DMTCP_SIGCKPT, default SIGUSR2).
//!
//! Threads are suspended with that signal, so its handler must stay ours and no thread may
//! keep it blocked. A program that installs a handler for it, ignores it or blocks it is told
//! once on stderr (not with DMTCP_QUIET=2) which signal to launch it with instead, and goes on
//! believing it did what it asked, as under DMTCP: `sigaction`, `signal` (and `bsd_signal`)
//! remember the action it set and hand it back when asked, and never pass it to the kernel;
//! `sigprocmask` and `pthread_sigmask` take the signal out of the set they block, remember
//! per thread that the program blocked it, and report it blocked in the old set.
//!
//! The same signal sent by anyone else (the program's own `raise`, `kill` from a shell) reaches
//! our handler, which tells ours apart by the value the checkpoint thread queues with it and
//! passes the others on here (`forward`): to the program's handler (run with every signal
//! blocked, on the stack the signal arrived on), ignored, or given its default action; held
//! while the receiving thread believes it blocked, and raised again when it unblocks it.
//! The older interfaces go through the same two: `sigset`, `sighold`, `sigrelse`, `sigignore`,
//! BSD's `sigblock`, `sigsetmask`, `siggetmask`; `sigsuspend` and `sigpause` wait with the
//! checkpoint signal open whatever mask they are given (glibc's versions call its internals,
//! which no wrapper sees). Not covered: raw system calls and the masks of ppoll, pselect and
//! epoll_pwait (the checkpoint then fails, saying the handler was replaced or the thread did
//! not stop).
//!
//! Every other signal goes straight to glibc's `__sigaction` and to the kernel's
//! rt_sigprocmask, with glibc's rule for its two internal signals (never blocked).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const signals = @import("signals.zig");
const worker = @import("worker.zig");

/// glibc's `struct sigaction` on x86_64, i386, aarch64 and armv7
/// (sysdeps/unix/sysv/linux/bits/sigaction.h): handler, 1024-bit mask, flags, restorer.
pub const CAction = extern struct {
    handler: usize,
    mask: CSigset,
    flags: c_int,
    restorer: usize,
};

/// glibc's `sigset_t`: 1024 bits, of which the kernel uses the first 64.
pub const CSigset = extern struct {
    words: [1024 / @bitSizeOf(c_ulong)]c_ulong,
};

comptime {
    assert(@sizeOf(CSigset) == 128);
    assert(@offsetOf(CAction, "mask") == @sizeOf(usize));
}

extern "c" fn __sigaction(signal: c_int, action: ?*const CAction, old: ?*CAction) c_int;
extern "c" fn __sigsuspend(mask: *const CSigset) c_int;

const sig_dfl: usize = 0;
const sig_ign: usize = 1;
const sig_err: usize = std.math.maxInt(usize);
const sig_hold: usize = 2;
/// glibc's SIGCANCEL and SIGSETXID: it refuses handlers for them and never blocks them.
const internal_signals: u64 = bit(32) | bit(33);
const signal_count = 64;

/// The checkpoint signal; 0 when the runtime is disabled (the wrappers then only pass on).
var checkpoint_signal: u8 = 0;
/// The action the program believes it set for the checkpoint signal.
var program_action: CAction = std.mem.zeroes(CAction);
/// The program believes this thread blocks the checkpoint signal.
threadlocal var program_blocked: bool = false;
/// A checkpoint signal from someone else arrived while the program blocked it: it is raised
/// again when this thread unblocks it.
threadlocal var program_pending: bool = false;
var warned: std.atomic.Value(bool) = .init(false);

fn bit(signal: u32) u64 {
    assert(signal >= 1 and signal <= signal_count);
    return @as(u64, 1) << @intCast(signal - 1);
}

/// Library constructor, main thread, before our handler goes in: what the process had
/// (inherited across exec, or set by an earlier constructor) becomes the program's action,
/// and an inherited mask that blocks the signal is undone.
pub fn install(signal: u8) void {
    assert(signal > 0 and signal <= signal_count);
    checkpoint_signal = signal;
    const rc = __sigaction(signal, null, &program_action);
    assert(rc == 0);
    const set = bit(signal);
    var old: u64 = 0;
    const set_address = @intFromPtr(&set);
    const unblock = linux.SIG.UNBLOCK;
    const mask_rc = linux.syscall4(.rt_sigprocmask, unblock, set_address, @intFromPtr(&old), 8);
    assert(linux.E.init(mask_rc) == .SUCCESS);
    program_blocked = old & set != 0;
}

fn isCheckpointSignal(signal: c_int) bool {
    return checkpoint_signal != 0 and signal == checkpoint_signal;
}

fn setErrno(errno: linux.E) void {
    assert(errno != .SUCCESS);
    std.c._errno().* = @intFromEnum(errno);
}

export fn sigaction(signal: c_int, action: ?*const CAction, old: ?*CAction) c_int {
    if (!isCheckpointSignal(signal)) return systemAction(signal, action, old);
    const previous = program_action;
    if (action) |new| {
        if (new.handler != sig_dfl) warnOnce();
        program_action = new.*;
    }
    if (old) |out| out.* = previous;
    return 0;
}

/// glibc's `__sigaction`, then the runtime's return trampoline for a handler that has none
/// (signals.zig, `needsRestorer`): set afterwards, since glibc's handling of SA_RESTORER
/// differs (i386's passes the flag on with no trampoline, x86_64's and armv7's put their own
/// in). The program does not see it: `old` comes back as it would have without it.
fn systemAction(signal: c_int, action: ?*const CAction, old: ?*CAction) c_int {
    const valid = signal >= 1 and signal <= signal_count;
    const hidden = valid and signals.restorerGiven(@intCast(signal));
    const rc = __sigaction(signal, action, old);
    if (rc != 0) return rc;
    assert(valid);
    if (old) |out| if (hidden) {
        out.flags &= ~@as(c_int, @intCast(sa_restorer));
        out.restorer = 0;
    };
    if (action != null) signals.giveRestorer(@intCast(signal));
    return 0;
}

const sa_restorer: usize = 0x04000000;

/// glibc's `signal` is BSD's: SA_RESTART, the signal itself blocked while its handler runs.
fn signalWrapper(number: c_int, handler: usize) callconv(.c) usize {
    if (number < 1 or number > signal_count or handler == sig_err or
        internal_signals & bit(@intCast(number)) != 0)
    {
        setErrno(.INVAL);
        return sig_err;
    }
    var action: CAction = .{
        .handler = handler,
        .mask = std.mem.zeroes(CSigset),
        .flags = linux.SA.RESTART,
        .restorer = 0,
    };
    setBits(&action.mask, bit(@intCast(number)));
    var old: CAction = undefined;
    if (sigaction(number, &action, &old) != 0) return sig_err;
    return old.handler;
}

comptime {
    @export(&signalWrapper, .{ .name = "signal" });
    @export(&signalWrapper, .{ .name = "bsd_signal" });
}

fn lowBits(set: *const CSigset) u64 {
    if (@sizeOf(c_ulong) == 8) return set.words[0];
    return @as(u64, set.words[0]) | (@as(u64, set.words[1]) << 32);
}

/// Sets the bits of the kernel's 64 signals; the other words stay as the caller had them.
fn setBits(set: *CSigset, bits: u64) void {
    if (@sizeOf(c_ulong) == 8) {
        set.words[0] = @intCast(bits);
    } else {
        set.words[0] = @truncate(bits);
        set.words[1] = @truncate(bits >> 32);
    }
}

export fn sigprocmask(how: c_int, set: ?*const CSigset, old: ?*CSigset) c_int {
    const errno = changeMask(how, set, old);
    if (errno == .SUCCESS) return 0;
    setErrno(errno);
    return -1;
}

export fn pthread_sigmask(how: c_int, set: ?*const CSigset, old: ?*CSigset) c_int {
    return @intFromEnum(changeMask(how, set, old));
}

fn changeMask(how: c_int, set: ?*const CSigset, old: ?*CSigset) linux.E {
    var wanted: u64 = if (set) |given| lowBits(given) else 0;
    const blocking = how == linux.SIG.BLOCK or how == linux.SIG.SETMASK;
    if (blocking) wanted &= ~internal_signals;
    const was_blocked = program_blocked;
    var now_blocked = was_blocked;
    if (checkpoint_signal != 0 and set != null) {
        const ours = bit(checkpoint_signal);
        const asked = wanted & ours != 0;
        if (blocking and asked) {
            wanted &= ~ours;
            // A set of every signal is "block everything" (threads started quietly, critical
            // sections), not a use of ours: only a narrower set is worth a warning.
            if (!blocksEverything(lowBits(set.?))) warnOnce();
        }
        if (how == linux.SIG.SETMASK) now_blocked = asked;
        if (how == linux.SIG.BLOCK and asked) now_blocked = true;
        if (how == linux.SIG.UNBLOCK and asked) now_blocked = false;
    }
    var previous: u64 = 0;
    const rc = linux.syscall4(
        .rt_sigprocmask,
        @bitCast(@as(isize, how)),
        if (set != null) @intFromPtr(&wanted) else 0,
        @intFromPtr(&previous),
        8,
    );
    const errno = linux.E.init(rc);
    if (errno != .SUCCESS) return errno;
    program_blocked = now_blocked;
    if (old) |out| {
        if (checkpoint_signal != 0 and was_blocked) previous |= bit(checkpoint_signal);
        setBits(out, previous);
    }
    if (!now_blocked and program_pending) {
        program_pending = false;
        _ = linux.tgkill(linux.getpid(), linux.gettid(), checkpoint_signal);
    }
    return .SUCCESS;
}

/// `sighold`, `sigrelse`: one signal blocked or unblocked, through `changeMask`.
fn oneSignal(how: c_int, number: c_int) c_int {
    if (number < 1 or number > signal_count) {
        setErrno(.INVAL);
        return -1;
    }
    var set = std.mem.zeroes(CSigset);
    setBits(&set, bit(@intCast(number)));
    return sigprocmask(how, &set, null);
}

export fn sighold(number: c_int) c_int {
    return oneSignal(linux.SIG.BLOCK, number);
}

export fn sigrelse(number: c_int) c_int {
    return oneSignal(linux.SIG.UNBLOCK, number);
}

export fn sigignore(number: c_int) c_int {
    const action: CAction = .{
        .handler = sig_ign,
        .mask = std.mem.zeroes(CSigset),
        .flags = 0,
        .restorer = 0,
    };
    return sigaction(number, &action, null);
}

/// System V's sigset: SIG_HOLD blocks the signal, anything else sets the handler and
/// unblocks it; either way it answers SIG_HOLD when the signal was blocked before.
export fn sigset(number: c_int, handler: usize) usize {
    if (number < 1 or number > signal_count or handler == sig_err) {
        setErrno(.INVAL);
        return sig_err;
    }
    var old: CAction = undefined;
    var action: CAction = .{
        .handler = handler,
        .mask = std.mem.zeroes(CSigset),
        .flags = 0,
        .restorer = 0,
    };
    const how: c_int = if (handler == sig_hold) linux.SIG.BLOCK else linux.SIG.UNBLOCK;
    if (sigaction(number, if (handler == sig_hold) null else &action, &old) != 0) return sig_err;
    var set = std.mem.zeroes(CSigset);
    setBits(&set, bit(@intCast(number)));
    var old_mask: CSigset = undefined;
    if (sigprocmask(how, &set, &old_mask) != 0) return sig_err;
    if (lowBits(&old_mask) & bit(@intCast(number)) != 0) return sig_hold;
    return old.handler;
}

/// BSD's masks: an int of the first 32 signals, bit n-1 for signal n.
fn bsdMask(how: c_int, mask: c_int) c_int {
    var set = std.mem.zeroes(CSigset);
    setBits(&set, @as(u32, @bitCast(mask)));
    var old: CSigset = undefined;
    if (sigprocmask(how, if (how == linux.SIG.BLOCK and mask == 0) null else &set, &old) != 0) {
        return -1;
    }
    return @bitCast(@as(u32, @truncate(lowBits(&old))));
}

export fn sigblock(mask: c_int) c_int {
    return bsdMask(linux.SIG.BLOCK, mask);
}

export fn sigsetmask(mask: c_int) c_int {
    return bsdMask(linux.SIG.SETMASK, mask);
}

export fn siggetmask() c_int {
    return bsdMask(linux.SIG.BLOCK, 0);
}

/// The mask the thread waits with keeps the checkpoint signal open: a checkpoint must be
/// able to stop a thread that waits for one signal with every other one blocked.
export fn sigsuspend(mask: *const CSigset) c_int {
    var open = mask.*;
    if (checkpoint_signal != 0) setBits(&open, lowBits(mask) & ~bit(checkpoint_signal));
    return __sigsuspend(&open);
}

/// glibc's one sigpause behind both names: the BSD one takes a mask, the XSI one a signal to
/// take out of the current mask.
export fn __sigpause(signal_or_mask: c_int, is_signal: c_int) c_int {
    var mask = std.mem.zeroes(CSigset);
    if (is_signal != 0) {
        if (signal_or_mask < 1 or signal_or_mask > signal_count) {
            setErrno(.INVAL);
            return -1;
        }
        var current: u64 = 0;
        _ = linux.syscall4(.rt_sigprocmask, linux.SIG.BLOCK, 0, @intFromPtr(&current), 8);
        setBits(&mask, current & ~bit(@intCast(signal_or_mask)));
    } else {
        setBits(&mask, @as(u32, @bitCast(signal_or_mask)));
    }
    return sigsuspend(&mask);
}

fn bsdSigpause(mask: c_int) callconv(.c) c_int {
    return __sigpause(mask, 0);
}

fn xsiSigpause(number: c_int) callconv(.c) c_int {
    return __sigpause(number, 1);
}

comptime {
    @export(&bsdSigpause, .{ .name = "sigpause" });
    @export(&xsiSigpause, .{ .name = "__xpg_sigpause" });
}

/// Every signal a thread can block (all but SIGKILL, SIGSTOP and glibc's internal two).
fn blocksEverything(set: u64) bool {
    const unblockable = bit(linux.SIG.KILL) | bit(linux.SIG.STOP) | internal_signals;
    return set | unblockable == std.math.maxInt(u64);
}

/// Our handler, for a checkpoint signal that did not come from the checkpoint thread: what
/// the program asked for. Every signal is blocked here, as in our handler.
pub fn forward(number: i32, info: *const linux.siginfo_t, ucontext: ?*anyopaque) void {
    assert(isCheckpointSignal(number));
    const action = program_action;
    if (action.handler == sig_ign) return;
    if (program_blocked) {
        program_pending = true;
        return;
    }
    if (action.handler == sig_dfl) return defaultAction(@intCast(number));
    const flags: c_uint = @bitCast(action.flags);
    if (flags & linux.SA.RESETHAND != 0) program_action.handler = sig_dfl;
    if (flags & linux.SA.SIGINFO != 0) {
        const Handler = *const fn (c_int, *const linux.siginfo_t, ?*anyopaque) callconv(.c) void;
        const run: Handler = @ptrFromInt(action.handler);
        run(number, info, ucontext);
    } else {
        const Handler = *const fn (c_int) callconv(.c) void;
        const run: Handler = @ptrFromInt(action.handler);
        run(number);
    }
}

/// The kernel's default action, by sending the signal again with SIG_DFL in place and the
/// signal unblocked: the process ends (or stops, or nothing happens) as it would without us;
/// when it goes on, our handler is put back.
fn defaultAction(number: u8) void {
    assert(number == checkpoint_signal);
    const default: signals.KernelAction = .{ .handler = 0, .flags = 0, .restorer = 0, .mask = 0 };
    var ours: signals.KernelAction = undefined;
    const rc = linux.syscall4(.rt_sigaction, number, @intFromPtr(&default), @intFromPtr(&ours), 8);
    if (linux.E.init(rc) != .SUCCESS) return;
    const set = bit(number);
    _ = linux.syscall4(.rt_sigprocmask, linux.SIG.UNBLOCK, @intFromPtr(&set), 0, 8);
    _ = linux.tgkill(linux.getpid(), linux.gettid(), number);
    _ = linux.syscall4(.rt_sigprocmask, linux.SIG.BLOCK, @intFromPtr(&set), 0, 8);
    _ = linux.syscall4(.rt_sigaction, number, @intFromPtr(&ours), 0, 8);
    assert(ours.handler != 0);
}

fn warnOnce() void {
    if (warned.swap(true, .acq_rel)) return;
    if (worker.state.settings.quiet >= 2) return;
    var buffer: [512]u8 = undefined;
    const text = warning(&buffer, worker.state.name_buffer[0..worker.state.name_size]);
    _ = linux.write(2, text.ptr, text.len);
}

fn warning(buffer: []u8, name: []const u8) []const u8 {
    assert(checkpoint_signal != 0);
    var name_buffer: [16]u8 = undefined;
    const format = "dmtcp: {s} uses signal {d} ({s}), which dmtcp needs to checkpoint it; " ++
        "launch it with --ckpt-signal {d} (a signal it does not use)\n";
    const short_name = name[0..@min(name.len, 200)];
    const arguments = .{
        short_name,
        checkpoint_signal,
        signalName(checkpoint_signal, &name_buffer),
        unusedSignal(),
    };
    const text = std.fmt.bufPrint(buffer, format, arguments) catch unreachable;
    assert(text.len > 0 and text[text.len - 1] == '\n');
    return text;
}

const names = [_][]const u8{
    "SIGHUP",  "SIGINT",    "SIGQUIT", "SIGILL",  "SIGTRAP",   "SIGABRT", "SIGBUS",
    "SIGFPE",  "SIGKILL",   "SIGUSR1", "SIGSEGV", "SIGUSR2",   "SIGPIPE", "SIGALRM",
    "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP",   "SIGTSTP", "SIGTTIN",
    "SIGTTOU", "SIGURG",    "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH",
    "SIGIO",   "SIGPWR",    "SIGSYS",
};

/// glibc's real-time signals start at 34 (32 and 33 are its own).
fn signalName(number: u8, buffer: *[16]u8) []const u8 {
    assert(number >= 1 and number <= signal_count);
    if (number <= names.len) return names[number - 1];
    if (number < 34) return std.fmt.bufPrint(buffer, "SIG{d}", .{number}) catch unreachable;
    return std.fmt.bufPrint(buffer, "SIGRTMIN+{d}", .{number - 34}) catch unreachable;
}

/// A suggestion: the highest real-time signal (the launcher takes up to 63) that has its
/// default action now; the program may of course take it later.
fn unusedSignal() u8 {
    var candidate: u8 = 63;
    while (candidate >= 34) : (candidate -= 1) {
        if (candidate == checkpoint_signal) continue;
        var action: signals.KernelAction = undefined;
        const rc = linux.syscall4(.rt_sigaction, candidate, 0, @intFromPtr(&action), 8);
        if (linux.E.init(rc) == .SUCCESS and action.handler == sig_dfl) return candidate;
    }
    return 40;
}

test "signal_wrappers: the warning names the program, the signal and a free one" {
    checkpoint_signal = linux.SIG.USR2;
    defer checkpoint_signal = 0;
    var buffer: [512]u8 = undefined;
    const text = warning(&buffer, "prog");
    try std.testing.expect(std.mem.startsWith(u8, text, "dmtcp: prog uses signal 12 (SIGUSR2), "));
    try std.testing.expect(std.mem.indexOf(u8, text, "--ckpt-signal 63 ") != null);
    var name: [16]u8 = undefined;
    try std.testing.expectEqualStrings("SIGRTMIN+6", signalName(40, &name));
}

test "signal_wrappers: blocking the checkpoint signal is remembered, not done" {
    checkpoint_signal = linux.SIG.USR2;
    defer checkpoint_signal = 0;
    warned.store(true, .release); // No line on the test's stderr.
    var set = std.mem.zeroes(CSigset);
    setBits(&set, bit(linux.SIG.USR2) | bit(linux.SIG.WINCH));
    var old: CSigset = undefined;
    try std.testing.expectEqual(@as(c_int, 0), pthread_sigmask(linux.SIG.BLOCK, &set, &old));
    try std.testing.expect(program_blocked);
    var kernel: u64 = 0;
    _ = linux.syscall4(.rt_sigprocmask, linux.SIG.BLOCK, 0, @intFromPtr(&kernel), 8);
    try std.testing.expectEqual(bit(linux.SIG.WINCH), kernel & (bit(12) | bit(28)));
    try std.testing.expectEqual(@as(c_int, 0), pthread_sigmask(linux.SIG.UNBLOCK, &set, &old));
    try std.testing.expect(lowBits(&old) & bit(linux.SIG.USR2) != 0);
    try std.testing.expect(!program_blocked);
}
