//! Step 0, before anything else: the process tree of several images. One mtcp_restart is
//! given every image of a computation (on this host) and the coordinator connection of each
//! (DMTCP_RESTART_FDS, in image order). It reads the small records of every image (process
//! tree, pipes, descriptors, shared regions) and then, in this order:
//!  1. moves its descriptors above every number the images use, so that no restored
//!     descriptor ever lands on one of ours;
//!  2. creates what the processes share: one real pipe per pipe whose two ends the images
//!     hold (refilled with its buffered bytes, as is a FIFO), one socketpair per pair of
//!     Unix sockets and one listening socket per listening one (sockets.zig), one open file
//!     description per description several descriptors shared (descriptions.zig), one
//!     pseudo-terminal per one whose master they hold (ptys.zig), one memfd per shared
//!     memory object, and the pid map each process writes its new kernel pid to (pid_map.zig);
//!  3. forks the tree, parents before children, each child in its session (taking its
//!     pseudo-terminal as controlling terminal again) and group (setsid, setpgid on both
//!     sides of the fork, as shells do), then each process its unreaped children, which exit
//!     at once with their recorded status (zombies.zig); other roots are double-forked so
//!     that, as before, init is their parent;
//!  4. in each process, closes what is not its own; the process then restores its image.
//! A single image goes the same way (a tree of one).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const limits = @import("limits");
const image = @import("format").image;
const state = @import("state.zig");
const fail = @import("fail.zig").fail;
const sockets = @import("sockets.zig");
const descriptions = @import("descriptions.zig");
const ptys = @import("ptys.zig");
const pid_map = @import("pid_map.zig");
const zombies = @import("zombies.zig");

pub const Target = struct {
    path: [*:0]const u8,
    connection_fd: i32 = -1,
    /// Zero ids when the image has no process_tree record: a root with no children.
    tree: image.ProcessTree = std.mem.zeroes(image.ProcessTree),
    elf_class: u8 = 0,
};

const PipePlan = struct {
    inode: u64,
    seen_read: bool = false,
    seen_write: bool = false,
    capacity: u32 = 0,
    byte_count: u32 = 0,
    data_target: u32 = 0,
    data_offset: u64 = 0,
    /// The pipe (or the FIFO, opened for reading and writing), once created; -1 before.
    read_fd: i32 = -1,
    write_fd: i32 = -1,
};

pub const SharedObject = struct { inode: u32, path_hash: u64, size: u64, fd: i32 = -1 };
const Use = struct { target: u16, pipe: u16 };

pub var targets: [limits.processes_max]Target = undefined;
pub var target_count: usize = 0;
var pipes: [limits.pipes_max]PipePlan = undefined;
var pipe_count: usize = 0;
var uses: [limits.pipes_max * 4]Use = undefined;
var use_count: usize = 0;
pub var objects: [limits.shared_objects_max]SharedObject = undefined;
pub var object_count: usize = 0;
var fd_max: i32 = 2;

/// This process's own pipe ends, sockets and descriptions, handed to the runtime
/// (RestartInfo.pipes).
pub var inherited: [limits.inherited_max]image.InheritedPipe = undefined;
pub var inherited_count: usize = 0;
/// The first number our own descriptors may take.
pub var fd_base: i32 = limits.restart_fd_base_min;

pub fn addTarget(path: [*:0]const u8) void {
    if (target_count == targets.len) fail("too many images for one restart");
    targets[target_count] = .{ .path = path };
    target_count += 1;
}

/// DMTCP_RESTART_FDS=<fd>,<fd>,...: one coordinator connection per image, in image order.
pub fn takeConnections(text: []const u8) void {
    var numbers = std.mem.tokenizeScalar(u8, text, ',');
    var index: usize = 0;
    while (numbers.next()) |number| : (index += 1) {
        if (index == target_count) fail("DMTCP_RESTART_FDS names more connections than images");
        targets[index].connection_fd = std.fmt.parseInt(i32, number, 10) catch
            fail("DMTCP_RESTART_FDS is not a list of descriptors");
    }
}

