//! mtcp_restart IMAGE...: the static, libc-free, position-independent program that turns itself
//! into the checkpointed process. `dmtcp restart` execs it with the coordinator connection
//! (DMTCP_COORD_FD, or DMTCP_COORD_ADDR/PORT/TOKEN) and DMTCP_CHECKPOINT_DIR in its
//! environment; run directly with none of them, the restored program runs unmanaged.
//!
//! Steps, in this order:
//!  0. With several images (or one): fork the process tree, so that each process restores
//!     one image, sharing the pipes and memory it shared (tree.zig). A process whose image
//!     is of the other word size execs that size's mtcp_restart, which takes over from here
//!     with the descriptors prepared for it (handover.zig).
//!  1. Open and check the whole image (header, every checksum, sizes) and collect where its
//!     regions go: nothing is touched before we know the image is good.
//!  2. Keep our DMTCP_* variables (values, in static memory), then move ourselves into a
//!     hole that overlaps no region of the image and none of our mappings, with a new stack
//!     there (relocate.zig): ASLR may have loaded us exactly where the program's memory goes.
//!  3. From the copy: unmap everything of our old self (text, data, stack), then move the
//!     kernel's vDSO and vvar to where the image had them (special.zig), since the program
//!     keeps pointers into them. Checked for compatibility in step 1, before anything moved.
//!  4. Map every region back and fill its stored pages (regions.zig).
//!  5. Set the main thread's thread pointer and jump to the restored runtime's restart entry
//!     with a RestartInfo (the image descriptor, our environment, our own address range).
//!     The runtime restores descriptors, working directory and umask from the image's
//!     records itself (one file per kind of object), re-creates its threads, and unmaps us
//!     once no thread runs on our stack.
//! Any failure: one line on stderr and exit code 99 (fail.zig); there is no other way out.
const std = @import("std");
const linux = std.os.linux;
const arch = @import("arch").current;
const limits = @import("limits");
const image = @import("format").image;
const state = @import("state.zig");
const check = @import("check.zig");
const relocate = @import("relocate.zig");
const special = @import("special.zig");
const regions = @import("regions.zig");
const tree = @import("tree.zig");
const pid_map = @import("pid_map.zig");
const handover = @import("handover.zig");
const fail = @import("fail.zig").fail;

pub fn main() u8 {
    var args = std.process.args();
    _ = args.skip();
    const first = args.next() orelse fail("usage: mtcp_restart IMAGE...");
    if (std.mem.eql(u8, first, "--version")) {
        const text = "mtcp_restart (dmtcp) " ++ arch.name ++ "\n";
        _ = linux.write(1, text.ptr, text.len);
        return 0;
    }
    if (!arch.supported) fail("restart is not yet supported on " ++ arch.name);
    state.page_size = std.heap.pageSize();
    const own = &tree.targets[buildOrAdopt(first.ptr, &args)];
    const own_class: u8 = if (@sizeOf(usize) == 8) image.elf_class_64 else image.elf_class_32;
    // A mixed tree: this process's image is for the other word size's mtcp_restart.
    if (own.elf_class != own_class) handover.execSibling(own, variable("DMTCP_NATIVE_DIR="));
    const rc = linux.openat(linux.AT.FDCWD, own.path, .{ .CLOEXEC = true }, 0);
    if (linux.E.init(rc) != .SUCCESS) fail("cannot open the image");
    state.image_fd = tree.liftImage(@intCast(rc));
    state.connection_fd = own.connection_fd;
    state.data_verified = isOne(variable("DMTCP_IMAGE_VERIFIED="));
    check.checkImage(); // Step 1.
    relocate.readOwnMappings();
    special.choose(isOne(variable("DMTCP_VDSO_TRAMPOLINES=")));
    keepEnvironment(); // Step 2.
    relocate.moveAndContinue(continueMoved);
}

