//! Children that had exited and were not waited for (tree.zig, step 3): each image lists its
//! own with their wait status; each comes back as a child of its restored parent that exits
//! at once the way it did, and nobody waits for it but the program. Their entries follow the
//! images' in the pid map.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const fail = @import("fail.zig").fail;
const pid_map = @import("pid_map.zig");

const Zombie = struct { owner: u32, zombie: image.Zombie };

var zombies: [limits.processes_max]Zombie = undefined;
pub var count: usize = 0;

/// Step 0: the zombies image `owner` lists after its process_tree record.
pub fn plan(owner: usize, list: []const u8, zombie_count: u32) void {
    const size = @sizeOf(image.Zombie);
    if (list.len < zombie_count * size) fail("corrupt image: short zombie list");
    for (0..zombie_count) |index| {
        if (count == zombies.len) fail("too many zombies in the images");
        const bytes = list[index * size ..][0..size];
        const zombie = std.mem.bytesToValue(image.Zombie, bytes);
        zombies[count] = .{ .owner = @intCast(owner), .zombie = zombie };
        count += 1;
    }
}

/// Step 3, in the process of image `current`: forks its zombies, each noted in the pid map
/// from `first_slot` on (after the images' entries).
pub fn fork(current: usize, first_slot: usize) void {
    for (zombies[0..count], 0..) |entry, index| {
        if (entry.owner != current) continue;
        const rc = linux.fork();
        if (linux.E.init(rc) != .SUCCESS) fail("cannot fork a zombie of the tree");
        const pid: i32 = @intCast(rc);
        if (pid == 0) die(entry.zombie.wait_status);
        pid_map.write(first_slot + index, entry.zombie.virtual_pid, pid);
    }
}

/// Ends the way the zombie did: an exit code, or a signal (without a core dump).
fn die(status: u32) noreturn {
    const signal = status & 0x7f;
    if (signal == 0) linux.exit_group(@intCast((status >> 8) & 0xff));
    const no_core = linux.rlimit{ .cur = 0, .max = 0 };
    _ = linux.setrlimit(.CORE, &no_core);
    var mask = linux.sigemptyset();
    linux.sigaddset(&mask, @intCast(signal));
    _ = linux.sigprocmask(linux.SIG.UNBLOCK, &mask, null);
    _ = linux.kill(linux.getpid(), @intCast(signal));
    linux.exit_group(128 + @as(i32, @intCast(signal)));
}
