//! Memory: every mapping of /proc/self/maps becomes one region record (or several, when its
//! stored pages form more than `region_runs_max` runs or exceed `record_data_size_max`),
//! carrying its pages as the record's data. mtcp_restart maps them back; the runtime has
//! nothing to restore.
//!
//! Which pages are stored, decided per page from /proc/self/pagemap and the page's contents:
//!   * anonymous, heap, stack, shared anonymous: pages that exist (present or swapped) and are
//!     not all zero; the rest come back as zero pages, so a mostly empty 1 GiB heap costs
//!     its pagemap scan and nothing in the image;
//!   * private file mappings: only pages the program changed (present and anonymous, or
//!     swapped); the rest are the file's, mapped again at restart;
//!   * shared file mappings: none, their contents are the file;
//!   * mappings of deleted files (and memfd, SysV shm): every non-zero page, read by content,
//!     restored as private anonymous memory;
//!   * [vvar], [vvar_vclock]: none, only where they were (restart moves the running kernel's
//!     there); [vdso]: its pages, for trampolines on another kernel; [vsyscall]: not recorded;
//!   * this runtime's scratch memory (the maps text and pagemap buffer): recorded, never
//!     stored (`contents_skipped`), since it is rebuilt by each checkpoint.
//! Unreadable mappings holding pages are made readable for the write, then put back.
//!
//! A region's checksum is computed while its pages are scanned and must match what the write
//! then copies, so nothing may change in between: the writer's own changing state (run list,
//! iovecs, pagemap buffer) lives in the scratch memory, and the one mapping that cannot hold
//! still, the checkpoint thread's own stack, is first copied into scratch memory and written
//! from that snapshot.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const maps = @import("format").maps;
const kinds = @import("kinds.zig");
const proc = @import("proc.zig");

pub const kind: kinds.Kind = .{ .tag = .region, .save = save, .restore = kinds.restoreNothing };

/// This kind's working memory, reserved once when the library loads and never stored.
const Scratch = struct {
    maps: [limits.maps_size_max]u8,
    pagemap: [limits.pagemap_pages_max]u64,
    runs: [limits.region_runs_max]image.Run,
    vectors: [limits.region_runs_max]std.posix.iovec_const,
    /// One page of a mapped file, to compare with memory when there is no pagemap.
    file_page: [limits.page_size_max]u8 align(4096),
    /// The checkpoint thread's stack, copied before it is written.
    stack: [limits.thread_stack_size]u8 align(4096),
};
const scratch_size = std.mem.alignForward(usize, @sizeOf(Scratch), 1 << 16);

var scratch: ?*Scratch = null;

pub fn reserve() void {
    const rc = linux.mmap(null, scratch_size, linux.PROT.READ | linux.PROT.WRITE, .{
        .TYPE = .PRIVATE,
        .ANONYMOUS = true,
        .NORESERVE = true,
    }, -1, 0);
    if (linux.E.init(rc) != .SUCCESS) return;
    scratch = @ptrFromInt(rc);
    const readable = linux.PROT.READ | linux.PROT.WRITE;
    const probe_rc = linux.mmap(null, 3 * std.heap.pageSize(), readable, .{
        .TYPE = .PRIVATE,
        .ANONYMOUS = true,
    }, -1, 0);
    if (linux.E.init(probe_rc) == .SUCCESS) probe = probe_rc;
}

/// Three pages of our own whose middle one alone is ever written (see openPagemap). Too small
/// for a transparent huge page; saved and restored like any memory (one page in the image).
var probe: ?usize = null;

const Mapping = maps.Mapping;
const parseLine = maps.parseLine;

/// How the pages of one mapping are chosen.
const Mode = enum { none, changed, present, every };

const Plan = struct {
    backing: image.Backing,
    flags: image.RegionFlags,
    mode: Mode,
    /// Where the pages are read from: the mapping itself, or a snapshot of it.
    source: u64 = 0,
};

