//! This process as a worker of its computation: its identity, its coordinator connection, and
//! the checkpoint thread that waits on that connection. The thread is a raw clone, not a
//! pthread: it is invisible to the program's pthread bookkeeping, blocks every signal (so the
//! program's handlers never run on it) and calls no libc (it shares the creating thread's TLS,
//! so libc's per-thread state must stay untouched).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const protocol = @import("format").protocol;
const environment = @import("environment.zig");
const connection = @import("connection.zig");
const checkpoint = @import("checkpoint.zig");
const threads = @import("threads.zig");
const spares = @import("spares.zig");

pub const Worker = struct {
    settings: environment.Settings = .{},
    /// The coordinator connection; -1 until connected, and again once it is lost.
    fd: i32 = -1,
    worker_id: u32 = 0,
    /// From the coordinator's accept and checkpoint messages; recorded in images.
    computation_id: u64 = 0,
    generation: u32 = 0,
    /// Workers in the computation at the last checkpoint (barrier `checkpointed`).
    peer_count: u32 = 0,
    pid: i32 = 0,
    name_buffer: [limits.name_size_max]u8 = undefined,
    name_size: usize = 0,
    host_buffer: [65]u8 = undefined,
    host_size: usize = 0,
    /// The checkpoint thread's stack: saved from a snapshot, since it changes as it is written.
    stack_start: usize = 0,
    stack_end: usize = 0,
    /// Set once the coordinator is gone: children then run without registering.
    lost: std.atomic.Value(bool) = .init(false),

    pub fn identity(self: *const Worker) connection.Identity {
        return .{
            .name = self.name_buffer[0..self.name_size],
            .host = self.host_buffer[0..self.host_size],
            .real_pid = self.pid,
        };
    }
};

pub var state: Worker = .{};

/// Called once in the library constructor, on the program's main thread.
pub fn init(settings: environment.Settings, argv0: ?[*:0]const u8) void {
    assert(settings.enabled);
    state.settings = settings;
    state.pid = linux.getpid();
    setName(if (argv0) |text| std.mem.span(text) else "unknown");
    setHost();
    if (settings.inherited_fd >= 0) {
        if (settings.inherited_fd_pid == state.pid and isSocket(settings.inherited_fd)) {
            // The launcher's connection, or ours from before exec: same process, same worker.
            state.fd = settings.inherited_fd;
            state.worker_id = settings.inherited_worker_id;
        } else if (isSocket(settings.inherited_fd)) {
            // Another process's connection reached us through a spawn: not ours to use.
            _ = linux.close(settings.inherited_fd);
        }
    }
    startThread();
}

fn setName(argv0: []const u8) void {
    const base = std.fs.path.basename(argv0);
    state.name_size = @min(base.len, state.name_buffer.len);
    @memcpy(state.name_buffer[0..state.name_size], base[0..state.name_size]);
}

fn setHost() void {
    var uts: linux.utsname = undefined;
    if (linux.E.init(linux.uname(&uts)) != .SUCCESS) {
        state.host_size = 0;
        return;
    }
    const node = std.mem.sliceTo(&uts.nodename, 0);
    state.host_size = @min(node.len, state.host_buffer.len);
    @memcpy(state.host_buffer[0..state.host_size], node[0..state.host_size]);
}

/// True when fd is an open socket (a coordinator connection handed to us, not a reused number).
pub fn isSocket(fd: i32) bool {
    var stat: linux.Stat = undefined;
    if (linux.E.init(linux.fstat(fd, &stat)) != .SUCCESS) return false;
    return linux.S.ISSOCK(stat.mode);
}

/// Makes `fd` this process's connection and records it in the environment, so a program this
/// process execs keeps the same connection (and so the same worker) across exec.
pub fn adopt(fd: i32) void {
    assert(fd >= 0);
    state.fd = fd;
    // Kept across exec on purpose: the exec'd program continues as this worker.
    _ = linux.fcntl(fd, linux.F.SETFD, 0);
    if (state.settings.fd_value) |slot| environment.writeFd(slot, fd, state.pid, state.worker_id);
}