/// Steps 1 to 4; returns the index of the image this process restores.
pub fn build() usize {
    assert(target_count > 0);
    for (0..target_count) |index| readPlan(index);
    fd_base = @max(fd_max + 1, limits.restart_fd_base_min);
    for (targets[0..target_count]) |*target| target.connection_fd = lift(target.connection_fd);
    createShared();
    const current = forkTree();
    zombies.fork(current, target_count);
    keepOwn(current);
    return current;
}

/// Reads the records of one image that the tree needs; memory is read later, per process.
fn readPlan(index: usize) void {
    const fd = openImage(targets[index].path);
    defer _ = linux.close(fd);
    var header: image.Header = undefined;
    readAt(fd, std.mem.asBytes(&header), 0);
    if (header.magic != image.magic or header.version != image.version) {
        fail("not a dmtcp image of this version");
    }
    targets[index].elf_class = header.elf_class;
    var offset: u64 = image.header_size;
    var record_index: u32 = 0;
    while (record_index < header.record_count) : (record_index += 1) {
        var record: image.RecordHeader = undefined;
        readAt(fd, std.mem.asBytes(&record), offset);
        if (record.body_size > image.body_size_max) fail("corrupt image: record body too large");
        const body = state.body[0..record.body_size];
        if (wanted(record.tag)) {
            readAt(fd, body, offset + image.record_header_size);
            image.checkBody(&record, body) catch fail("corrupt image: malformed record");
            const data_offset = image.dataOffset(offset, &record, header.page_size);
            planRecord(index, record.tag, body, data_offset);
        }
        offset = image.nextOffset(offset, &record, header.page_size);
    }
}

fn wanted(tag: u16) bool {
    return switch (std.meta.intToEnum(image.RecordTag, tag) catch return false) {
        .process_tree, .pipe, .descriptor, .region, .socket, .file_description => true,
        .pty, .terminal => true,
        else => false,
    };
}

fn planRecord(index: usize, tag: u16, body: []align(8) const u8, data_offset: u64) void {
    switch (@as(image.RecordTag, @enumFromInt(tag))) {
        .process_tree => {
            const size = @sizeOf(image.ProcessTree);
            const tree = std.mem.bytesToValue(image.ProcessTree, body[0..size]);
            targets[index].tree = tree;
            zombies.plan(index, body[size..], tree.zombie_count);
        },
        .pipe => planPipe(index, body, data_offset),
        .descriptor => {
            const size = @sizeOf(image.Descriptor);
            const descriptor = std.mem.bytesToValue(image.Descriptor, body[0..size]);
            fd_max = @max(fd_max, descriptor.fd);
        },
        .region => planRegion(body),
        .socket => sockets.plan(index, body, data_offset),
        .file_description => descriptions.plan(index, body),
        .pty => ptys.plan(index, body, data_offset),
        .terminal => ptys.planTerminal(index, body),
        else => unreachable,
    }
}

fn planPipe(index: usize, body: []const u8, data_offset: u64) void {
    const pipe = std.mem.bytesToValue(image.Pipe, body[0..@sizeOf(image.Pipe)]);
    fd_max = @max(fd_max, pipe.fd);
    const plan = findPipe(pipe.inode);
    if (pipe.end == @intFromEnum(image.PipeEnd.read)) {
        plan.seen_read = true;
    } else {
        plan.seen_write = true;
    }
    plan.capacity = @max(plan.capacity, pipe.capacity);
    if (pipe.byte_count > 0 and plan.byte_count == 0) {
        plan.byte_count = pipe.byte_count;
        plan.data_target = @intCast(index);
        plan.data_offset = data_offset;
    }
    if (pipe.path_size > 0 and plan.read_fd < 0) {
        openFifo(plan, body[@sizeOf(image.Pipe)..][0..pipe.path_size]);
    }
    if (use_count == uses.len) fail("too many pipe descriptors in the images");
    const pipe_index = (@intFromPtr(plan) - @intFromPtr(&pipes)) / @sizeOf(PipePlan);
    uses[use_count] = .{ .target = @intCast(index), .pipe = @intCast(pipe_index) };
    use_count += 1;
}

