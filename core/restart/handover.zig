//! Mixed trees: a computation may hold 64-bit and 32-bit processes (x86_64 and i386, aarch64
//! and armv7). One mtcp_restart (of the first image's word size) forks the whole tree; a
//! process whose image is of the other word size then execs the other mtcp_restart
//! (DMTCP_NATIVE_DIR/<sibling>/mtcp_restart, which `dmtcp restart` passes) on its image. What
//! tree.zig prepared stays: the process (pid, session, group, zombie children, pid map entry)
//! and its descriptors, which are not close-on-exec, at their numbers. Three variables say
//! what those descriptors are, and their presence makes the new mtcp_restart skip the tree:
//!
//!   DMTCP_RESTART_ONE=<fd_base>:<connection fd>:<pid map fd>:<pid map count>
//!   DMTCP_RESTART_PIPES=<inode>:<read fd>:<write fd>,...   (this process's pipe ends)
//!   DMTCP_RESTART_SHARED=<inode>:<path hash>:<memfd>,...    (every shared memory object)
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const arch = @import("arch").current;
const limits = @import("limits");
const tree = @import("tree.zig");
const pid_map = @import("pid_map.zig");
const fail = @import("fail.zig").fail;

pub const one_prefix = "DMTCP_RESTART_ONE=";
const pipes_prefix = "DMTCP_RESTART_PIPES=";
const shared_prefix = "DMTCP_RESTART_SHARED=";
const handover_count = 3;

var text: [limits.handover_text_size_max]u8 = undefined;
var text_size: usize = 0;
var program: [limits.path_size_max + 32:0]u8 = undefined;
var envp: [limits.restart_env_count_max + handover_count + 1:null]?[*:0]const u8 = undefined;

/// In the forked process of target `own`: becomes the other word size's mtcp_restart.
pub fn execSibling(own: *const tree.Target, native_dir: ?[]const u8) noreturn {
    assert(own.connection_fd >= -1);
    assert(tree.inherited_count <= tree.inherited.len);
    const directory = native_dir orelse
        fail("an image of the other word size needs DMTCP_NATIVE_DIR (dmtcp restart sets it)");
    const where = .{ directory, arch.sibling };
    const path = std.fmt.bufPrintZ(&program, "{s}/{s}/mtcp_restart", where) catch
        fail("DMTCP_NATIVE_DIR is too long");
    text_size = 0;
    append("{s}{d}:{d}:{d}:{d}", .{
        one_prefix, tree.fd_base, own.connection_fd, pid_map.fd, pid_map.count,
    });
    const one = finish(0);
    const pipes = appendPipes();
    const shared = appendShared();
    var count: usize = 0;
    for (std.os.environ) |entry| {
        if (std.mem.startsWith(u8, std.mem.span(entry), "DMTCP_RESTART_")) continue;
        if (count == limits.restart_env_count_max) break;
        envp[count] = entry;
        count += 1;
    }
    for ([handover_count][*:0]const u8{ one, pipes, shared }) |entry| {
        envp[count] = entry;
        count += 1;
    }
    envp[count] = null;
    const argv = [_:null]?[*:0]const u8{ path.ptr, own.path };
    _ = linux.execve(path.ptr, &argv, &envp);
    fail("cannot run the mtcp_restart of the other word size (DMTCP_NATIVE_DIR)");
}

fn appendPipes() [*:0]const u8 {
    const start = text_size;
    append(pipes_prefix, .{});
    for (tree.inherited[0..tree.inherited_count], 0..) |pipe, index| {
        const separator = if (index == 0) "" else ",";
        append("{s}{d}:{d}:{d}", .{ separator, pipe.inode, pipe.read_fd, pipe.write_fd });
    }
    return finish(start);
}

fn appendShared() [*:0]const u8 {
    const start = text_size;
    append(shared_prefix, .{});
    for (tree.objects[0..tree.object_count], 0..) |object, index| {
        const separator = if (index == 0) "" else ",";
        append("{s}{d}:{d}:{d}", .{ separator, object.inode, object.path_hash, object.fd });
    }
    return finish(start);
}

/// Formats into `text` after what is there, keeping one byte for the closing NUL.
fn append(comptime fmt: []const u8, args: anytype) void {
    const written = std.fmt.bufPrint(text[text_size .. text.len - 1], fmt, args) catch
        fail("too many descriptors to hand to the other mtcp_restart");
    text_size += written.len;
    assert(text_size < text.len);
}

/// Ends the variable that began at `start` with its NUL.
fn finish(start: usize) [*:0]const u8 {
    assert(start < text_size);
    text[text_size] = 0;
    text_size += 1;
    return @ptrCast(&text[start]);
}

/// In the exec'd mtcp_restart: takes what the forking one prepared; returns the target index.
pub fn adopt(path: [*:0]const u8, one: []const u8) usize {
    assert(tree.target_count == 0);
    tree.addTarget(path);
    var fields: [4]i64 = undefined;
    parseNumbers(one, ':', &fields);
    tree.fd_base = @intCast(fields[0]);
    tree.targets[0].connection_fd = @intCast(fields[1]);
    pid_map.fd = @intCast(fields[2]);
    pid_map.count = @intCast(fields[3]);
    var entries = std.mem.tokenizeScalar(u8, variable(pipes_prefix) orelse "", ',');
    while (entries.next()) |entry| {
        if (tree.inherited_count == tree.inherited.len) fail("DMTCP_RESTART_PIPES is too long");
        var triple: [3]i64 = undefined;
        parseNumbers(entry, ':', &triple);
        tree.inherited[tree.inherited_count] = .{
            .inode = @intCast(triple[0]),
            .read_fd = @intCast(triple[1]),
            .write_fd = @intCast(triple[2]),
        };
        tree.inherited_count += 1;
    }
    entries = std.mem.tokenizeScalar(u8, variable(shared_prefix) orelse "", ',');
    while (entries.next()) |entry| {
        if (tree.object_count == tree.objects.len) fail("DMTCP_RESTART_SHARED is too long");
        var triple: [3]u64 = undefined;
        parseNumbers(entry, ':', &triple);
        tree.objects[tree.object_count] = .{
            .inode = @intCast(triple[0]),
            .path_hash = triple[1],
            .size = 0,
            .fd = @intCast(triple[2]),
        };
        tree.object_count += 1;
    }
    assert(tree.fd_base >= limits.restart_fd_base_min);
    return 0;
}

fn parseNumbers(text_in: []const u8, separator: u8, out: anytype) void {
    const Number = @TypeOf(out[0]);
    var parts = std.mem.splitScalar(u8, text_in, separator);
    for (out) |*number| {
        const part = parts.next() orelse fail("malformed DMTCP_RESTART_* variable");
        number.* = std.fmt.parseInt(Number, part, 10) catch
            fail("malformed DMTCP_RESTART_* variable");
    }
    if (parts.next() != null) fail("malformed DMTCP_RESTART_* variable");
}

fn variable(comptime prefix: []const u8) ?[]const u8 {
    for (std.os.environ) |entry| {
        const value = std.mem.span(entry);
        if (std.mem.startsWith(u8, value, prefix)) return value[prefix.len..];
    }
    return null;
}
