//! Writes an image (core/format/image.zig) to a file with large sequential pwritev calls:
//! a region's pages go from the program's memory straight to the file, one iovec per run,
//! without being copied into a buffer first. The header goes last, at offset 0.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;

pub const Error = error{
    /// ENOSPC or EDQUOT.
    NoSpace,
    /// EFBIG: the file size limit (ulimit -f); SIGXFSZ stays blocked on the checkpoint thread.
    FileTooBig,
    TooManyRecords,
    Io,
};

/// Zero bytes for padding; never written to, so it costs no memory.
const zeros = [_]u8{0} ** 65536;

pub const Writer = struct {
    fd: i32,
    page_size: u64,
    /// Where the next record goes.
    offset: u64 = image.header_size,
    record_count: u32 = 0,
    records: std.hash.XxHash64 = std.hash.XxHash64.init(0),
    /// errno of the first failure, for the report.
    errno: linux.E = .SUCCESS,

    pub fn init(fd: i32, page_size: u64) Writer {
        assert(fd >= 0);
        assert(page_size <= zeros.len);
        return .{ .fd = fd, .page_size = page_size };
    }

    /// Writes one record: its header, the body (given in parts, concatenated), padding, and
    /// `data` (memory ranges whose total is `data_size`, hashed by the caller into
    /// `data_checksum`). `data` is scratch: partial writes adjust it in place.
    pub fn record(
        self: *Writer,
        tag: image.RecordTag,
        body: []const []const u8,
        data: []std.posix.iovec_const,
        data_size: u64,
        data_checksum: u64,
    ) Error!void {
        assert(body.len <= 8);
        assert((data_size == 0) == (data.len == 0));
        var header: image.RecordHeader = .{ .tag = @intFromEnum(tag), .body_size = 0 };
        for (body) |part| header.body_size += @intCast(part.len);
        assert(header.body_size <= image.body_size_max);
        header.data_size = data_size;
        header.data_checksum = data_checksum;
        var hasher = std.hash.XxHash64.init(0);
        hasher.update(std.mem.asBytes(&header)[0..16]);
        for (body) |part| hasher.update(part);
        header.body_checksum = hasher.final();

        var head: [12]std.posix.iovec_const = undefined;
        var count: usize = 0;
        head[count] = .{ .base = std.mem.asBytes(&header), .len = image.record_header_size };
        count += 1;
        for (body) |part| {
            // An empty slice's pointer may be anything, and the kernel checks it all the same.
            if (part.len == 0) continue;
            head[count] = .{ .base = part.ptr, .len = part.len };
            count += 1;
        }
        const body_end = self.offset + image.record_header_size + header.body_size;
        const data_offset = image.dataOffset(self.offset, &header, self.page_size);
        const padding: usize = @intCast(data_offset - body_end);
        if (padding > 0) {
            head[count] = .{ .base = &zeros, .len = padding };
            count += 1;
        }
        try self.writeVectors(head[0..count], self.offset);
        try self.writeVectors(data, data_offset);
        self.offset = image.nextOffset(self.offset, &header, self.page_size);
        if (self.record_count == std.math.maxInt(u32)) return error.TooManyRecords;
        self.record_count += 1;
        image.foldRecord(&self.records, &header);
    }

    /// Fills in the header's totals and checksums and writes it at offset 0.
    pub fn finish(self: *Writer, header: *image.Header) Error!void {
        assert(header.magic == image.magic);
        assert(self.offset >= image.header_size);
        header.record_count = self.record_count;
        header.image_size = self.offset;
        header.records_checksum = self.records.final();
        header.header_checksum = image.headerChecksum(header);
        var vector = [1]std.posix.iovec_const{
            .{ .base = std.mem.asBytes(header), .len = image.header_size },
        };
        try self.writeVectors(&vector, 0);
    }

    fn writeVectors(self: *Writer, vectors: []std.posix.iovec_const, start: u64) Error!void {
        var index: usize = 0;
        var offset = start;
        // Each call writes at least one byte; a zero-length result would loop for ever.
        while (index < vectors.len) {
            if (vectors[index].len == 0) {
                index += 1;
                continue;
            }
            const batch = @min(vectors.len - index, limits.iovecs_max);
            const rc = linux.pwritev(self.fd, vectors[index..].ptr, batch, @intCast(offset));
            const errno = linux.E.init(rc);
            if (errno == .INTR) continue;
            if (errno != .SUCCESS or rc == 0) return self.fail(if (rc == 0) .IO else errno);
            offset += rc;
            var written: usize = rc;
            while (written > 0 and index < vectors.len) {
                const take = @min(written, vectors[index].len);
                vectors[index].base += take;
                vectors[index].len -= take;
                written -= take;
                if (vectors[index].len == 0) index += 1;
            }
        }
    }

    fn fail(self: *Writer, errno: linux.E) Error {
        if (self.errno == .SUCCESS) self.errno = errno;
        return switch (errno) {
            .NOSPC, .DQUOT => error.NoSpace,
            .FBIG => error.FileTooBig,
            else => error.Io,
        };
    }
};

test "image_writer: records land at the offsets the format computes" {
    const path = "/tmp/dmtcp-image-writer-test.dmtcp";
    const flags: linux.O = .{ .ACCMODE = .RDWR, .CREAT = true, .TRUNC = true };
    const rc = linux.openat(linux.AT.FDCWD, path, flags, 0o600);
    try std.testing.expectEqual(linux.E.SUCCESS, linux.E.init(rc));
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    defer _ = linux.unlinkat(linux.AT.FDCWD, path, 0);
    var writer = Writer.init(fd, 4096);
    const page = [_]u8{0xab} ** 4096;
    var data = [1]std.posix.iovec_const{.{ .base = &page, .len = page.len }};
    try writer.record(.thread, &.{"12345678"}, &.{}, 0, 0);
    try writer.record(.region, &.{"abc"}, &data, 4096, image.hash(&page));
    var header: image.Header = .{ .page_size = 4096 };
    try writer.finish(&header);
    try std.testing.expectEqual(@as(u32, 2), header.record_count);
    try std.testing.expectEqual(@as(u64, 8192 + 4096), header.image_size);
    var byte: [1]u8 = undefined;
    _ = linux.pread(fd, &byte, 1, 8192);
    try std.testing.expectEqual(@as(u8, 0xab), byte[0]);
}