fn plan(mapping: *const Mapping, in_scratch: bool) ?Plan {
    const path = mapping.path;
    if (in_scratch) {
        return .{ .backing = .anonymous, .flags = .{ .contents_skipped = true }, .mode = .none };
    }
    if (std.mem.eql(u8, path, "[vsyscall]") or std.mem.eql(u8, path, "[vectors]")) return null;
    // The vDSO's own pages are stored (two or three): a restart on a kernel whose vDSO differs
    // maps them back and turns their entry points into jumps to the new vDSO.
    if (std.mem.eql(u8, path, "[vdso]")) return .{ .backing = .vdso, .flags = .{}, .mode = .every };
    if (std.mem.eql(u8, path, "[vvar]")) return .{ .backing = .vvar, .flags = .{}, .mode = .none };
    if (std.mem.eql(u8, path, "[vvar_vclock]")) {
        return .{ .backing = .vvar_vclock, .flags = .{}, .mode = .none };
    }
    const shared: image.RegionFlags = .{ .shared = mapping.shared };
    if (std.mem.eql(u8, path, "[heap]")) {
        return .{ .backing = .heap, .flags = shared, .mode = .present };
    }
    if (std.mem.eql(u8, path, "[stack]")) {
        return .{ .backing = .stack, .flags = shared, .mode = .present };
    }
    if (path.len == 0 or path[0] != '/') {
        return .{ .backing = .anonymous, .flags = shared, .mode = .present };
    }
    if (std.mem.endsWith(u8, path, " (deleted)") or mapping.inode == 0) {
        const flags: image.RegionFlags = .{ .shared = mapping.shared, .deleted = true };
        return .{ .backing = .anonymous, .flags = flags, .mode = .every };
    }
    return .{ .backing = .file, .flags = shared, .mode = if (mapping.shared) .none else .changed };
}

fn save(context: *kinds.SaveContext) kinds.SaveError!void {
    const base = scratch orelse return error.Unreadable;
    const maps_text = proc.readFile("/proc/self/maps", &base.maps) catch
        return error.Unreadable;
    const pagemap_fd = openPagemap(context.page_size);
    defer if (pagemap_fd >= 0) {
        _ = linux.close(pagemap_fd);
    };
    var lines = std.mem.tokenizeScalar(u8, maps_text, '\n');
    var count: usize = 0;
    const ours = [_][2]u64{
        .{ @intFromPtr(base), @intFromPtr(base) + scratch_size },
        .{ context.stack_start, context.stack_end },
    };
    while (lines.next()) |line| : (count += 1) {
        if (count == limits.regions_max) return error.TooMany;
        const mapping = parseLine(line) orelse return error.Unreadable;
        // The kernel merges neighbouring mappings (ours with the program's, after a restart
        // maps them back side by side): save the pieces on each side of our ranges apart.
        var piece = mapping;
        var cuts: usize = 0;
        while (piece.start < mapping.end) : (cuts += 1) {
            assert(cuts <= 2 * ours.len);
            piece.end = nextCut(&ours, piece.start, mapping.end);
            piece.offset = mapping.offset + (piece.start - mapping.start);
            try savePiece(context, &piece, &ours, pagemap_fd);
            piece.start = piece.end;
        }
    }
}

/// /proc/self/pagemap, if it describes this address space (else -1, and every page is read
/// instead). Under qemu-user the file is the emulator's, indexed by host addresses, and the
/// program's addresses are host addresses only with a zero guest base (qemu-aarch64 here;
/// qemu-arm uses 0x1000). The probe tells: its middle page must read present, and the two
/// untouched pages around it absent; a shifted view sees another pattern.
fn openPagemap(page_size: usize) i32 {
    const base = probe orelse return -1;
    const rc = linux.openat(linux.AT.FDCWD, "/proc/self/pagemap", .{ .CLOEXEC = true }, 0);
    if (linux.E.init(rc) != .SUCCESS) return -1;
    const fd: i32 = @intCast(rc);
    @as(*volatile u8, @ptrFromInt(base + page_size)).* = 1;
    var entries: [3]u64 = undefined;
    const offset: i64 = @intCast(base / page_size * 8);
    const read = linux.pread(fd, std.mem.sliceAsBytes(&entries).ptr, 24, offset);
    const here = present_bit | swapped_bit;
    const agrees = linux.E.init(read) == .SUCCESS and read == 24 and entries[0] & here == 0 and
        entries[1] & present_bit != 0 and entries[2] & here == 0;
    if (agrees) return fd;
    _ = linux.close(fd);
    return -1;
}

