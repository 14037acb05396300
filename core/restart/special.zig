//! Step 3 (second half): the kernel's special mappings. The restored program's C library
//! keeps pointers into the vDSO it started with, and the vDSO code finds its data ([vvar],
//! [vvar_vclock]) at fixed distances from itself. So the running kernel's copies are moved
//! with mremap to where the image had them, which keeps every pointer valid; this needs the
//! same sizes and the same distances (the same kernel build, or one with the same layout).
//! `compatible` checks that before anything is touched; moving goes through a parking area
//! in our hole so that a current mapping never lands on another one still to move.
//!
//! A different layout (another kernel build, or DMTCP_VDSO_TRAMPOLINES=1) takes the other
//! way, as CRIU does: this kernel's mappings stay where they are, the image's [vdso] pages
//! come back at their old address (regions.zig), and `patch` writes at each of its exported
//! functions a jump to the function of the same name in this kernel's vDSO. The old code then
//! never runs, so its [vvar] is not needed.
const std = @import("std");
const linux = std.os.linux;
const elf = std.elf;
const assert = std.debug.assert;
const arch = @import("arch").current;
const state = @import("state.zig");
const relocate = @import("relocate.zig");
const fail = @import("fail.zig").fail;

/// Decides between moving this kernel's mappings and trampolines; fails when neither works.
pub fn choose(forced: bool) void {
    if (!forced and sameLayout()) return;
    if (state.special_old[@intFromEnum(state.Special.vdso)] == null) {
        if (forced) return;
        fail("this kernel's vDSO differs from the checkpointing kernel's");
    }
    if (!state.vdso_stored) fail("this kernel's vDSO differs, and the image lacks the old one");
    if (state.special_now[@intFromEnum(state.Special.vdso)] == null) {
        fail("this kernel has no vDSO to jump to");
    }
    state.vdso_trampolines = true;
}

fn sameLayout() bool {
    var anchor_old: ?u64 = null;
    var anchor_now: ?u64 = null;
    for (state.special_old, state.special_now) |maybe_old, maybe_now| {
        const old = maybe_old orelse continue;
        const now = maybe_now orelse return false;
        if (old.end - old.start != now.end - now.start) return false;
        if (anchor_old) |first_old| {
            if (old.start -% first_old != now.start -% anchor_now.?) return false;
        } else {
            anchor_old = old.start;
            anchor_now = now.start;
        }
    }
    return true;
}

/// Moves the special mappings to where the image had them. Ones the image did not have stay
/// where they are (they overlap no region: the hole search avoided them... or, if they do,
/// the region mapping fails with a clear message).
pub fn move() void {
    if (state.vdso_trampolines) return keepInPlace();
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
    const rc = linux.mremap(
        @ptrFromInt(from),
        size,
        size,
        .{ .MAYMOVE = true, .FIXED = true },
        @ptrFromInt(to),
    );
    if (linux.E.init(rc) != .SUCCESS or rc != to) fail("cannot move the vDSO to its old address");
}

/// Trampolines: this kernel's mappings stay this kernel's, but not where the image's memory
/// goes (on 32 bits the kernel puts them at the same place every time). If they are in the
/// way, they move together, keeping their distances (the vDSO finds [vvar] by distance), to a
/// hole that no region of the image and nothing of ours overlaps.
fn keepInPlace() void {
    var low: u64 = std.math.maxInt(u64);
    var high: u64 = 0;
    var in_the_way = false;
    for (state.special_now) |maybe_now| {
        const now = maybe_now orelse continue;
        low = @min(low, now.start);
        high = @max(high, now.end);
        for (state.regions[0..state.region_count]) |region| {
            if (region.overlaps(now.start, now.end)) in_the_way = true;
        }
    }
    if (!in_the_way) return;
    const target = relocate.findHole(high - low);
    for (&state.special_now) |*maybe_now| {
        const now = maybe_now.* orelse continue;
        const size: usize = @intCast(now.end - now.start);
        const to = target + (now.start - low);
        remap(@intCast(now.start), size, @intCast(to));
        maybe_now.* = .{ .start = to, .end = to + size };
    }
}