pub fn startThread() void {
    const stack_rc = linux.mmap(
        null,
        limits.thread_stack_size,
        linux.PROT.READ | linux.PROT.WRITE,
        .{ .TYPE = .PRIVATE, .ANONYMOUS = true, .STACK = true, .NORESERVE = true },
        -1,
        0,
    );
    if (linux.E.init(stack_rc) != .SUCCESS) return;
    const stack_top = stack_rc + limits.thread_stack_size;
    state.stack_start = stack_rc;
    state.stack_end = stack_top;
    const flags = linux.CLONE.VM | linux.CLONE.FS | linux.CLONE.FILES | linux.CLONE.SIGHAND |
        linux.CLONE.THREAD | linux.CLONE.SYSVSEM;
    // The thread starts with every signal blocked: it inherits this mask.
    const all = linux.sigfillset();
    var old: linux.sigset_t = undefined;
    _ = linux.sigprocmask(linux.SIG.SETMASK, &all, &old);
    const rc = linux.clone(threadMain, stack_top, flags, 0, null, 0, null);
    _ = linux.sigprocmask(linux.SIG.SETMASK, &old, null);
    if (linux.E.init(rc) != .SUCCESS) {
        _ = linux.munmap(@ptrFromInt(stack_rc), limits.thread_stack_size);
    }
}

fn threadMain(_: usize) callconv(.c) u8 {
    threads.nameCheckpointThread();
    if (state.fd < 0) {
        const registered = register() catch {
            state.lost.store(true, .release);
            return 0;
        };
        state.worker_id = registered.worker_id;
        state.computation_id = registered.computation_id;
        adopt(registered.fd);
    } else {
        announce() catch return lose();
    }
    spares.start();
    serve() catch {};
    return lose();
}

pub const Registered = struct { fd: i32, worker_id: u32, computation_id: u64 };

/// Opens a new connection and registers a new worker of the computation: this process, or
/// (called from fork's prepare hook) the child about to be born. Changes no state: the
/// caller decides whose identity the answer is.
pub fn register() connection.Error!Registered {
    const fd = try connection.connect(state.settings.address, state.settings.port);
    errdefer _ = linux.close(fd);
    const accepted = try connection.hello(
        fd,
        &state.settings.token,
        state.identity(),
        state.settings.interval_s,
    );
    return .{
        .fd = fd,
        .worker_id = accepted.worker_id,
        .computation_id = accepted.computation_id,
    };
}

/// Tells the coordinator who holds the connection now: the program after exec, or a child.
pub fn announce() connection.Error!void {
    var payload_buffer: [2 * limits.name_size_max + 2]u8 = undefined;
    const payload = connection.namePayload(&payload_buffer, state.identity());
    var header: protocol.Header = .{
        .kind = @intFromEnum(protocol.Kind.worker_info),
        .real_pid = @intCast(state.pid),
        .state = @intFromEnum(protocol.WorkerState.running),
        .arch = @intFromEnum(protocol.Arch.current()),
    };
    try connection.send(state.fd, &header, payload);
}

/// The checkpoint thread's loop: idle in the kernel until the coordinator speaks or fork
/// asks for another spare connection.
fn serve() connection.Error!void {
    var count: usize = 0;
    while (count < limits.message_count_max) : (count += 1) {
        refillSpares();
        if (!try waitMessage()) continue;
        var header: protocol.Header = undefined;
        var payload: [limits.path_size_max]u8 = undefined;
        _ = try connection.receive(state.fd, &header, &payload);
        switch (protocol.kindOf(&header)) {
            .kill => linux.exit_group(0),
            .accept => state.worker_id = header.worker_id,
            .checkpoint => {
                try checkpoint.run(&header);
                spares.want();
            },
            // Anything else is out of place between checkpoints: ignored.
            else => {},
        }
    }
}

pub fn refillSpares() void {
    if (state.worker_id == 0) return;
    const settings = &state.settings;
    const identity = state.identity();
    spares.refill(settings.address, settings.port, &settings.token, identity, state.worker_id);
}

/// True when the coordinator connection has a message; false when fork woke us.
fn waitMessage() connection.Error!bool {
    var pollfds = [2]linux.pollfd{
        .{ .fd = state.fd, .events = linux.POLL.IN, .revents = 0 },
        .{ .fd = spares.wake_fd, .events = linux.POLL.IN, .revents = 0 },
    };
    const count: usize = if (spares.wake_fd >= 0) 2 else 1;
    const rc = linux.ppoll(&pollfds, count, null, null);
    switch (linux.E.init(rc)) {
        .SUCCESS => {},
        .INTR => return false,
        else => return error.Io,
    }
    if (count == 2 and pollfds[1].revents != 0) spares.drainWake();
    return pollfds[0].revents != 0;
}

/// The coordinator is gone: the program runs on, unmanaged, and so will its children.
fn lose() u8 {
    state.lost.store(true, .release);
    if (state.fd >= 0) _ = linux.close(state.fd);
    state.fd = -1;
    return 0;
}
