//! Step 4: map every region of the image at its address and fill its stored pages. Regions
//! are mapped writable while they are filled, then given their own protection. File-backed
//! regions map their file again (the image holds only the pages the program changed);
//! anonymous ones start as zero pages and get their stored pages with pread. Shared
//! anonymous memory (and deleted shared files) map the memfd tree.zig made for the object,
//! so it stays shared between the processes of the tree; each writes the pages it stored.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const state = @import("state.zig");
const check = @import("check.zig");
const special = @import("special.zig");
const tree = @import("tree.zig");
const fail = @import("fail.zig").fail;

const arch = @import("arch").current;

pub fn mapAll() void {
    var offset: u64 = image.header_size;
    var index: u32 = 0;
    while (index < state.header.record_count) : (index += 1) {
        var record: image.RecordHeader = undefined;
        check.readAt(std.mem.asBytes(&record), offset);
        assert(record.body_size <= state.body.len);
        if (record.tag == @intFromEnum(image.RecordTag.region)) {
            const body = state.body[0..record.body_size];
            check.readAt(body, offset + image.record_header_size);
            const data_offset = image.dataOffset(offset, &record, state.header.page_size);
            mapOne(body, data_offset, record.data_checksum);
        }
        offset = image.nextOffset(offset, &record, state.header.page_size);
    }
}

fn mapOne(body: []align(8) const u8, data_offset: u64, data_checksum: u64) void {
    const region = std.mem.bytesToValue(image.Region, body[0..@sizeOf(image.Region)]);
    const backing: image.Backing = @enumFromInt(region.backing);
    switch (backing) {
        .vvar, .vvar_vclock => return, // Moved by special.zig, or unused with trampolines.
        .vdso => if (!state.vdso_trampolines) return, // Moved by special.zig.
        else => {},
    }
    if (onSystemPage(region)) return;
    const flags: image.RegionFlags = @bitCast(region.flags);
    const start: usize = @intCast(region.start);
    const size: usize = @intCast(region.end - region.start);
    const protection = protectionBits(region.protection);
    const filling = protection | linux.PROT.READ | linux.PROT.WRITE;
    if (backing == .file and !flags.deleted) {
        mapFile(region, image.regionPath(body), if (flags.shared) protection else filling);
    } else if (flags.shared and tree.sharedObject(region, image.regionPath(body)) != null) {
        mapShared(region, tree.sharedObject(region, image.regionPath(body)).?, filling);
    } else {
        const rc = linux.mmap(@ptrFromInt(start), size, filling, .{
            .TYPE = .PRIVATE,
            .ANONYMOUS = true,
            .FIXED_NOREPLACE = true,
            .GROWSDOWN = backing == .stack,
            .NORESERVE = size >= arch.noreserve_size_min,
            // Mostly stored: one populate beats a page fault per page during the reads.
            .POPULATE = region.page_count * state.page_size * 2 >= size,
        }, -1, 0);
        if (linux.E.init(rc) != .SUCCESS or rc != start) failAt("cannot map memory at ", start);
    }
    var data = data_offset;
    var hasher = std.hash.XxHash64.init(0);
    for (image.regionRuns(body)) |run| {
        const run_start = start + @as(usize, @intCast(run.page_index)) * state.page_size;
        const run_size = @as(usize, @intCast(run.page_count)) * state.page_size;
        const pages = @as([*]u8, @ptrFromInt(run_start))[0..run_size];
        check.readAt(pages, data);
        if (state.data_verified) hasher.update(pages);
        // Code written as data (a JIT's, a patched library's) must reach the instruction
        // cache before it runs on ARM; a no-op on x86.
        if (region.protection & image.protection_execute != 0) {
            arch.flushInstructionCache(run_start, run_size);
        }
        data += run_size;
    }
    // Verified before exec by `dmtcp restart`: a mismatch now means the file changed since.
    if (state.data_verified and data != data_offset and hasher.final() != data_checksum) {
        fail("the image changed while restarting (memory checksum mismatch)");
    }
    if (backing == .vdso) special.patch(start, size);
    if (!(backing == .file and flags.shared) and filling != protection) {
        _ = linux.mprotect(@ptrFromInt(start), size, protection);
    }
}

