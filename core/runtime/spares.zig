//! Spare connections: coordinator connections this process registers ahead of time, one per
//! child it may fork, so that fork hands a child its registration without a round trip.
//!
//! The checkpoint thread opens each spare in the background (`refill`: hello_worker with
//! `flags.spare` and this worker's id as owner) and parks it in `pool`. fork's prepare hook
//! takes one (`take`: one atomic swap), the child adopts it and announces itself on it
//! (worker_info), and the parent's hook wakes the checkpoint thread (`wake`) to open another.
//! The coordinator counts an unannounced spare for `--exit-on-last` (so a parent that exits
//! right after fork cannot end the computation before its child speaks) but not as a peer.
//! At barrier `suspended` each worker lists the spares it still holds (`heldPayload`); the
//! coordinator waits for every other spare (taken by a child) to be announced or closed, so
//! a checkpoint includes every child. fork blocks the checkpoint signal from prepare to the
//! parent hook, so a thread is never suspended between taking a spare and forking.
//!
//! When the pool is empty (a burst of forks faster than the coordinator answers), fork falls
//! back to registering the child over a new connection inside prepare (fork.zig).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const protocol = @import("format").protocol;
const connection = @import("connection.zig");

pub const Spare = struct { fd: i32, worker_id: u32 };

/// Each slot holds fd + 1, 0 when empty (32-bit atomics: i386 and armv7 have no 64-bit
/// ones); `worker_ids` holds the spare's id, written before the slot is published. Only
/// the checkpoint thread fills an empty slot; fork's prepare hook (under fork's lock)
/// empties a full one, so a slot's id cannot change while it is full.
var pool: [limits.spare_count_max]std.atomic.Value(u32) =
    [_]std.atomic.Value(u32){.init(0)} ** limits.spare_count_max;
var worker_ids: [limits.spare_count_max]u32 = [_]u32{0} ** limits.spare_count_max;
/// An eventfd the parent's fork hook writes to; the checkpoint thread polls it.
pub var wake_fd: i32 = -1;
/// Spares being opened right now: a child forked meanwhile closes its copies.
var opening_fds: [limits.spare_count_max]std.atomic.Value(i32) =
    [_]std.atomic.Value(i32){.init(-1)} ** limits.spare_count_max;
var opening_count: std.atomic.Value(usize) = .init(0);
/// How many spares to keep: one in a program started by launch or exec, none in a forked
/// child (whose short life, often, would only pay for it), and the pool's size once the
/// process has forked.
var target: std.atomic.Value(usize) = .init(1);
/// F_DUPFD_CLOEXEC (include/uapi/linux/fcntl.h), missing from std on some targets.
const f_dupfd_cloexec = 1030;
/// False after a refused or failed attempt, until the next wake or checkpoint.
var wanted: bool = true;

fn slotFd(value: u32) i32 {
    assert(value != 0);
    return @as(i32, @intCast(value)) - 1;
}

/// fork's prepare hook: a spare for the child, or null when the pool is empty.
pub fn take() ?Spare {
    target.store(pool.len, .release);
    for (&pool, 0..) |*slot, index| {
        const value = slot.load(.acquire);
        if (value == 0) continue;
        const worker_id = worker_ids[index];
        assert(slot.swap(0, .acq_rel) == value);
        assert(worker_id != 0);
        const fd = slotFd(value);
        // The child's now, though the refill that opened it may still list it as opening.
        for (&opening_fds) |*each| _ = each.cmpxchgStrong(fd, -1, .acq_rel, .acquire);
        return .{ .fd = fd, .worker_id = worker_id };
    }
    return null;
}

/// Publishes a spare in an empty slot, or closes it when none is left.
fn put(spare: Spare) void {
    assert(spare.fd >= 0);
    for (&pool, 0..) |*slot, index| {
        if (slot.load(.acquire) != 0) continue;
        worker_ids[index] = spare.worker_id;
        slot.store(@intCast(spare.fd + 1), .release);
        return;
    }
    _ = linux.close(spare.fd);
}

/// The parent after fork: the child holds the spare now; ask for another.
pub fn wake() void {
    if (wake_fd < 0) return;
    const one: u64 = 1;
    _ = linux.write(wake_fd, std.mem.asBytes(&one), 8);
}

/// The checkpoint thread, once it has its connection: the eventfd fork wakes it through.
pub fn start() void {
    if (wake_fd >= 0) return;
    const rc = linux.eventfd(0, linux.EFD.CLOEXEC | linux.EFD.NONBLOCK);
    if (linux.E.init(rc) != .SUCCESS) return;
    wake_fd = lift(@intCast(rc));
    wanted = true;
}