/// The first boundary of one of `ours` strictly inside (start, end), else `end`.
fn nextCut(ours: []const [2]u64, start: u64, end: u64) u64 {
    var cut = end;
    for (ours) |range| {
        for (range) |boundary| {
            if (boundary > start and boundary < cut) cut = boundary;
        }
    }
    return cut;
}

fn savePiece(
    context: *kinds.SaveContext,
    piece: *const Mapping,
    ours: []const [2]u64,
    pagemap_fd: i32,
) kinds.SaveError!void {
    const base = scratch.?;
    const in_scratch = piece.start >= ours[0][0] and piece.end <= ours[0][1];
    const in_stack = piece.start >= ours[1][0] and piece.end <= ours[1][1];
    var how = plan(piece, in_scratch) orelse return;
    how.source = piece.start;
    if (in_stack and how.mode != .none) {
        // Our own stack: it changes as we write it, so it is written from a copy.
        var marker: u8 = 0;
        assert(@intFromPtr(&marker) >= piece.start and @intFromPtr(&marker) < ours[1][1]);
        const size_now = size(piece);
        assert(size_now <= base.stack.len);
        const live_stack: [*]const u8 = @ptrFromInt(address(piece.start));
        @memcpy(base.stack[0..size_now], live_stack[0..size_now]);
        how.source = @intFromPtr(&base.stack);
    }
    try saveMapping(context, piece, how, pagemap_fd);
}

const Part = struct {
    mapping: *const Mapping,
    how: Plan,
    first_page: u64,
    run_count: usize = 0,
    page_count: u64 = 0,
    hasher: std.hash.XxHash64 = std.hash.XxHash64.init(0),
};

fn saveMapping(
    context: *kinds.SaveContext,
    mapping: *const Mapping,
    how: Plan,
    pagemap_fd: i32,
) kinds.SaveError!void {
    const page_size = context.page_size;
    assert(mapping.end > mapping.start);
    assert(mapping.start % page_size == 0);
    const page_total = size(mapping) / page_size;
    var made_readable = false;
    if (how.mode != .none and mapping.protection & image.protection_read == 0) {
        const rc = linux.mprotect(
            @ptrFromInt(address(mapping.start)),
            size(mapping),
            linux.PROT.READ,
        );
        made_readable = linux.E.init(rc) == .SUCCESS;
        if (!made_readable) {
            var empty: Part = .{ .mapping = mapping, .how = how, .first_page = 0 };
            return writePart(context, &empty, page_total);
        }
    }
    defer if (made_readable) {
        _ = linux.mprotect(
            @ptrFromInt(address(mapping.start)),
            size(mapping),
            protectionBits(mapping.protection),
        );
    };
    var part: Part = .{ .mapping = mapping, .how = how, .first_page = 0 };
    var original = Original.open(mapping, how.mode, pagemap_fd);
    defer original.close();
    var page: u64 = 0;
    while (page < page_total) {
        const chunk: usize = @intCast(@min(page_total - page, limits.pagemap_pages_max));
        const entries = readPagemap(pagemap_fd, how.mode, mapping.start / page_size + page, chunk);
        for (0..chunk) |index| {
            const page_address = address(how.source + (page + index) * page_size);
            const file_offset = mapping.offset + (page + index) * page_size;
            const entry: u64 = if (entries) |list| list[index] else present_bit;
            const keep = if (original.fd >= 0)
                original.changed(file_offset, page_address, page_size)
            else
                stored(how.mode, entry, page_address, page_size);
            if (!keep) continue;
            try addPage(context, &part, page + index, page_address);
        }
        page += chunk;
    }
    try writePart(context, &part, page_total);
}

