//! Open file descriptions several descriptors shared (tree.zig, step 2): each is opened once,
//! in this process, before the tree is forked, at its shared offset; every process inherits
//! it and keeps it if one of its descriptors names it (`keepOwn`); the runtime puts it at
//! those numbers (core/runtime/descriptions.zig), so that they share one offset again.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const tree = @import("tree.zig");
const fail = @import("fail.zig").fail;

const Plan = struct { key: u64, fd: i32 };
const Use = struct { target: u16, plan: u16 };

var plans: [limits.descriptions_max]Plan = undefined;
var plan_count: usize = 0;
var use_list: [limits.descriptions_max * 4]Use = undefined;
var use_count: usize = 0;
var name: [limits.path_size_max + 1]u8 = undefined;

/// One `file_description` record of image `target`: the first one of a description opens it.
pub fn plan(target: usize, body: []const u8) void {
    const size = @sizeOf(image.FileDescription);
    const description = std.mem.bytesToValue(image.FileDescription, body[0..size]);
    tree.noteFd(description.fd);
    const key = image.descriptionKey(description.owner_pid, description.owner_fd);
    const index = find(key) orelse open(key, description, body[size..][0..description.path_size]);
    const found = index orelse return;
    if (use_count == use_list.len) fail("too many shared file descriptors in the images");
    use_list[use_count] = .{ .target = @intCast(target), .plan = @intCast(found) };
    use_count += 1;
}

fn find(key: u64) ??usize {
    for (plans[0..plan_count], 0..) |entry, index| {
        if (entry.key == key) return @as(?usize, index);
    }
    return null;
}

/// Opens the file as it was opened (never creating or truncating it) at the shared offset;
/// null when it cannot be (each holder then keeps the copy the runtime opened itself).
fn open(key: u64, description: image.FileDescription, path: []const u8) ?usize {
    if (plan_count == plans.len) fail("too many shared file descriptions in the images");
    if (path.len >= name.len) return null;
    @memcpy(name[0..path.len], path);
    name[path.len] = 0;
    const never: u32 = @bitCast(linux.O{ .CREAT = true, .TRUNC = true, .EXCL = true });
    const flags: linux.O = @bitCast(description.open_flags & ~never);
    const rc = linux.openat(linux.AT.FDCWD, @ptrCast(&name), flags, 0);
    plans[plan_count] = .{ .key = key, .fd = -1 };
    plan_count += 1;
    if (linux.E.init(rc) != .SUCCESS) return plan_count - 1;
    const fd: i32 = @intCast(rc);
    const offset: i64 = @bitCast(description.offset);
    if (@sizeOf(usize) == 8) {
        _ = linux.lseek(fd, offset, linux.SEEK.SET);
    } else {
        var result: u64 = 0;
        const high: usize = @truncate(description.offset >> 32);
        const low: usize = @truncate(description.offset);
        const number: usize = @bitCast(@as(isize, fd));
        _ = linux.syscall5(.llseek, number, high, low, @intFromPtr(&result), linux.SEEK.SET);
    }
    plans[plan_count - 1].fd = fd;
    return plan_count - 1;
}

/// Moves every description above the images' numbers (known once every image is read).
pub fn create() void {
    for (plans[0..plan_count]) |*entry| {
        if (entry.fd >= 0) entry.fd = tree.lift(entry.fd);
    }
}

/// Step 4: close the descriptions this process does not hold; hand down the ones it does.
pub fn keepOwn(current: usize) void {
    for (plans[0..plan_count], 0..) |entry, index| {
        if (entry.fd < 0) continue;
        if (!uses(current, index)) {
            _ = linux.close(entry.fd);
            continue;
        }
        tree.handDown(entry.key, entry.fd, entry.fd);
    }
    assert(plan_count <= plans.len);
}

fn uses(target: usize, index: usize) bool {
    for (use_list[0..use_count]) |use| {
        if (use.target == target and use.plan == index) return true;
    }
    return false;
}
