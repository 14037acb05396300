//! Step 1: read the whole image and check everything (header, every record's body and data
//! checksums, sizes, the sequence) before anything of this process is touched. Collects
//! where each region goes, which the later steps need.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const state = @import("state.zig");
const fail = @import("fail.zig").fail;

pub fn checkImage() void {
    const fd = state.image_fd;
    assert(fd >= 0);
    var stat: linux.Stat = undefined;
    if (linux.E.init(linux.fstat(fd, &stat)) != .SUCCESS) fail("cannot stat the image");
    const file_size: u64 = @intCast(stat.size);
    if (file_size < image.header_size) fail("not an image: shorter than a header");
    readAt(std.mem.asBytes(&state.header), 0);
    image.checkHeader(&state.header, @intCast(state.page_size)) catch |err| switch (err) {
        error.BadMagic => fail("not a dmtcp image (bad magic)"),
        error.BadVersion => fail("image of another format version"),
        error.WrongArch => fail("image of another architecture"),
        error.WrongClass => fail("image of a process of the other word size"),
        error.WrongPageSize => fail("image made with another page size"),
        error.BadChecksum => fail("corrupt image: header checksum mismatch"),
        error.BadHeaderSize => fail("corrupt image: bad header size"),
    };
    if (state.header.image_size > file_size) fail("truncated image");
    if (state.header.image_size < file_size) fail("corrupt image: longer than its header says");
    if (state.header.restart_entry == 0) fail("corrupt image: no restart entry");
    state.image_size = file_size;
    checkRecords();
}

fn checkRecords() void {
    var records = std.hash.XxHash64.init(0);
    var offset: u64 = image.header_size;
    var index: u32 = 0;
    while (index < state.header.record_count) : (index += 1) {
        var record: image.RecordHeader = undefined;
        if (offset + image.record_header_size > state.image_size) fail("truncated image");
        readAt(std.mem.asBytes(&record), offset);
        if (record.body_size > image.body_size_max) fail("corrupt image: record body too large");
        if (offset + image.record_header_size + record.body_size > state.image_size) {
            fail("truncated image");
        }
        const body = state.body[0..record.body_size];
        readAt(body, offset + image.record_header_size);
        if (image.bodyChecksum(&record, body) != record.body_checksum) {
            fail("corrupt image: record checksum mismatch");
        }
        image.checkBody(&record, body) catch fail("corrupt image: malformed record");
        const data_offset = image.dataOffset(offset, &record, state.header.page_size);
        if (data_offset + record.data_size > state.image_size) fail("truncated image");
        if (!state.data_verified and
            hashData(data_offset, record.data_size) != record.data_checksum)
        {
            fail("corrupt image: memory checksum mismatch");
        }
        if (record.tag == @intFromEnum(image.RecordTag.region)) {
            collectRegion(body, record.data_size);
        }
        if (record.tag == @intFromEnum(image.RecordTag.signal_action)) noteAction(body);
        image.foldRecord(&records, &record);
        offset = image.nextOffset(offset, &record, state.header.page_size);
    }
    if (offset != state.image_size) fail("corrupt image: records do not fill it");
    if (records.final() != state.header.records_checksum) fail("corrupt image: records reordered");
}

fn hashData(offset: u64, size: u64) u64 {
    if (size == 0) return 0;
    var hasher = std.hash.XxHash64.init(0);
    var done: u64 = 0;
    while (done < size) {
        const chunk: usize = @intCast(@min(size - done, state.read_buffer.len));
        readAt(state.read_buffer[0..chunk], offset + done);
        hasher.update(state.read_buffer[0..chunk]);
        done += chunk;
    }
    return hasher.final();
}

/// SA_RESTORER: the same value on every architecture we ship.
const sa_restorer: u64 = 0x0400_0000;

/// A handler without its own return trampoline returns through the system's (the vDSO's,
/// [sigpage], or qemu-user's page), which regions.zig may have to give to the program.
fn noteAction(body: []const u8) void {
    const action = std.mem.bytesToValue(image.SignalAction, body[0..@sizeOf(image.SignalAction)]);
    // SIG_DFL (0) and SIG_IGN (1) never return through a trampoline.
    if (action.handler > 1 and action.flags & sa_restorer == 0) {
        state.handler_without_restorer = true;
    }
}

fn collectRegion(body: []const u8, data_size: u64) void {
    const region = std.mem.bytesToValue(image.Region, body[0..@sizeOf(image.Region)]);
    if (region.start % state.page_size != 0 or region.end % state.page_size != 0) {
        fail("corrupt image: region not page-aligned");
    }
    if (region.end > std.math.maxInt(usize)) fail("image region beyond this address space");
    const interval: state.Interval = .{ .start = region.start, .end = region.end };
    const special: ?state.Special = switch (@as(image.Backing, @enumFromInt(region.backing))) {
        .vdso => .vdso,
        .vvar => .vvar,
        .vvar_vclock => .vvar_vclock,
        else => null,
    };
    if (special) |which| state.special_old[@intFromEnum(which)] = interval;
    if (special == .vdso) state.vdso_stored = data_size == region.end - region.start;
    if (state.region_count == state.regions.len) fail("image has too many regions");
    state.regions[state.region_count] = interval;
    state.region_count += 1;
}

pub fn readAt(buffer: []u8, offset: u64) void {
    var done: usize = 0;
    while (done < buffer.len) {
        const rc = linux.pread(
            state.image_fd,
            buffer[done..].ptr,
            buffer.len - done,
            @intCast(offset + done),
        );
        switch (linux.E.init(rc)) {
            .SUCCESS => if (rc == 0) fail("truncated image"),
            .INTR => continue,
            else => fail("cannot read the image"),
        }
        done += rc;
    }
}

comptime {
    assert(limits.restart_read_size >= image.header_size);
}