/// Step 0: fork the tree, or, exec'd by the mtcp_restart of the other word size for one
/// process of a mixed tree, take the process and descriptors it prepared (handover.zig).
fn buildOrAdopt(first: [*:0]const u8, args: *std.process.ArgIterator) usize {
    if (variable(handover.one_prefix)) |one| {
        if (args.next() != null) fail("one image only, handed over by another mtcp_restart");
        const index = handover.adopt(first, one);
        const own_class: u8 = if (@sizeOf(usize) == 8) image.elf_class_64 else image.elf_class_32;
        tree.targets[index].elf_class = own_class; // Step 1 checks the image's architecture.
        return index;
    }
    tree.addTarget(first);
    while (args.next()) |path| tree.addTarget(path.ptr);
    if (variable("DMTCP_RESTART_FDS=")) |fds| tree.takeConnections(fds);
    return tree.build(); // From here on, one process per image.
}

/// Steps 3 to 5, running in the moved copy, on its new stack.
fn continueMoved(_: usize) callconv(.c) noreturn {
    unmapOldSelf();
    special.move();
    regions.mapAll();
    tree.closeSharedObjects();
    buildEnvironment();
    state.info = .{
        .image_fd = state.image_fd,
        .coordinator_fd = state.connection_fd,
        .envp = @intFromPtr(&state.envp),
        .restart_start = state.hole_start,
        .restart_end = state.hole_start + state.hole_size,
        .pid_map_fd = pid_map.fd,
        .pid_map_count = pid_map.count,
        .pipes = @intFromPtr(&tree.inherited),
        .pipe_count = @intCast(tree.inherited_count),
    };
    arch.setThreadPointer(@intCast(state.header.restart_thread_pointer));
    const entry: *const fn (*const image.RestartInfo) callconv(.c) noreturn =
        @ptrFromInt(@as(usize, @intCast(state.header.restart_entry)));
    entry(&state.info);
}

fn unmapOldSelf() void {
    const hole_end = state.hole_start + state.hole_size;
    for (state.own[0..state.own_count]) |interval| {
        if (interval.start >= state.hole_start and interval.end <= hole_end) continue;
        if (isSpecial(interval) or isKept(interval)) continue;
        const start: usize = @intCast(interval.start);
        _ = linux.munmap(@ptrFromInt(start), @intCast(interval.end - interval.start));
    }
}

fn isSpecial(interval: state.Interval) bool {
    for (state.special_now) |maybe| {
        if (maybe) |now| if (now.start == interval.start) return true;
    }
    return false;
}

fn isOne(value: ?[]const u8) bool {
    return if (value) |text| std.mem.eql(u8, text, "1") else false;
}

/// The value of `prefix` ("NAME=") in our environment.
fn variable(comptime prefix: []const u8) ?[]const u8 {
    for (std.os.environ) |entry| {
        const text = std.mem.span(entry);
        if (std.mem.startsWith(u8, text, prefix)) return text[prefix.len..];
    }
    return null;
}

fn isKept(interval: state.Interval) bool {
    for (state.kept[0..state.kept_count]) |kept| if (kept.start == interval.start) return true;
    return false;
}

/// Copies our DMTCP_* variables into static memory (the stack they live on goes away).
fn keepEnvironment() void {
    var size: usize = 0;
    var count: usize = 0;
    for (std.os.environ) |entry| {
        const text = std.mem.span(entry);
        if (!std.mem.startsWith(u8, text, "DMTCP_")) continue;
        // Ours alone (the connection list, the handover): the runtime never reads them.
        if (std.mem.startsWith(u8, text, "DMTCP_RESTART_")) continue;
        if (count == limits.restart_env_count_max) break;
        if (size + text.len + 1 > state.env_text.len) break;
        @memcpy(state.env_text[size..][0..text.len], text);
        state.env_text[size + text.len] = 0;
        size += text.len + 1;
        count += 1;
    }
    state.env_text_size = size;
}

/// Builds the NULL-terminated pointer array over the (moved) copy of the variables.
fn buildEnvironment() void {
    var offset: usize = 0;
    var count: usize = 0;
    while (offset < state.env_text_size and count < limits.restart_env_count_max) : (count += 1) {
        const entry: [*:0]u8 = @ptrCast(&state.env_text[offset]);
        state.envp[count] = entry;
        offset += std.mem.len(entry) + 1;
    }
    state.envp[count] = null;
}

pub const panic = std.debug.FullPanic(fatal);

fn fatal(message: []const u8, _: ?usize) noreturn {
    fail(message);
}
