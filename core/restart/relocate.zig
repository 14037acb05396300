//! Step 2: move this program out of the way. The kernel loaded mtcp_restart (static-pie) and
//! gave it a stack wherever ASLR chose, which may be exactly where the image's regions go.
//! So: find a hole that overlaps no region of the image and no mapping of ours, copy our
//! loaded segments there, apply our relative relocations again for the new base (GOT and
//! data pointers hold absolute addresses), give ourselves a fresh stack in the hole, and
//! continue there. Every piece of state lives in static memory, which moves with the copy.
const std = @import("std");
const linux = std.os.linux;
const elf = std.elf;
const assert = std.debug.assert;
const arch = @import("arch").current;
const limits = @import("limits");
const maps = @import("format").maps;
const image = @import("format").image;
const state = @import("state.zig");
const fail = @import("fail.zig").fail;

const guard_size = 64 * 1024;

const Segments = struct {
    base: usize,
    phdrs: []const elf.Phdr,
    low: usize,
    high: usize,
};

/// Reads our own /proc/self/maps into `state.own` and finds the kernel's special mappings.
pub fn readOwnMappings() void {
    const rc = linux.openat(linux.AT.FDCWD, "/proc/self/maps", .{ .CLOEXEC = true }, 0);
    if (linux.E.init(rc) != .SUCCESS) fail("cannot read /proc/self/maps");
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    var size: usize = 0;
    while (size < state.read_buffer.len) {
        const n = linux.read(fd, state.read_buffer[size..].ptr, state.read_buffer.len - size);
        if (linux.E.init(n) != .SUCCESS) fail("cannot read /proc/self/maps");
        if (n == 0) break;
        size += n;
    }
    var lines = std.mem.tokenizeScalar(u8, state.read_buffer[0..size], '\n');
    while (lines.next()) |line| {
        const mapping = maps.parseLine(line) orelse fail("unreadable /proc/self/maps");
        const interval: state.Interval = .{ .start = mapping.start, .end = mapping.end };
        if (std.mem.eql(u8, mapping.path, "[vsyscall]")) continue;
        inline for (.{ "[vvar]", "[vvar_vclock]", "[vdso]" }, 0..) |name, index| {
            if (std.mem.eql(u8, mapping.path, name)) state.special_now[index] = interval;
        }
        if (state.own_count == state.own.len) fail("too many mappings in mtcp_restart");
        state.own[state.own_count] = interval;
        state.own_count += 1;
        if (!isSystemPage(mapping)) continue;
        if (state.kept_count == state.kept.len) fail("too many system pages in mtcp_restart");
        state.kept[state.kept_count] = interval;
        state.kept_count += 1;
    }
}

/// Pages the kernel or an emulator gives every process and keeps using, which we must not
/// unmap: ARM's [vectors] and [sigpage], and, under qemu-user, its signal trampoline (and for
/// 32-bit ARM its commpage), which the program sees as unnamed executable memory. A real
/// kernel never gives mtcp_restart unnamed executable memory: its code is a file.
fn isSystemPage(mapping: maps.Mapping) bool {
    if (std.mem.eql(u8, mapping.path, "[vectors]")) return true;
    if (std.mem.eql(u8, mapping.path, "[sigpage]")) return true;
    if (std.mem.eql(u8, mapping.path, "[uprobes]")) return true;
    return mapping.path.len == 0 and mapping.protection & image.protection_execute != 0;
}

fn segments() Segments {
    const phdr_address = linux.getauxval(elf.AT_PHDR);
    const phdr_count = linux.getauxval(elf.AT_PHNUM);
    if (phdr_address == 0 or phdr_count == 0) fail("no program headers in the auxiliary vector");
    const phdrs = @as([*]const elf.Phdr, @ptrFromInt(phdr_address))[0..phdr_count];
    var base: ?usize = null;
    var low: usize = std.math.maxInt(usize);
    var high: usize = 0;
    for (phdrs) |phdr| {
        if (phdr.p_type == elf.PT_PHDR) base = phdr_address - @as(usize, @intCast(phdr.p_vaddr));
        if (phdr.p_type != elf.PT_LOAD) continue;
        low = @min(low, std.mem.alignBackward(usize, @intCast(phdr.p_vaddr), state.page_size));
        const segment_end: usize = @intCast(phdr.p_vaddr + phdr.p_memsz);
        high = @max(high, std.mem.alignForward(usize, segment_end, state.page_size));
    }
    if (base == null or high <= low) fail("cannot find our own segments");
    return .{ .base = base.?, .phdrs = phdrs, .low = low, .high = high };
}