/// Without a pagemap (under qemu-arm), the file a private mapping maps, to find the pages the
/// program changed by comparing each with the file. A page past the file's end is neither
/// readable (SIGBUS) nor changeable, so it is skipped. Not opened when the pagemap works.
const Original = struct {
    fd: i32 = -1,
    size: u64 = 0,

    fn open(mapping: *const Mapping, mode: Mode, pagemap_fd: i32) Original {
        if (mode != .changed or pagemap_fd >= 0) return .{};
        var path: [limits.path_size_max + 1]u8 = undefined;
        if (mapping.path.len >= path.len) return .{};
        @memcpy(path[0..mapping.path.len], mapping.path);
        path[mapping.path.len] = 0;
        const rc = linux.openat(linux.AT.FDCWD, @ptrCast(&path), .{ .CLOEXEC = true }, 0);
        if (linux.E.init(rc) != .SUCCESS) return .{};
        const fd: i32 = @intCast(rc);
        var stat: linux.Stat = undefined;
        if (linux.E.init(linux.fstat(fd, &stat)) != .SUCCESS) {
            _ = linux.close(fd);
            return .{};
        }
        return .{ .fd = fd, .size = @intCast(stat.size) };
    }

    fn close(self: *Original) void {
        if (self.fd >= 0) _ = linux.close(self.fd);
        self.fd = -1;
    }

    fn changed(self: *const Original, offset: u64, page_address: usize, page_size: usize) bool {
        assert(self.fd >= 0);
        if (offset >= self.size) return false;
        const buffer = scratch.?.file_page[0..page_size];
        const want: usize = @intCast(@min(page_size, self.size - offset));
        const rc = linux.pread(self.fd, buffer.ptr, want, @intCast(offset));
        if (linux.E.init(rc) != .SUCCESS or rc != want) return true;
        @memset(buffer[want..], 0);
        return !std.mem.eql(u8, buffer, @as([*]const u8, @ptrFromInt(page_address))[0..page_size]);
    }
};

const present_bit: u64 = 1 << 63;
const swapped_bit: u64 = 1 << 62;
const file_bit: u64 = 1 << 61;

fn readPagemap(fd: i32, mode: Mode, first_page: u64, count: usize) ?[]const u64 {
    if (fd < 0 or mode == .every or mode == .none) return null;
    const base = scratch orelse return null;
    assert(count <= base.pagemap.len);
    const bytes: [*]u8 = @ptrCast(&base.pagemap);
    const rc = linux.pread(fd, bytes, count * 8, @intCast(first_page * 8));
    if (linux.E.init(rc) != .SUCCESS or rc != count * 8) return null;
    return base.pagemap[0..count];
}

fn stored(mode: Mode, entry: u64, page_address: usize, page_size: usize) bool {
    switch (mode) {
        .none => return false,
        .changed => return (entry & present_bit != 0 and entry & file_bit == 0) or
            entry & swapped_bit != 0 or entry == present_bit,
        .present => {
            if (entry & (present_bit | swapped_bit) == 0) return false;
            return !isZero(page_address, page_size);
        },
        .every => return !isZero(page_address, page_size),
    }
}

fn isZero(page_address: usize, page_size: usize) bool {
    const Block = @Vector(8, u64);
    const blocks: [*]const Block = @ptrFromInt(page_address);
    var index: usize = 0;
    // 512 bytes at a time, so that a page of data is rejected after its first block.
    while (index < page_size / @sizeOf(Block)) : (index += 8) {
        var any: Block = @splat(0);
        inline for (0..8) |offset| any |= blocks[index + offset];
        if (@reduce(.Or, any) != 0) return false;
    }
    return true;
}

fn addPage(
    context: *kinds.SaveContext,
    part: *Part,
    page: u64,
    page_address: usize,
) kinds.SaveError!void {
    const page_size = context.page_size;
    const runs = &scratch.?.runs;
    const relative = page - part.first_page;
    if (part.page_count * page_size == image.data_size_max) {
        try writePart(context, part, page);
        part.* = .{ .mapping = part.mapping, .how = part.how, .first_page = page };
        return addPage(context, part, page, page_address);
    }
    const extends = part.run_count > 0 and
        runs[part.run_count - 1].page_index + runs[part.run_count - 1].page_count == relative;
    if (extends) {
        runs[part.run_count - 1].page_count += 1;
    } else {
        if (part.run_count == runs.len) {
            try writePart(context, part, page);
            part.* = .{ .mapping = part.mapping, .how = part.how, .first_page = page };
            return addPage(context, part, page, page_address);
        }
        runs[part.run_count] = .{ .page_index = relative, .page_count = 1 };
        part.run_count += 1;
    }
    part.page_count += 1;
    part.hasher.update(@as([*]const u8, @ptrFromInt(page_address))[0..page_size]);
}

