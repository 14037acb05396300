//! `zig build format-manifest`: prints every wire struct's size, field offsets and enum values
//! as JSON, so test/unit/format-mirror.test.ts can check the TypeScript mirror against it.
const std = @import("std");
const format = @import("format");

pub fn main() !void {
    var buffer: [16384]u8 = undefined;
    var writer = std.fs.File.stdout().writer(&buffer);
    const out = &writer.interface;
    const protocol = format.protocol;
    try out.print("{{\"protocol\":{{\"magic\":{d},\"version\":{d},\"header_size\":{d},", .{
        protocol.magic, protocol.version, protocol.header_size,
    });
    try out.print("\"payload_size_max\":{d},\"token_size\":{d},", .{
        protocol.payload_size_max, protocol.token_size,
    });
    try out.writeAll("\"fields\":");
    try writeFields(out, protocol.Header);
    inline for (.{ "Kind", "WorkerState", "Command", "Status", "Barrier", "Arch" }) |name| {
        try out.print(",\"{s}\":", .{name});
        try writeEnum(out, @field(protocol, name));
    }
    try out.writeAll("}}\n");
    try out.flush();
}

fn writeFields(out: *std.Io.Writer, comptime T: type) !void {
    try out.writeAll("{");
    inline for (@typeInfo(T).@"struct".fields, 0..) |field, index| {
        if (index > 0) try out.writeAll(",");
        try out.print("\"{s}\":{{\"offset\":{d},\"size\":{d}}}", .{
            field.name, @offsetOf(T, field.name), @sizeOf(field.type),
        });
    }
    try out.writeAll("}");
}

fn writeEnum(out: *std.Io.Writer, comptime E: type) !void {
    try out.writeAll("{");
    inline for (@typeInfo(E).@"enum".fields, 0..) |field, index| {
        if (index > 0) try out.writeAll(",");
        try out.print("\"{s}\":{d}", .{ field.name, field.value });
    }
    try out.writeAll("}");
}