fn specialSize() usize {
    var total: usize = 0;
    for (state.special_now) |maybe| if (maybe) |interval| {
        total += @intCast(interval.end - interval.start);
    };
    return total;
}

/// The lowest address above the architecture's floor where `size` bytes overlap nothing we
/// know of, below our own highest mapping (the stack, at the top of the address space this
/// process was given: this also keeps us inside qemu-user's guest address space).
pub fn findHole(size: u64) u64 {
    var candidate: u64 = arch.restart_hole_floor;
    var top: u64 = 0;
    for (state.own[0..state.own_count]) |interval| top = @max(top, interval.end);
    var rounds: usize = 0;
    // Each round moves past one interval, so there are at most as many rounds as intervals.
    while (rounds <= state.region_count + state.own_count) : (rounds += 1) {
        const end = candidate + size;
        if (end > top) break;
        const blocker = firstOverlap(candidate, end) orelse return candidate;
        candidate = std.mem.alignForward(u64, blocker.end + guard_size, 1 << 21);
    }
    fail("no room in the address space for mtcp_restart");
}

fn firstOverlap(start: u64, end: u64) ?state.Interval {
    // Once we moved, our own hole is taken too.
    const hole: state.Interval = .{
        .start = state.hole_start,
        .end = state.hole_start + state.hole_size,
    };
    if (state.hole_size > 0 and hole.overlaps(start, end)) return hole;
    for (state.regions[0..state.region_count]) |interval| {
        if (interval.overlaps(start, end)) return interval;
    }
    for (state.own[0..state.own_count]) |interval| {
        if (interval.overlaps(start, end)) return interval;
    }
    return null;
}

/// Copies us into a hole and continues in `next` on a new stack there; never returns.
pub fn moveAndContinue(next: *const fn (usize) callconv(.c) noreturn) noreturn {
    const own = segments();
    const image_span = own.high - own.low;
    const stack_offset = image_span + guard_size;
    const parking_offset = stack_offset + limits.restart_stack_size + guard_size;
    const size = parking_offset + specialSize() + guard_size;
    const hole = findHole(size);
    state.hole_start = @intCast(hole);
    state.hole_size = size;
    state.special_parking = state.hole_start + parking_offset;
    reserve(state.hole_start, size, linux.PROT.NONE);
    const new_base = state.hole_start - own.low;
    reserveFixed(new_base + own.low, image_span, linux.PROT.READ | linux.PROT.WRITE);
    for (own.phdrs) |phdr| {
        if (phdr.p_type != elf.PT_LOAD) continue;
        const start = std.mem.alignBackward(usize, @intCast(phdr.p_vaddr), state.page_size);
        const segment_end: usize = @intCast(phdr.p_vaddr + phdr.p_memsz);
        const end = std.mem.alignForward(usize, segment_end, state.page_size);
        const from: [*]const u8 = @ptrFromInt(own.base + start);
        const to: [*]u8 = @ptrFromInt(new_base + start);
        @memcpy(to[0 .. end - start], from[0 .. end - start]);
    }
    relocate(own, new_base);
    protect(own, new_base);
    const stack = state.hole_start + stack_offset;
    reserveFixed(stack, limits.restart_stack_size, linux.PROT.READ | linux.PROT.WRITE);
    arch.flushInstructionCache(new_base + own.low, image_span);
    const moved_address = @intFromPtr(next) - own.base + new_base;
    const moved: *const fn (usize) callconv(.c) noreturn = @ptrFromInt(moved_address);
    arch.jumpOnStack(stack + limits.restart_stack_size, moved, 0);
}

fn reserve(start: usize, size: usize, protection: usize) void {
    const rc = linux.mmap(@ptrFromInt(start), size, protection, .{
        .TYPE = .PRIVATE,
        .ANONYMOUS = true,
        .NORESERVE = true,
        .FIXED_NOREPLACE = true,
    }, -1, 0);
    if (linux.E.init(rc) != .SUCCESS or rc != start) fail("cannot reserve a hole for mtcp_restart");
}