fn findPipe(inode: u64) *PipePlan {
    for (pipes[0..pipe_count]) |*plan| if (plan.inode == inode) return plan;
    if (pipe_count == pipes.len) fail("too many pipes in the images");
    pipes[pipe_count] = .{ .inode = inode };
    pipe_count += 1;
    return &pipes[pipe_count - 1];
}

/// A FIFO stays open for reading and writing until each process has opened its own end.
fn openFifo(plan: *PipePlan, path: []const u8) void {
    var name: [limits.path_size_max + 1]u8 = undefined;
    if (path.len >= name.len) return;
    @memcpy(name[0..path.len], path);
    name[path.len] = 0;
    const flags: linux.O = .{ .ACCMODE = .RDWR, .NONBLOCK = true };
    const rc = linux.openat(linux.AT.FDCWD, @ptrCast(&name), flags, 0);
    if (linux.E.init(rc) != .SUCCESS) return;
    plan.read_fd = @intCast(rc);
    plan.write_fd = plan.read_fd;
}

fn planRegion(body: []const u8) void {
    const region = std.mem.bytesToValue(image.Region, body[0..@sizeOf(image.Region)]);
    const flags: image.RegionFlags = @bitCast(region.flags);
    if (!flags.shared or !flags.deleted or region.inode == 0) return;
    const path_hash = image.hash(image.regionPath(body));
    const end = region.file_offset + (region.end - region.start);
    for (objects[0..object_count]) |*object| {
        if (object.inode == region.inode and object.path_hash == path_hash) {
            object.size = @max(object.size, end);
            return;
        }
    }
    if (object_count == objects.len) fail("too many shared memory objects in the images");
    objects[object_count] = .{ .inode = region.inode, .path_hash = path_hash, .size = end };
    object_count += 1;
}

/// The memfd that stands for the shared object this region maps, if there is one.
pub fn sharedObject(region: image.Region, path: []const u8) ?i32 {
    if (region.inode == 0) return null;
    const path_hash = image.hash(path);
    for (objects[0..object_count]) |object| {
        if (object.inode == region.inode and object.path_hash == path_hash) return object.fd;
    }
    return null;
}

/// Once this process's memory is mapped, the mappings hold the objects.
pub fn closeSharedObjects() void {
    for (objects[0..object_count]) |*object| {
        if (object.fd >= 0) _ = linux.close(object.fd);
        object.fd = -1;
    }
}

/// Pipes whose two ends the images hold, shared memory objects, and the pid map.
fn createShared() void {
    for (pipes[0..pipe_count]) |*plan| {
        if (plan.read_fd >= 0) {
            // A FIFO, open for reading and writing: refilled through that one descriptor.
            plan.read_fd = lift(plan.read_fd);
            plan.write_fd = plan.read_fd;
            if (plan.byte_count > 0) refill(plan);
            continue;
        }
        if (!plan.seen_read or !plan.seen_write) continue;
        var ends: [2]i32 = undefined;
        if (linux.E.init(linux.pipe2(&ends, .{})) != .SUCCESS) fail("cannot create a pipe");
        if (plan.capacity > 0) _ = linux.fcntl(ends[1], 1031, plan.capacity);
        plan.read_fd = lift(ends[0]);
        plan.write_fd = lift(ends[1]);
        if (plan.byte_count > 0) refill(plan);
    }
    sockets.create();
    descriptions.create();
    ptys.create();
    for (objects[0..object_count]) |*object| {
        const rc = linux.memfd_create("dmtcp-shared", 0);
        if (linux.E.init(rc) != .SUCCESS) fail("cannot create shared memory (memfd_create)");
        object.fd = lift(@intCast(rc));
        if (linux.E.init(linux.ftruncate(object.fd, @intCast(object.size))) != .SUCCESS) {
            fail("cannot size shared memory");
        }
    }
    pid_map.create(target_count + zombies.count);
    pid_map.fd = lift(pid_map.fd);
}