/// Writes pages [part.first_page, end_page) of the mapping as one region record.
fn writePart(context: *kinds.SaveContext, part: *Part, end_page: u64) kinds.SaveError!void {
    const page_size = context.page_size;
    const mapping = part.mapping;
    const runs = &scratch.?.runs;
    const vectors = &scratch.?.vectors;
    assert(end_page > part.first_page);
    const start = mapping.start + part.first_page * page_size;
    const path = mapping.path[0..@min(mapping.path.len, limits.path_size_max)];
    // Shared memory no file holds: restart shares it again between the processes that map
    // it, found by inode (docs/processes.md).
    const shared_object = part.how.flags.shared and part.how.flags.deleted;
    const has_file_offset = part.how.backing == .file or shared_object;
    const region: image.Region = .{
        .start = start,
        .end = mapping.start + end_page * page_size,
        .file_offset = if (has_file_offset) mapping.offset + part.first_page * page_size else 0,
        .page_count = part.page_count,
        .protection = mapping.protection,
        .flags = @bitCast(part.how.flags),
        .backing = @intFromEnum(part.how.backing),
        .path_size = @intCast(path.len),
        .run_count = @intCast(part.run_count),
        .inode = if (shared_object) @truncate(mapping.inode) else 0,
    };
    const padding = [_]u8{0} ** 8;
    const pad = (8 - (@sizeOf(image.Region) + path.len) % 8) % 8;
    for (runs[0..part.run_count], 0..) |run, index| {
        const run_source = part.how.source + (part.first_page + run.page_index) * page_size;
        vectors[index] = .{
            .base = @ptrFromInt(address(run_source)),
            .len = @intCast(run.page_count * page_size),
        };
    }
    const body = [_][]const u8{
        std.mem.asBytes(&region),
        path,
        padding[0..pad],
        std.mem.sliceAsBytes(runs[0..part.run_count]),
    };
    const data_size = part.page_count * page_size;
    const checksum: u64 = if (data_size == 0) 0 else part.hasher.final();
    try context.writer.record(.region, &body, vectors[0..part.run_count], data_size, checksum);
}

/// An address of this process, as a native integer (regions store them as u64).
fn address(value: u64) usize {
    return @intCast(value);
}

fn size(mapping: *const Mapping) usize {
    return @intCast(mapping.end - mapping.start);
}

fn protectionBits(protection: u32) usize {
    var bits: usize = linux.PROT.NONE;
    if (protection & image.protection_read != 0) bits |= linux.PROT.READ;
    if (protection & image.protection_write != 0) bits |= linux.PROT.WRITE;
    if (protection & image.protection_execute != 0) bits |= linux.PROT.EXEC;
    return bits;
}

test "memory: deleted files and anonymous memory are stored by content" {
    const deleted = parseLine("7f00a000-7f00c000 r-xp 00001000 fe:00 325835 /a (deleted)").?;
    try std.testing.expect(plan(&deleted, false).?.flags.deleted);
    const anonymous = parseLine("1000-2000 rw-p 00000000 00:00 0 ").?;
    try std.testing.expectEqual(Mode.present, plan(&anonymous, false).?.mode);
    const vsyscall = parseLine("ff600000-ff601000 --xp 00000000 00:00 0 [vsyscall]").?;
    try std.testing.expect(plan(&vsyscall, false) == null);
}

test "memory: zero pages are told from pages with data" {
    var page: [4096]u8 align(64) = [_]u8{0} ** 4096;
    try std.testing.expect(isZero(@intFromPtr(&page), page.len));
    page[4095] = 1;
    try std.testing.expect(!isZero(@intFromPtr(&page), page.len));
}
