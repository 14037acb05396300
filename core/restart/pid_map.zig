//! The pid map (tree.zig, steps 2 and 3): one memfd that every process of the restarted tree
//! shares, with one (virtual pid, new kernel pid) pair per image and then per zombie, in that
//! order. Each pair is written right after the fork that makes its process, by the parent
//! (and by the child itself, whichever runs first); a child joining its group reads the
//! leader's new pid from it. The restored runtime reads the whole map once every process has
//! rejoined (pids.zig) and closes it.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const fail = @import("fail.zig").fail;

/// Handed to the runtime in RestartInfo (and across a handover's exec).
pub var fd: i32 = -1;
pub var count: u32 = 0;

/// Step 2: an empty map of `entry_count` pairs.
pub fn create(entry_count: usize) void {
    assert(fd < 0);
    count = @intCast(entry_count);
    const rc = linux.memfd_create("dmtcp-pids", 0);
    if (linux.E.init(rc) != .SUCCESS) fail("cannot create the pid map (memfd_create)");
    fd = @intCast(rc);
    _ = linux.ftruncate(fd, count * pair_size);
}

const pair_size = 8;

pub fn write(slot: usize, virtual: u32, pid: i32) void {
    assert(slot < count);
    assert(pid > 0);
    const pair = [2]u32{ virtual, @intCast(pid) };
    _ = linux.pwrite(fd, std.mem.asBytes(&pair), pair_size, @intCast(slot * pair_size));
}

/// The new kernel pid in `slot`; 0 while nobody has written it.
pub fn read(slot: usize) i32 {
    assert(slot < count);
    var pair = [2]u32{ 0, 0 };
    _ = linux.pread(fd, std.mem.asBytes(&pair), pair_size, @intCast(slot * pair_size));
    return @intCast(pair[1]);
}