/// Turns every function the old vDSO at [base, base + size) exports into a jump to the
/// function of the same name in this kernel's vDSO. Functions this kernel lacks keep their
/// old code (which would fail only if called).
pub fn patch(base: usize, size: usize) void {
    assert(state.vdso_trampolines);
    const now = state.special_now[@intFromEnum(state.Special.vdso)].?;
    const old = Symbols.parse(base, size) orelse fail("the image's vDSO is not an ELF image");
    const new = Symbols.parse(@intCast(now.start), @intCast(now.end - now.start)) orelse
        fail("this kernel's vDSO is not an ELF image");
    var patched: usize = 0;
    for (old.symbols) |symbol| {
        if (!old.isFunction(symbol)) continue;
        const target = new.find(old.name(symbol)) orelse continue;
        const at = old.address(symbol);
        if (at < base or at + arch.jump_size > base + size) fail("the image's vDSO is malformed");
        arch.writeJump(at, target);
        patched += 1;
    }
    if (patched == 0) fail("no function of the image's vDSO exists in this kernel's");
    arch.flushInstructionCache(base, size);
}

/// The dynamic symbol table of a vDSO image in memory, every offset checked against its size.
const Symbols = struct {
    base: usize,
    bias: usize,
    symbols: []const elf.Sym,
    strings: []const u8,

    fn parse(base: usize, size: usize) ?Symbols {
        const bytes = @as([*]const u8, @ptrFromInt(base))[0..size];
        if (size < @sizeOf(elf.Ehdr) or !std.mem.eql(u8, bytes[0..4], elf.MAGIC)) return null;
        const header: *const elf.Ehdr = @ptrCast(@alignCast(bytes.ptr));
        const sections = table(elf.Shdr, bytes, header.e_shoff, header.e_shnum) orelse return null;
        const programs = table(elf.Phdr, bytes, header.e_phoff, header.e_phnum) orelse return null;
        var link_base: ?usize = null;
        for (programs) |program| {
            if (program.p_type == elf.PT_LOAD and program.p_offset == 0) {
                link_base = program.p_vaddr;
            }
        }
        for (sections) |section| {
            if (section.sh_type != elf.SHT_DYNSYM or section.sh_link >= sections.len) continue;
            const count = section.sh_size / @sizeOf(elf.Sym);
            const symbols = table(elf.Sym, bytes, section.sh_offset, count) orelse return null;
            const strtab = sections[section.sh_link];
            if (strtab.sh_offset + strtab.sh_size > size) return null;
            return .{
                .base = base,
                .bias = base -% (link_base orelse return null),
                .symbols = symbols,
                .strings = bytes[strtab.sh_offset..][0..strtab.sh_size],
            };
        }
        return null;
    }

    fn table(comptime T: type, bytes: []const u8, offset: usize, count: usize) ?[]const T {
        if (offset % @alignOf(T) != 0 or offset > bytes.len) return null;
        if (count > (bytes.len - offset) / @sizeOf(T)) return null;
        return @as([*]const T, @ptrCast(@alignCast(bytes[offset..].ptr)))[0..count];
    }

    fn isFunction(self: Symbols, symbol: elf.Sym) bool {
        _ = self;
        return symbol.st_info & 0xf == elf.STT_FUNC and symbol.st_shndx != elf.SHN_UNDEF and
            symbol.st_value != 0;
    }

    fn name(self: Symbols, symbol: elf.Sym) []const u8 {
        if (symbol.st_name >= self.strings.len) return "";
        return std.mem.sliceTo(self.strings[symbol.st_name..], 0);
    }

    fn address(self: Symbols, symbol: elf.Sym) usize {
        return self.bias +% @as(usize, @intCast(symbol.st_value));
    }

    fn find(self: Symbols, wanted: []const u8) ?usize {
        if (wanted.len == 0) return null;
        for (self.symbols) |symbol| {
            if (!self.isFunction(symbol)) continue;
            if (std.mem.eql(u8, self.name(symbol), wanted)) return self.address(symbol);
        }
        return null;
    }
};