/// Writes the bytes the pipe held at the checkpoint back into it.
fn refill(plan: *const PipePlan) void {
    assert(plan.byte_count <= limits.pipe_size_max);
    assert(plan.byte_count <= state.read_buffer.len);
    const bytes = state.read_buffer[0..plan.byte_count];
    readImageAt(plan.data_target, bytes, plan.data_offset);
    var done: usize = 0;
    while (done < bytes.len) {
        const rc = linux.write(plan.write_fd, bytes[done..].ptr, bytes.len - done);
        if (linux.E.init(rc) == .INTR) continue;
        if (linux.E.init(rc) != .SUCCESS or rc == 0) fail("cannot refill a pipe");
        done += rc;
    }
}

fn isRoot(index: usize) bool {
    const ppid = targets[index].tree.virtual_ppid;
    if (targets[index].tree.virtual_pid == 0) return true;
    for (targets[0..target_count]) |other| {
        if (other.tree.virtual_pid != 0 and other.tree.virtual_pid == ppid) return false;
    }
    return true;
}

fn isChildOf(index: usize, parent: usize) bool {
    const tree = targets[index].tree;
    return index != parent and tree.virtual_pid != 0 and
        tree.virtual_ppid == targets[parent].tree.virtual_pid;
}

/// Forks every process, parents first; returns the image index this process became.
fn forkTree() usize {
    var root: ?usize = null;
    for (0..target_count) |index| if (isRoot(index)) {
        root = index;
        break;
    };
    var current = root orelse fail("the images form no tree (every parent is among them)");
    writeEntry(current, linux.getpid());
    setIds(current);
    // Other roots: double fork, so that their parent is init, as it was.
    for (current + 1..target_count) |index| {
        if (!isRoot(index)) continue;
        if (forkOrphan(index)) {
            current = index;
            break;
        }
    }
    // Depth first: a child starts over with its own children; each step forks or moves on.
    var index: usize = 0;
    var steps: usize = 0;
    const steps_max = target_count * (target_count + 1) + 1;
    while (index < target_count) : (steps += 1) {
        assert(steps < steps_max);
        if (!isChildOf(index, current)) {
            index += 1;
            continue;
        }
        const pid = forkProcess();
        if (pid == 0) {
            current = index;
            setIds(current);
            index = 0;
            continue;
        }
        writeEntry(index, pid);
        joinGroup(pid, index);
        index += 1;
    }
    return current;
}

fn forkProcess() i32 {
    const rc = linux.fork();
    if (linux.E.init(rc) != .SUCCESS) fail("cannot fork a process of the tree");
    return @intCast(rc);
}

/// True in the grandchild that becomes target `index`; the parent waits for the middle one.
fn forkOrphan(index: usize) bool {
    const middle = forkProcess();
    if (middle == 0) {
        const pid = forkProcess();
        if (pid == 0) {
            setIds(index);
            return true;
        }
        writeEntry(index, pid);
        linux.exit_group(0);
    }
    var status: u32 = 0;
    _ = linux.wait4(middle, &status, 0, null);
    return false;
}

/// In the new process: its entry in the pid map, its session, its group.
fn setIds(index: usize) void {
    const tree = targets[index].tree;
    const pid = linux.getpid();
    writeEntry(index, pid);
    if (tree.virtual_pid == 0) return;
    if (tree.virtual_sid == tree.virtual_pid) {
        _ = linux.setsid();
        ptys.takeControllingTerminal(index);
    }
    joinGroup(0, index);
}

