//! `zig build format-manifest`: prints every wire and image struct's size, field offsets and
//! enum values as JSON, so test/unit/format-mirror.test.ts can check the TypeScript mirror
//! against it.
const std = @import("std");
const format = @import("format");

pub fn main() !void {
    var buffer: [65536]u8 = undefined;
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
    try out.writeAll("},");
    try writeImage(out);
    try out.writeAll("}\n");
    try out.flush();
}

/// The image format: constants, every record struct's fields, every enumeration.
fn writeImage(out: *std.Io.Writer) !void {
    const image = format.image;
    try out.print("\"image\":{{\"magic\":\"{x:0>16}\",\"version\":{d},", .{
        image.magic, image.version,
    });
    try out.print("\"header_size\":{d},\"record_header_size\":{d},\"body_size_max\":{d},", .{
        image.header_size, image.record_header_size, image.body_size_max,
    });
    try out.print("\"data_size_max\":{d},", .{
        image.data_size_max,
    });
    try out.writeAll("\"structs\":{");
    const structs = .{
        "Header",      "RecordHeader", "Process",      "Region",        "Run",
        "Thread",      "Descriptor",   "SignalAction", "PendingSignal", "Timer",
        "ProcessTree", "Zombie",       "Pipe",         "Socket",        "FileDescription",
        "Terminal",    "Pty",          "Event",        "Epoll",         "EpollEntry",
    };
    inline for (structs, 0..) |name, index| {
        if (index > 0) try out.writeAll(",");
        const T = @field(image, name);
        try out.print("\"{s}\":{{\"size\":{d},\"fields\":", .{ name, @sizeOf(T) });
        try writeFields(out, T);
        try out.writeAll("}");
    }
    try out.writeAll("}");
    const enums = .{
        "RecordTag", "Backing",   "ThreadRole",  "DescriptorKind",
        "PipeEnd",   "TimerKind", "SocketState",
    };
    inline for (enums) |name| {
        try out.print(",\"{s}\":", .{name});
        try writeEnum(out, @field(image, name));
    }
    try out.writeAll(",\"RegionFlags\":");
    try writeFlags(out, image.RegionFlags);
    try out.writeAll("}");
}

fn writeFlags(out: *std.Io.Writer, comptime T: type) !void {
    try out.writeAll("{");
    inline for (@typeInfo(T).@"struct".fields, 0..) |field, index| {
        if (index > 0) try out.writeAll(",");
        try out.print("\"{s}\":{d}", .{ field.name, @bitOffsetOf(T, field.name) });
    }
    try out.writeAll("}");
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
