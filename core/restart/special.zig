//! Step 3 (second half): the kernel's special mappings. The restored program's C library
//! keeps pointers into the vDSO it started with, and the vDSO code finds its data ([vvar],
//! [vvar_vclock]) at fixed distances from itself. So the running kernel's copies are moved
//! with mremap to where the image had them, which keeps every pointer valid; this needs the
//! same sizes and the same distances (the same kernel build, or one with the same layout).
//! `compatible` checks that before anything is touched; moving goes through a parking area
//! in our hole so that a current mapping never lands on another one still to move.
//! A different layout (another kernel) would need jump trampolines at the old entry points,
//! as CRIU builds; not done yet, so such an image is refused with an explanation.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const state = @import("state.zig");
const fail = @import("fail.zig").fail;

pub fn compatible() void {
    var anchor_old: ?u64 = null;
    var anchor_now: ?u64 = null;
    for (state.special_old, state.special_now) |maybe_old, maybe_now| {
        const old = maybe_old orelse continue;
        const now = maybe_now orelse fail("this kernel lacks a vDSO mapping the image had");
        if (old.end - old.start != now.end - now.start) {
            fail("this kernel's vDSO differs from the checkpointing kernel's (sizes)");
        }
        if (anchor_old) |first_old| {
            if (old.start -% first_old != now.start -% anchor_now.?) {
                fail("this kernel's vDSO differs from the checkpointing kernel's (layout)");
            }
        } else {
            anchor_old = old.start;
            anchor_now = now.start;
        }
    }
}

/// Moves the special mappings to where the image had them. Ones the image did not have stay
/// where they are (they overlap no region: the hole search avoided them... or, if they do,
/// the region mapping fails with a clear message).
pub fn move() void {
    var parking = state.special_parking;
    var parked: [state.special_count]usize = .{ 0, 0, 0 };
    for (state.special_old, state.special_now, 0..) |maybe_old, maybe_now, index| {
        if (maybe_old == null) continue;
        const now = maybe_now.?;
        const size: usize = @intCast(now.end - now.start);
        remap(@intCast(now.start), size, parking);
        parked[index] = parking;
        parking += size;
    }
    for (state.special_old, 0..) |maybe_old, index| {
        const old = maybe_old orelse continue;
        remap(parked[index], @intCast(old.end - old.start), @intCast(old.start));
    }
}

fn remap(from: usize, size: usize, to: usize) void {
    assert(size > 0);
    if (from == to) return;
    const rc = linux.mremap(@ptrFromInt(from), size, size, .{ .MAYMOVE = true, .FIXED = true }, @ptrFromInt(to));
    if (linux.E.init(rc) != .SUCCESS or rc != to) fail("cannot move the vDSO to its old address");
}