fn reserveFixed(start: usize, size: usize, protection: usize) void {
    const rc = linux.mmap(@ptrFromInt(start), size, protection, .{
        .TYPE = .PRIVATE,
        .ANONYMOUS = true,
        .FIXED = true,
    }, -1, 0);
    if (linux.E.init(rc) != .SUCCESS) fail("cannot map mtcp_restart's copy");
}

/// Applies the copy's relative relocations for its new base: RELA entries are set from
/// their addend, REL and RELR entries (which add to what is stored) get the difference.
fn relocate(own: Segments, new_base: usize) void {
    const delta = new_base -% own.base;
    var dynamic: ?[*]const elf.Dyn = null;
    for (own.phdrs) |phdr| {
        if (phdr.p_type == elf.PT_DYNAMIC) {
            dynamic = @ptrFromInt(new_base + @as(usize, @intCast(phdr.p_vaddr)));
        }
    }
    const entries = dynamic orelse return;
    var values = [_]usize{0} ** elf.DT_NUM;
    var index: usize = 0;
    while (entries[index].d_tag != elf.DT_NULL) : (index += 1) {
        const tag = entries[index].d_tag;
        if (tag >= 0 and tag < elf.DT_NUM) values[@intCast(tag)] = @intCast(entries[index].d_val);
    }
    if (values[elf.DT_RELA] != 0) {
        const rela_table: [*]const elf.Rela = @ptrFromInt(new_base + values[elf.DT_RELA]);
        const relas = rela_table[0 .. values[elf.DT_RELASZ] / @sizeOf(elf.Rela)];
        for (relas) |rela| {
            if (rela.r_type() != arch.relocation_relative) continue;
            const slot: *usize = @ptrFromInt(new_base + @as(usize, @intCast(rela.r_offset)));
            slot.* = new_base +% @as(usize, @bitCast(@as(isize, @intCast(rela.r_addend))));
        }
    }
    if (values[elf.DT_REL] != 0) {
        const rel_table: [*]const elf.Rel = @ptrFromInt(new_base + values[elf.DT_REL]);
        const rels = rel_table[0 .. values[elf.DT_RELSZ] / @sizeOf(elf.Rel)];
        for (rels) |rel| {
            if (rel.r_type() != arch.relocation_relative) continue;
            const slot: *usize = @ptrFromInt(new_base + @as(usize, @intCast(rel.r_offset)));
            slot.* +%= delta;
        }
    }
    if (values[elf.DT_RELR] != 0) {
        relocateRelr(new_base, values[elf.DT_RELR], values[elf.DT_RELRSZ], delta);
    }
}

fn relocateRelr(new_base: usize, offset: usize, size: usize, delta: usize) void {
    const relr_table: [*]const elf.Relr = @ptrFromInt(new_base + offset);
    const relrs = relr_table[0 .. size / @sizeOf(elf.Relr)];
    var current: [*]usize = undefined;
    for (relrs) |relr| {
        if (relr & 1 == 0) {
            current = @ptrFromInt(new_base + relr);
            current[0] +%= delta;
            current += 1;
            continue;
        }
        var bit: usize = 1;
        while (bit < @bitSizeOf(elf.Relr)) : (bit += 1) {
            if ((relr >> @intCast(bit)) & 1 != 0) current[bit - 1] +%= delta;
        }
        current += @bitSizeOf(elf.Relr) - 1;
    }
}

fn protect(own: Segments, new_base: usize) void {
    for (own.phdrs) |phdr| {
        if (phdr.p_type != elf.PT_LOAD) continue;
        const start = std.mem.alignBackward(usize, @intCast(phdr.p_vaddr), state.page_size);
        const segment_end: usize = @intCast(phdr.p_vaddr + phdr.p_memsz);
        const end = std.mem.alignForward(usize, segment_end, state.page_size);
        var protection: usize = 0;
        if (phdr.p_flags & elf.PF_R != 0) protection |= linux.PROT.READ;
        if (phdr.p_flags & elf.PF_W != 0) protection |= linux.PROT.WRITE;
        if (phdr.p_flags & elf.PF_X != 0) protection |= linux.PROT.EXEC;
        _ = linux.mprotect(@ptrFromInt(new_base + start), end - start, protection);
    }
}

comptime {
    assert(guard_size % 4096 == 0);
}