/// setpgid from both sides of the fork (0 is the caller), whichever runs first; the group
/// leader's new pid comes from the pid map, where its parent wrote it right after its fork.
fn joinGroup(pid: i32, index: usize) void {
    const tree = targets[index].tree;
    // A session leader makes its own group with setsid, which fails once it leads one.
    if (pid != 0 and tree.virtual_sid == tree.virtual_pid) return;
    if (tree.virtual_pgid == tree.virtual_pid) {
        _ = linux.setpgid(pid, 0);
        return;
    }
    for (0..target_count) |leader| {
        if (targets[leader].tree.virtual_pid != tree.virtual_pgid) continue;
        const leader_pid = pid_map.read(leader);
        if (leader_pid > 0) _ = linux.setpgid(pid, leader_pid);
        return;
    }
}

fn writeEntry(index: usize, pid: i32) void {
    pid_map.write(index, targets[index].tree.virtual_pid, pid);
}

/// Step 4: close the connections of the other images and the pipes this process does not
/// hold; list the ones it does for the runtime.
fn keepOwn(current: usize) void {
    for (targets[0..target_count], 0..) |target, index| {
        if (index != current and target.connection_fd >= 0) _ = linux.close(target.connection_fd);
    }
    inherited_count = 0;
    for (pipes[0..pipe_count], 0..) |plan, index| {
        if (plan.read_fd < 0) continue;
        if (!uses_pipe(current, index)) {
            _ = linux.close(plan.read_fd);
            if (plan.write_fd != plan.read_fd) _ = linux.close(plan.write_fd);
            continue;
        }
        handDown(plan.inode, plan.read_fd, plan.write_fd);
    }
    sockets.keepOwn(current);
    descriptions.keepOwn(current);
    ptys.keepOwn(current);
}

/// Lists one thing this process inherited for the runtime, under `key`.
pub fn handDown(key: u64, read_fd: i32, write_fd: i32) void {
    if (inherited_count == inherited.len) fail("too many pipes, sockets and files to hand down");
    assert(read_fd >= fd_base);
    inherited[inherited_count] = .{ .inode = key, .read_fd = read_fd, .write_fd = write_fd };
    inherited_count += 1;
}

/// A descriptor number an image uses: ours go above all of them.
pub fn noteFd(fd: i32) void {
    fd_max = @max(fd_max, fd);
}

/// Reads `buffer.len` bytes at `offset` of image `target`.
pub fn readImageAt(target: usize, buffer: []u8, offset: u64) void {
    assert(target < target_count);
    const fd = openImage(targets[target].path);
    defer _ = linux.close(fd);
    readAt(fd, buffer, offset);
}

fn uses_pipe(target: usize, pipe: usize) bool {
    for (uses[0..use_count]) |use| {
        if (use.target == target and use.pipe == pipe) return true;
    }
    return false;
}

/// Moves `fd` to the lowest free number at or above `fd_base`.
pub fn lift(fd: i32) i32 {
    if (fd < 0 or fd >= fd_base) return fd;
    const rc = linux.fcntl(fd, linux.F.DUPFD, @intCast(fd_base));
    if (linux.E.init(rc) != .SUCCESS) fail("too many descriptors for the restart (ulimit -n)");
    _ = linux.close(fd);
    return @intCast(rc);
}

pub fn liftImage(fd: i32) i32 {
    return lift(fd);
}

fn openImage(path: [*:0]const u8) i32 {
    const rc = linux.openat(linux.AT.FDCWD, path, .{ .CLOEXEC = true }, 0);
    if (linux.E.init(rc) != .SUCCESS) fail("cannot open an image");
    return @intCast(rc);
}

fn readAt(fd: i32, buffer: []u8, offset: u64) void {
    var done: usize = 0;
    while (done < buffer.len) {
        const rc = linux.pread(fd, buffer[done..].ptr, buffer.len - done, @intCast(offset + done));
        switch (linux.E.init(rc)) {
            .SUCCESS => if (rc == 0) fail("truncated image"),
            .INTR => continue,
            else => fail("cannot read an image"),
        }
        done += rc;
    }
}