/// Opens spares until the pool holds `target` of them: every hello is sent before any
/// answer is awaited, so that refilling a drained pool costs one round trip. Stops at the
/// first failure (the coordinator refuses new workers during a checkpoint) until `want`.
pub fn refill(
    address: [4]u8,
    port: u16,
    token: *const [protocol.token_size]u8,
    identity: connection.Identity,
    owner_worker_id: u32,
) void {
    assert(owner_worker_id != 0);
    if (!wanted or wake_fd < 0) return;
    var held: usize = 0;
    for (&pool) |*slot| held += @intFromBool(slot.load(.acquire) != 0);
    const missing = target.load(.acquire) -| held;
    if (missing == 0) return;
    opening_count.store(0, .release);
    var opening: [limits.spare_count_max]i32 = undefined;
    var count: usize = 0;
    while (count < missing) : (count += 1) {
        opening[count] = open(address, port, token, identity, owner_worker_id) catch break;
    }
    for (opening[0..count], 0..) |fd, index| {
        const accepted = connection.awaitAccept(fd) catch {
            // No longer ours once closed: a child forked later must not close the number.
            opening_fds[index].store(-1, .release);
            _ = linux.close(fd);
            wanted = false;
            continue;
        };
        put(.{ .fd = fd, .worker_id = accepted.worker_id });
    }
    opening_count.store(0, .release);
    if (count < missing) wanted = false;
}

/// Connects and sends the spare's hello; the answer is read later (`awaitAccept`).
fn open(
    address: [4]u8,
    port: u16,
    token: *const [protocol.token_size]u8,
    identity: connection.Identity,
    owner_worker_id: u32,
) connection.Error!i32 {
    const fd = lift(try connection.connect(address, port));
    errdefer _ = linux.close(fd);
    try connection.sendHelloSpare(fd, token, identity, owner_worker_id);
    const index = opening_count.load(.acquire);
    assert(index < opening_fds.len);
    opening_fds[index].store(fd, .release);
    opening_count.store(index + 1, .release);
    return fd;
}

/// Try again at the next `refill` (after a wake, a checkpoint or a restart).
pub fn want() void {
    wanted = true;
}

/// Drains the wake eventfd after poll reported it readable.
pub fn drainWake() void {
    var count: u64 = 0;
    _ = linux.read(wake_fd, std.mem.asBytes(&count), 8);
    wanted = true;
}

/// The child after fork: the parent's spares and eventfd are the parent's; close the copies,
/// all but `keep`, the child's own registration. A spare that prepare took from the pool may
/// still be listed as opening (the checkpoint thread clears that list only once its refill
/// ends), and the fallback registration may reuse the number of a failed spare still listed.
pub fn closeInChild(keep: i32) void {
    const opening = @min(opening_count.swap(0, .acq_rel), opening_fds.len);
    for (opening_fds[0..opening]) |*fd| {
        const value = fd.swap(-1, .acq_rel);
        if (value >= 0 and value != keep and !inPool(value)) _ = linux.close(value);
    }
    for (&pool) |*slot| {
        const value = slot.swap(0, .acq_rel);
        if (value != 0 and slotFd(value) != keep) _ = linux.close(slotFd(value));
    }
    if (wake_fd >= 0) _ = linux.close(wake_fd);
    wake_fd = -1;
    target.store(0, .release);
    wanted = true;
}

/// A restarted process: the numbers in the restored pool name nothing of ours any more.
pub fn forgetAfterRestart() void {
    for (&pool) |*slot| slot.store(0, .release);
    opening_count.store(0, .release);
    wake_fd = -1;
    wanted = true;
}

/// True for a descriptor of ours that an image must not record.
pub fn isOwn(fd: i32) bool {
    if (fd < 0) return false;
    if (fd == wake_fd) return true;
    const opening = @min(opening_count.load(.acquire), opening_fds.len);
    for (opening_fds[0..opening]) |*each| if (each.load(.acquire) == fd) return true;
    return inPool(fd);
}

fn inPool(fd: i32) bool {
    for (&pool) |*slot| {
        const value = slot.load(.acquire);
        if (value != 0 and slotFd(value) == fd) return true;
    }
    return false;
}

/// The ids of the spares this process holds, as the barrier `suspended` payload:
/// "<id>\x00" each, in decimal.
pub fn heldPayload(buffer: *[limits.spare_count_max * 11]u8) []const u8 {
    var size: usize = 0;
    for (&pool, 0..) |*slot, index| {
        if (slot.load(.acquire) == 0) continue;
        const text = std.fmt.bufPrint(buffer[size..], "{d}\x00", .{worker_ids[index]}) catch
            unreachable;
        size += text.len;
    }
    assert(size <= buffer.len);
    return buffer[0..size];
}

/// Moves our descriptor well above the program's usual numbers, so that a program that
/// dup2()s onto a low number does not silently take a spare's place.
fn lift(fd: i32) i32 {
    assert(fd >= 0);
    if (fd >= limits.spare_fd_base_min) return fd;
    const rc = linux.fcntl(fd, f_dupfd_cloexec, limits.spare_fd_base_min);
    if (linux.E.init(rc) != .SUCCESS) return fd;
    _ = linux.close(fd);
    return @intCast(rc);
}

test "spares: a spare put in the pool is listed, owned, and taken once" {
    put(.{ .fd = 7, .worker_id = 42000 });
    var buffer: [limits.spare_count_max * 11]u8 = undefined;
    try std.testing.expectEqualStrings("42000\x00", heldPayload(&buffer));
    try std.testing.expect(isOwn(7));
    const spare = take().?;
    try std.testing.expectEqual(@as(i32, 7), spare.fd);
    try std.testing.expectEqual(@as(u32, 42000), spare.worker_id);
    try std.testing.expect(take() == null);
    try std.testing.expect(!isOwn(7));
}