/// Shared memory no file holds: the memfd mtcp_restart made for it before forking the tree,
/// so every process that mapped it maps the same object again.
fn mapShared(region: image.Region, fd: i32, protection: usize) void {
    const start: usize = @intCast(region.start);
    const size: usize = @intCast(region.end - region.start);
    const mapped = linux.mmap(@ptrFromInt(start), size, protection, .{
        .TYPE = .SHARED,
        .FIXED_NOREPLACE = true,
    }, fd, @intCast(region.file_offset));
    const ok = linux.E.init(mapped) == .SUCCESS and mapped == start;
    if (!ok) failAt("cannot map shared memory at ", start);
}

/// True for a region that is exactly one of the pages the kernel or emulator keeps in every
/// process (state.kept): the checkpointed process's copy of the same page, which is left as
/// this system made it. A page of the system that lies where the program has other memory
/// gives way: qemu-user puts its signal trampoline page just below mtcp_restart's stack, in
/// the middle of where a 32-bit ARM program's libraries were. Only handlers installed without
/// SA_RESTORER return through it: glibc sets none on aarch64, but the runtime gives each such
/// handler a trampoline of its own (core/runtime/signals.zig), so an image holds one only if
/// the program installed it with a raw system call, and the user is then told.
fn onSystemPage(region: image.Region) bool {
    var index: usize = 0;
    while (index < state.kept_count) {
        const kept = state.kept[index];
        if (kept.start == region.start and kept.end == region.end) return true;
        if (!kept.overlaps(region.start, region.end)) {
            index += 1;
            continue;
        }
        const kept_start: usize = @intCast(kept.start);
        _ = linux.munmap(@ptrFromInt(kept_start), @intCast(kept.end - kept.start));
        if (state.handler_without_restorer) warnAt("a signal handler without SA_RESTORER may " ++
            "not return: the system's signal trampoline page gave way to memory at ", kept.start);
        state.kept[index] = state.kept[state.kept_count - 1];
        state.kept_count -= 1;
    }
    return false;
}

fn warnAt(comptime what: []const u8, address: u64) void {
    var buffer: [256]u8 = undefined;
    const format = "mtcp_restart: warning: " ++ what ++ "0x{x}\n";
    const text = std.fmt.bufPrint(&buffer, format, .{address}) catch return;
    _ = linux.write(2, text.ptr, text.len);
}

fn mapFile(region: image.Region, path: []const u8, protection: usize) void {
    var name: [limits.path_size_max + 1]u8 = undefined;
    if (path.len >= name.len) fail("corrupt image: path too long");
    @memcpy(name[0..path.len], path);
    name[path.len] = 0;
    const flags: image.RegionFlags = @bitCast(region.flags);
    const writable_shared = flags.shared and region.protection & image.protection_write != 0;
    const open_flags: linux.O = .{
        .ACCMODE = if (writable_shared) .RDWR else .RDONLY,
        .CLOEXEC = true,
    };
    const rc = linux.openat(linux.AT.FDCWD, @ptrCast(&name), open_flags, 0);
    if (linux.E.init(rc) != .SUCCESS) failPath("cannot open a mapped file: ", path);
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    const start: usize = @intCast(region.start);
    const length: usize = @intCast(region.end - region.start);
    const mapped = linux.mmap(@ptrFromInt(start), length, protection, .{
        .TYPE = if (flags.shared) .SHARED else .PRIVATE,
        .FIXED_NOREPLACE = true,
    }, fd, @intCast(region.file_offset));
    if (linux.E.init(mapped) != .SUCCESS or mapped != start) failPath("cannot map file ", path);
}

fn protectionBits(protection: u32) usize {
    var bits: usize = linux.PROT.NONE;
    if (protection & image.protection_read != 0) bits |= linux.PROT.READ;
    if (protection & image.protection_write != 0) bits |= linux.PROT.WRITE;
    if (protection & image.protection_execute != 0) bits |= linux.PROT.EXEC;
    return bits;
}

fn failAt(comptime what: []const u8, address: usize) noreturn {
    var buffer: [128]u8 = undefined;
    const text = std.fmt.bufPrint(&buffer, what ++ "0x{x} (already in use)", .{address}) catch what;
    fail(text);
}

fn failPath(comptime what: []const u8, path: []const u8) noreturn {
    var buffer: [limits.path_size_max + 64]u8 = undefined;
    const text = std.fmt.bufPrint(&buffer, what ++ "{s}", .{path}) catch what;
    fail(text);
}
