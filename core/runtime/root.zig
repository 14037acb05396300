//! libdmtcp.so, preloaded into every process of a computation. The constructor reads the
//! launcher's settings, starts the checkpoint thread and returns: the program starts at once.
//! Exports: the constructor (hidden, in .init_array) and the public C API below.
const std = @import("std");
const environment = @import("environment.zig");
const worker = @import("worker.zig");
const fork = @import("fork.zig");
const threads = @import("threads.zig");
const memory = @import("memory.zig");
const emulator = @import("emulator.zig");
const proc_paths = @import("proc_paths.zig");
const pids = @import("pids.zig");
const arch = @import("arch").current;

const InitFn = *const fn (c_int, [*]?[*:0]u8, [*:null]?[*:0]u8) callconv(.c) void;
const init_entry: InitFn linksection(".init_array") = &init;

comptime {
    // Exported hidden only so the linker keeps it; it stays out of the dynamic symbol table.
    @export(&init_entry, .{ .name = "dmtcp_init_array_entry", .visibility = .hidden });
}

/// glibc calls .init_array entries with (argc, argv, envp).
fn init(argc: c_int, argv: [*]?[*:0]u8, envp: [*:null]?[*:0]u8) callconv(.c) void {
    // The /proc path wrappers work with the runtime disabled too: they call glibc on.
    proc_paths.resolveAll();
    const settings = environment.parse(envp);
    if (!settings.enabled) return;
    if (arch.supported) {
        // Before the checkpoint thread exists: a checkpoint may come at once.
        threads.install(settings.checkpoint_signal);
        @import("signals.zig").giveRestorers();
        memory.reserve();
        emulator.noteForeignThreads();
    }
    worker.init(settings, if (argc > 0) argv[0] else null);
    pids.inheritMap(&settings);
    fork.install();
}

/// DMTCP's API: 1 when the program runs under dmtcp, 0 otherwise.
export fn dmtcp_is_enabled() c_int {
    return @intFromBool(worker.state.settings.enabled);
}

test {
    _ = environment;
    _ = @import("connection.zig");
    _ = @import("proc.zig");
    _ = @import("image_writer.zig");
    _ = @import("kinds.zig");
    _ = @import("checkpoint.zig");
    _ = @import("restart.zig");
    _ = threads;
    _ = @import("thread_state.zig");
    _ = @import("interrupted_calls.zig");
    _ = @import("interrupted_waits.zig");
    _ = memory;
    _ = emulator;
    _ = @import("files.zig");
    _ = @import("process.zig");
    _ = @import("signals.zig");
    _ = @import("pids.zig");
    _ = @import("thread_ids.zig");
    _ = proc_paths;
    _ = @import("pipes.zig");
    _ = @import("sockets.zig");
    _ = @import("inherited.zig");
    _ = @import("descriptions.zig");
    _ = @import("terminal.zig");
    _ = @import("ptys.zig");
    _ = @import("events.zig");
    _ = @import("epoll.zig");
    _ = @import("pending_signals.zig");
    _ = @import("timers.zig");
    _ = @import("timer_threads.zig");
    _ = @import("signal_wrappers.zig");
    _ = @import("spares.zig");
}

/// A broken invariant in our code: say where, on stderr, and end the process with DMTCP's
/// failure code (as DMTCP's failed ASSERT does). No stack walk: that would pull libc's
/// unwinder and malloc into a library that must not use them.
pub const panic = std.debug.FullPanic(fatal);

fn fatal(message: []const u8, _: ?usize) noreturn {
    const linux = std.os.linux;
    const prefix = "dmtcp: internal error: ";
    _ = linux.write(2, prefix, prefix.len);
    _ = linux.write(2, message.ptr, message.len);
    _ = linux.write(2, "\n", 1);
    linux.exit_group(99);
}
