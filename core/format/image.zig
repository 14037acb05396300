//! The checkpoint image format, version 1: the one definition. The runtime writes it
//! (core/runtime/image_writer.zig), mtcp_restart reads it (core/restart/), `zig build
//! format-manifest` prints its layout for the TypeScript mirror, and docs/image-format.md
//! explains it. test/vectors/image-header.json holds byte vectors for the header.
//!
//! Grammar (all integers little-endian, addresses u64 even on 32-bit targets):
//!
//!     image  = Header (4096 bytes) record{Header.record_count}
//!     record = RecordHeader body pad8 [padpage data]
//!
//! `body` is `RecordHeader.body_size` bytes: one extern struct for the record's tag followed by
//! its variable parts (a path, a run list). `data` is `RecordHeader.data_size` bytes of raw
//! memory pages and starts on a page boundary of the file (so a future restart can map it
//! straight from the image); records without data are followed directly by the next one, at
//! the next multiple of 8. `Header.image_size` is the file's size, so truncation is detected
//! before anything is read.
//!
//! Checksums are XxHash64 (seed 0), chosen for speed (about memory bandwidth) and because Bun
//! has it built in (`Bun.hash.xxHash64`) for the TypeScript mirror:
//!   * `Header.header_checksum`: the header's first 4088 bytes;
//!   * `RecordHeader.body_checksum`: the record header's first 16 bytes, then the body;
//!   * `RecordHeader.data_checksum`: the data (0 when there is none);
//!   * `Header.records_checksum`: the sequence of every record's body and data checksums, so a
//!     record dropped, repeated or reordered is caught.
//! The header is written last (at offset 0), after every record is on disk.
const std = @import("std");
const builtin = @import("builtin");
const assert = std.debug.assert;
const protocol = @import("protocol.zig");

/// "DMTCPIMG" as little-endian bytes.
pub const magic: u64 = 0x474d49504354_4d44;
pub const version: u16 = 1;
pub const header_size = 4096;
pub const record_header_size = 32;
/// Largest body we accept: a region's struct, a path and its run list fit well inside.
pub const body_size_max: u32 = 64 * 1024;
/// Stored bytes in one record: a larger region becomes several records, so that a reader
/// (restart's validation in TypeScript, `dmtcp inspect`) checksums each record's data in one
/// fixed buffer instead of holding a whole heap in memory.
pub const data_size_max: u64 = 64 * 1024 * 1024;
pub const program_name_size = 256;
pub const kernel_release_size = 65;

pub const elf_class_32: u8 = 1;
pub const elf_class_64: u8 = 2;

pub const Header = extern struct {
    magic: u64 = magic,
    version: u16 = version,
    /// protocol.Arch of the process (and so of the mtcp_restart that can restore it).
    arch: u16 = @intFromEnum(protocol.Arch.unknown),
    elf_class: u8 = 0,
    reserved0: [3]u8 = .{ 0, 0, 0 },
    page_size: u32 = 0,
    header_size: u32 = header_size,
    record_count: u32 = 0,
    worker_id: u32 = 0,
    /// CLOCK_REALTIME at the checkpoint.
    creation_time_ns: u64 = 0,
    computation_id: u64 = 0,
    generation: u32 = 0,
    peer_count: u32 = 0,
    /// The process id when checkpointed (the restarted process has a new one).
    real_pid: u32 = 0,
    reserved2: u32 = 0,
    /// Size of the whole file: a shorter file is truncated, a longer one is not ours.
    image_size: u64 = 0,
    records_checksum: u64 = 0,
    /// Address of the restored runtime's restart entry (`fn (*const RestartInfo) noreturn`).
    restart_entry: u64 = 0,
    /// Thread pointer mtcp_restart sets before calling `restart_entry` (the main thread's).
    restart_thread_pointer: u64 = 0,
    /// NUL-padded.
    program_name: [program_name_size]u8 = [_]u8{0} ** program_name_size,
    /// uname().release of the checkpointing kernel, NUL-padded; informational.
    kernel_release: [kernel_release_size]u8 = [_]u8{0} ** kernel_release_size,
    reserved1: [header_size - 8 - 417]u8 = [_]u8{0} ** (header_size - 8 - 417),
    header_checksum: u64 = 0,
};

pub const RecordTag = enum(u16) {
    /// Process-wide state: cwd, umask, the kernel's memory-map fields, name. One per image.
    process = 1,
    /// One memory mapping or a part of one, with its stored pages as data.
    region = 2,
    /// One thread: identity, thread pointer, where it stopped. Informational; the runtime
    /// restores threads from its own restored memory.
    thread = 3,
    /// One open file descriptor.
    descriptor = 4,
    /// One signal's disposition (only those not at their default).
    signal_action = 5,
    /// One signal pending at the checkpoint, process-wide or for one thread, with its siginfo.
    pending_signal = 6,
    /// One armed interval timer (setitimer, alarm) or POSIX timer (timer_create).
    timer = 7,
    /// The process's place in its computation: virtual ids, and its unreaped children.
    /// One per image. (Tags 10 and up belong to the processes kinds: pids.zig, pipes.zig.)
    process_tree = 10,
    /// One descriptor on a pipe or FIFO, with the bytes buffered in it as data.
    pipe = 11,
    /// One descriptor on a socket: its inode, its peer's, and the bytes queued for reading
    /// as data. (Tags 12 and up: sockets.zig, descriptions.zig.)
    socket = 12,
    /// A regular file's open file description shared with another descriptor (another
    /// process's, after fork, or a dup): restart opens it once for all of them.
    file_description = 13,
    /// The controlling terminal on 0, 1 or 2: its settings and whether the process's group
    /// was in its foreground. At most one per image (the runtime writes one).
    terminal = 14,
    /// One descriptor on either end of a pseudo-terminal (ptys.zig).
    pty = 15,
    /// One eventfd, signalfd or timerfd descriptor (events.zig).
    event = 16,
    /// One epoll descriptor and what it watches (epoll.zig).
    epoll = 17,
};

pub const RecordHeader = extern struct {
    tag: u16,
    /// Body layout version of this tag; 1 for every tag today.
    layout: u16 = 1,
    body_size: u32,
    data_size: u64 = 0,
    body_checksum: u64 = 0,
    data_checksum: u64 = 0,
};

pub const Process = extern struct {
    umask: u32,
    checkpoint_signal: u32,
    /// The kernel's view of the address space (prctl PR_SET_MM_MAP fields), from
    /// /proc/self/stat and brk(0): restored so that brk() grows the old heap.
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    /// prctl(PR_GET_NAME), NUL-padded.
    comm: [16]u8,
    cwd_size: u32,
    reserved: u32 = 0,
    // Followed by cwd_size bytes of the working directory (no NUL).
};

pub const Backing = enum(u16) {
    anonymous = 1,
    heap = 2,
    stack = 3,
    /// Mapped from a file that still exists: restart maps the file again.
    file = 4,
    vdso = 5,
    vvar = 6,
    vvar_vclock = 7,
};

pub const RegionFlags = packed struct(u32) {
    shared: bool = false,
    /// The region's contents were not saved (our scratch memory): restored as zero pages.
    contents_skipped: bool = false,
    /// A file mapping whose file was deleted: every page of it is stored.
    deleted: bool = false,
    reserved: u29 = 0,
};

pub const protection_read: u32 = 1;
pub const protection_write: u32 = 2;
pub const protection_execute: u32 = 4;

pub const Region = extern struct {
    start: u64,
    end: u64,
    /// File offset of `start` for file-backed regions.
    file_offset: u64,
    /// Pages stored as data: the sum of the runs' page counts.
    page_count: u64,
    protection: u32,
    flags: u32,
    backing: u16,
    reserved: u16 = 0,
    path_size: u32,
    run_count: u32,
    /// Low 32 bits of the inode of a shared anonymous or deleted mapping (0 otherwise): one
    /// shared object has the same inode in every process that maps it, which is how restart
    /// maps it shared again. tmpfs hands out 32-bit inode numbers unless mounted inode64.
    inode: u32 = 0,
    // Followed by path_size bytes of path (no NUL), zero padding to a multiple of 8, then
    // run_count `Run`s, in increasing page order.
};

/// Pages [page_index, page_index + page_count) of the region, relative to its start, are
/// stored; they come in the data in run order. Pages in no run are zero (anonymous) or the
/// file's own (file-backed).
pub const Run = extern struct {
    page_index: u64,
    page_count: u64,
};

pub const ThreadRole = enum(u16) { main = 1, checkpoint = 2, other = 3 };

pub const Thread = extern struct {
    tid: u32,
    role: u16,
    reserved: u16 = 0,
    thread_pointer: u64,
    stack_pointer: u64,
    instruction_pointer: u64,
};

/// The kernel's `struct sigaction` (rt_sigaction), widened: the handler and restorer are
/// addresses in the restored memory; `mask` holds signals 1-64 (bit n-1 for signal n).
pub const SignalAction = extern struct {
    signal: u32,
    reserved: u32 = 0,
    handler: u64,
    flags: u64,
    restorer: u64,
    mask: u64,
};

/// The kernel's siginfo is 128 bytes on every architecture we ship.
pub const siginfo_size = 128;

pub const PendingSignal = extern struct {
    /// The thread it was sent to (its id at the checkpoint), or 0 for the whole process.
    tid: u32,
    signal: u32,
    /// As rt_sigtimedwait returned it; queued again with rt_(tg)sigqueueinfo.
    info: [siginfo_size]u8,
};

pub const TimerKind = enum(u16) {
    itimer_real = 1,
    itimer_virtual = 2,
    itimer_prof = 3,
    posix = 4,
};

pub const Timer = extern struct {
    kind: u16,
    reserved: u16 = 0,
    /// The kernel's timer id (POSIX timers; the program holds it): restart makes the same.
    id: i32 = 0,
    /// POSIX timers: the clock, and the sigevent's notify, signal, thread and value.
    clock: i32 = 0,
    notify: i32 = 0,
    signal: u32 = 0,
    /// SIGEV_THREAD_ID: the thread's id at the checkpoint.
    tid: u32 = 0,
    value: u64 = 0,
    interval_ns: u64,
    /// Time left until the next expiry at the checkpoint; 0 when disarmed.
    remaining_ns: u64,
};

pub const DescriptorKind = enum(u16) {
    /// Reopened by path with its flags, at its offset.
    regular = 1,
    directory = 2,
    dev_null = 3,
    /// 0, 1 or 2 on a terminal, pipe or socket: the restarting process's own is kept.
    inherit = 4,
    /// Something we cannot restore yet (socket, eventfd, ...): recorded, then left closed.
    unsupported = 5,
    /// A pipe or FIFO: restored from its `pipe` record, not from this one.
    pipe = 6,
    /// A socket: restored from its `socket` record, not from this one.
    socket = 7,
    /// Either end of a pseudo-terminal (beyond 0, 1 and 2): from its `pty` record.
    pty = 8,
    /// /dev/tty, /dev/zero, /dev/full, /dev/random or /dev/urandom: opened again by path.
    device = 9,
    /// An eventfd, signalfd or timerfd: from its `event` record.
    event = 10,
    /// An epoll instance: from its `epoll` record.
    epoll = 11,
};

pub const EventKind = enum(u16) { eventfd = 1, signalfd = 2, timerfd = 3 };

/// An eventfd, signalfd or timerfd, as /proc/self/fdinfo shows it.
pub const Event = extern struct {
    fd: i32,
    /// EventKind.
    kind: u16,
    reserved: u16 = 0,
    /// fcntl(F_GETFL).
    open_flags: u32,
    /// fcntl(F_GETFD): FD_CLOEXEC.
    fd_flags: u32,
    /// eventfd: its counter; signalfd: its signal mask; timerfd: expirations not yet read.
    value: u64,
    /// eventfd: 1 for EFD_SEMAPHORE; timerfd: its clock.
    detail: i32,
    reserved1: u32 = 0,
    /// timerfd: time to its next expiry (0: disarmed) and its interval.
    remaining_ns: u64 = 0,
    interval_ns: u64 = 0,
};

/// An epoll instance, followed by `entry_count` EpollEntry: what it watched, by descriptor.
pub const Epoll = extern struct {
    fd: i32,
    entry_count: u32,
    open_flags: u32,
    fd_flags: u32,
};

pub const EpollEntry = extern struct {
    fd: i32,
    /// The registered mask (EPOLLET, EPOLLONESHOT, ... included).
    events: u32,
    data: u64,
};

/// Ids as the program sees them: the kernel's ids of the first run, kept across restarts.
pub const ProcessTree = extern struct {
    virtual_pid: u32,
    virtual_ppid: u32,
    virtual_pgid: u32,
    virtual_sid: u32,
    /// The kernel's pid at the checkpoint (informational).
    real_pid: u32,
    zombie_count: u32,
    // Followed by zombie_count `Zombie`s.
};

/// A child that had exited but was not yet waited for: restart re-creates it as a zombie.
pub const Zombie = extern struct {
    virtual_pid: u32,
    /// Its status as wait() reports it.
    wait_status: u32,
};

pub const PipeEnd = enum(u16) { read = 1, write = 2 };

pub const Pipe = extern struct {
    fd: i32,
    /// PipeEnd.
    end: u16,
    reserved: u16 = 0,
    /// fcntl(F_GETFL).
    open_flags: u32,
    /// fcntl(F_GETFD): FD_CLOEXEC.
    fd_flags: u32,
    /// st_ino: both ends of one pipe have it, in every process that holds them.
    inode: u64,
    /// fcntl(F_GETPIPE_SZ).
    capacity: u32,
    /// Bytes buffered in the pipe at the checkpoint: the record's data (padded to 8 bytes).
    byte_count: u32,
    /// A FIFO's path; 0 for an anonymous pipe.
    path_size: u32,
    reserved1: u32 = 0,
    // Followed by path_size bytes of path (no NUL).
};

pub const SocketState = enum(u16) {
    /// Connected to a peer (UNIX_DIAG_PEER names it), or left by a peer that closed.
    connected = 1,
    /// Listening (SO_ACCEPTCONN) on the path it is bound to.
    listening = 2,
    /// Neither: unconnected, or not a Unix socket.
    other = 3,
};

/// AF_UNIX, the one domain whose sockets restart re-creates.
pub const socket_domain_unix: u16 = 1;

pub const Socket = extern struct {
    fd: i32,
    /// SO_DOMAIN (AF_UNIX = 1); other domains are recorded only to be left alone.
    domain: u16,
    /// SO_TYPE: SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5.
    type: u16,
    /// fcntl(F_GETFL).
    open_flags: u32,
    /// fcntl(F_GETFD): FD_CLOEXEC.
    fd_flags: u32,
    /// st_ino of this socket, the same in every process that holds it.
    inode: u64,
    /// The peer's st_ino (sock_diag UNIX_DIAG_PEER); 0 when it has none.
    peer_inode: u64,
    /// SocketState.
    state: u16,
    reserved: u16 = 0,
    /// A listening socket's backlog (UNIX_DIAG_RQLEN's wqueue); 0 otherwise.
    backlog: u32,
    /// Bytes of data: the bytes queued for reading (SOCK_STREAM), or each queued message as
    /// a u32 little-endian length then its bytes (SOCK_DGRAM, SOCK_SEQPACKET).
    byte_count: u32,
    /// Messages in the data (SOCK_DGRAM, SOCK_SEQPACKET); 0 for SOCK_STREAM.
    message_count: u32,
    /// A listening socket's bound path; 0 otherwise.
    path_size: u32,
    reserved1: u32 = 0,
    // Followed by path_size bytes of path (no NUL).
};

/// An open file description of a regular file that `fd` shares with another descriptor of the
/// computation. Its owner is the holder with the lowest (pid at the checkpoint, fd): every
/// holder names the same one, and restart opens the file once, for all of them.
pub const FileDescription = extern struct {
    fd: i32,
    owner_pid: u32,
    owner_fd: i32,
    /// fcntl(F_GETFL).
    open_flags: u32,
    /// The shared offset.
    offset: u64,
    path_size: u32,
    reserved: u32 = 0,
    // Followed by path_size bytes of path (no NUL).
};

/// The controlling terminal as a process saw it at the checkpoint (terminal.zig).
pub const Terminal = extern struct {
    /// The first of 0, 1 and 2 on the controlling terminal.
    fd: i32,
    /// 1 when the process's group was the terminal's foreground group.
    foreground: u32,
    /// The kernel's `struct termios` (TCGETS): c_iflag, c_oflag, c_cflag, c_lflag (u32
    /// each), c_line, then 19 control characters; the same on all four architectures.
    termios: [36]u8,
    /// `struct winsize` (TIOCGWINSZ).
    rows: u16,
    columns: u16,
    x_pixels: u16,
    y_pixels: u16,
    /// 1 + N when the terminal is /dev/pts/N (restart makes it the controlling terminal again
    /// if the computation holds its master); 0 otherwise.
    pty: u32 = 0,
};

pub const PtyRole = enum(u16) { master = 1, slave = 2 };

/// A descriptor on a pseudo-terminal: its master (/dev/ptmx) or its slave (/dev/pts/N).
/// Restart makes one new pseudo-terminal per index whose master the images hold.
pub const Pty = extern struct {
    fd: i32,
    /// PtyRole.
    role: u16,
    reserved: u16 = 0,
    /// N of /dev/pts/N at the checkpoint.
    index: u32,
    /// fcntl(F_GETFL).
    open_flags: u32,
    /// fcntl(F_GETFD): FD_CLOEXEC.
    fd_flags: u32,
    /// A master's data: first the bytes its slave had written that it had not read yet,
    /// `output_size` of them, then the bytes written to it that the slave had not read,
    /// `input_size` of them (padded to 8). Only one master record of a pty carries them.
    output_size: u32 = 0,
    /// The slave's `struct termios` (TCGETS answers it on either end), as in `Terminal`.
    termios: [36]u8,
    rows: u16,
    columns: u16,
    x_pixels: u16,
    y_pixels: u16,
    input_size: u32 = 0,
};

/// The settings under which a pseudo-terminal's waiting bytes are written back (at the
/// checkpoint, and into the new one at restart) so that they come out as they went in: no
/// output processing for what goes back to the master, no input processing, echo or
/// signal characters for what goes back to the slave (which stays canonical or not).
pub fn ptyRefillTermios(termios: [36]u8) [36]u8 {
    var quiet = termios;
    const iflag = std.mem.readInt(u32, quiet[0..4], .little);
    const oflag = std.mem.readInt(u32, quiet[4..8], .little);
    const lflag = std.mem.readInt(u32, quiet[12..16], .little);
    // ISTRIP INLCR IGNCR ICRNL IUCLC IXON IXOFF; OPOST; ISIG, the ECHO family, IEXTEN.
    const input_processing: u32 = 0o40 | 0o100 | 0o200 | 0o400 | 0o1000 | 0o2000 | 0o10000;
    const local: u32 = 0o1 | 0o10 | 0o20 | 0o40 | 0o100 | 0o1000 | 0o2000 | 0o4000 | 0o100000;
    std.mem.writeInt(u32, quiet[0..4], iflag & ~input_processing, .little);
    std.mem.writeInt(u32, quiet[4..8], oflag & ~@as(u32, 0o1), .little);
    std.mem.writeInt(u32, quiet[12..16], lflag & ~local, .little);
    return quiet;
}

/// The key under which an end of a re-created pseudo-terminal is handed down: bit 62 keeps
/// it apart from inodes and from `descriptionKey`.
pub fn ptyKey(index: u32, role: PtyRole) u64 {
    return (1 << 62) | (@as(u64, index) << 1) | @intFromBool(role == .slave);
}

/// The key under which a shared file description is handed down (InheritedPipe.inode): the
/// top bit keeps it apart from pipe and socket inodes.
pub fn descriptionKey(owner_pid: u32, owner_fd: i32) u64 {
    assert(owner_fd >= 0);
    return (1 << 63) | (@as(u64, owner_pid) << 32) | @as(u32, @bitCast(owner_fd));
}

/// A pipe mtcp_restart created for the whole tree before forking it, found by inode: each
/// process takes its own ends from here (RestartInfo.pipes) and closes the rest.
pub const InheritedPipe = extern struct {
    inode: u64,
    read_fd: i32,
    write_fd: i32,
};

pub const Descriptor = extern struct {
    fd: i32,
    kind: u16,
    reserved: u16 = 0,
    /// fcntl(F_GETFL).
    open_flags: u32,
    /// fcntl(F_GETFD): FD_CLOEXEC.
    fd_flags: u32,
    offset: u64,
    path_size: u32,
    reserved1: u32 = 0,
    // Followed by path_size bytes of path (no NUL).
};

/// Handed by mtcp_restart to the restored runtime's `restart_entry`. Not stored in images: an
/// agreement between the two programs of one build, versioned all the same.
pub const RestartInfo = extern struct {
    version: u32 = restart_info_version,
    image_fd: i32,
    /// The coordinator connection mtcp_restart was given (DMTCP_COORD_FD), or -1.
    coordinator_fd: i32,
    reserved: u32 = 0,
    /// mtcp_restart's NULL-terminated environment (its DMTCP_* variables only).
    envp: u64,
    /// mtcp_restart's own memory, including the stack the entry runs on: the runtime unmaps
    /// it once no thread runs there.
    restart_start: u64,
    restart_end: u64,
    /// A file of `pid_map_count` (virtual pid, new kernel pid) u32 pairs, one per process
    /// the restart re-creates, each written by its process before it restores; -1 if none.
    pid_map_fd: i32 = -1,
    pid_map_count: u32 = 0,
    /// Address of `pipe_count` InheritedPipe in mtcp_restart's memory (valid until the
    /// restore hooks are done).
    pipes: u64 = 0,
    pipe_count: u32 = 0,
    reserved1: u32 = 0,
};
pub const restart_info_version: u32 = 2;

comptime {
    assert(builtin.cpu.arch.endian() == .little);
    assert(@sizeOf(Header) == header_size);
    assert(@offsetOf(Header, "reserved1") == 417);
    assert(@offsetOf(Header, "creation_time_ns") == 32);
    assert(@offsetOf(Header, "header_checksum") == header_size - 8);
    assert(@sizeOf(RecordHeader) == record_header_size);
    assert(@sizeOf(Process) == 120);
    assert(@sizeOf(Region) == 56);
    assert(@sizeOf(Run) == 16);
    assert(@sizeOf(Thread) == 32);
    assert(@sizeOf(Descriptor) == 32);
    assert(@sizeOf(SignalAction) == 40);
    assert(@sizeOf(RestartInfo) == 64);
    assert(@sizeOf(ProcessTree) == 24);
    assert(@sizeOf(Zombie) == 8);
    assert(@sizeOf(Pipe) == 40);
    assert(@sizeOf(InheritedPipe) == 16);
    assert(@sizeOf(PendingSignal) == 136);
    assert(@sizeOf(Timer) == 48);
    assert(@sizeOf(Socket) == 56);
    assert(@sizeOf(FileDescription) == 32);
    assert(@sizeOf(Terminal) == 56);
    assert(@sizeOf(Pty) == 72);
    assert(@sizeOf(Event) == 48);
    assert(@sizeOf(Epoll) == 16);
    assert(@sizeOf(EpollEntry) == 16);
}

pub fn hash(bytes: []const u8) u64 {
    return std.hash.XxHash64.hash(0, bytes);
}

pub fn headerChecksum(header: *const Header) u64 {
    const bytes: *const [header_size]u8 = @ptrCast(header);
    return hash(bytes[0 .. header_size - 8]);
}

pub fn bodyChecksum(record: *const RecordHeader, body: []const u8) u64 {
    assert(body.len == record.body_size);
    const bytes: *const [record_header_size]u8 = @ptrCast(record);
    var hasher = std.hash.XxHash64.init(0);
    hasher.update(bytes[0..16]);
    hasher.update(body);
    return hasher.final();
}

/// Folds one record's checksums into the running `records_checksum`.
pub fn foldRecord(state: *std.hash.XxHash64, record: *const RecordHeader) void {
    var pair: [16]u8 = undefined;
    std.mem.writeInt(u64, pair[0..8], record.body_checksum, .little);
    std.mem.writeInt(u64, pair[8..16], record.data_checksum, .little);
    state.update(&pair);
}

pub fn alignForward(value: u64, alignment: u64) u64 {
    assert(std.math.isPowerOfTwo(alignment));
    return (value + alignment - 1) & ~(alignment - 1);
}

/// Where a record's data starts, given the offset of its header.
pub fn dataOffset(record_offset: u64, record: *const RecordHeader, page_size: u64) u64 {
    const body_end = alignForward(record_offset + record_header_size + record.body_size, 8);
    if (record.data_size == 0) return body_end;
    return alignForward(body_end, page_size);
}

/// Where the record after this one starts.
pub fn nextOffset(record_offset: u64, record: *const RecordHeader, page_size: u64) u64 {
    return dataOffset(record_offset, record, page_size) + record.data_size;
}

pub const HeaderError = error{
    BadMagic,
    BadVersion,
    BadChecksum,
    WrongArch,
    WrongClass,
    WrongPageSize,
    BadHeaderSize,
};

/// Checks a header read from disk against this build; `page_size` is the running kernel's.
pub fn checkHeader(header: *const Header, page_size: u32) HeaderError!void {
    if (header.magic != magic) return error.BadMagic;
    if (header.version != version) return error.BadVersion;
    if (header.header_size != header_size) return error.BadHeaderSize;
    if (headerChecksum(header) != header.header_checksum) return error.BadChecksum;
    if (header.arch != @intFromEnum(protocol.Arch.current())) return error.WrongArch;
    const class = if (@sizeOf(usize) == 8) elf_class_64 else elf_class_32;
    if (header.elf_class != class) return error.WrongClass;
    if (header.page_size != page_size) return error.WrongPageSize;
}

pub const BodyError = error{ BadTag, BadBody };

/// Checks that a record's body is well-formed for its tag (sizes agree with counts).
pub fn checkBody(record: *const RecordHeader, body: []const u8) BodyError!void {
    assert(body.len == record.body_size);
    const tag = std.meta.intToEnum(RecordTag, record.tag) catch return error.BadTag;
    switch (tag) {
        .process => {
            if (body.len < @sizeOf(Process)) return error.BadBody;
            const process = std.mem.bytesToValue(Process, body[0..@sizeOf(Process)]);
            if (body.len != @sizeOf(Process) + process.cwd_size) return error.BadBody;
            if (record.data_size != 0) return error.BadBody;
        },
        .region => {
            if (body.len < @sizeOf(Region)) return error.BadBody;
            const region = std.mem.bytesToValue(Region, body[0..@sizeOf(Region)]);
            const runs_offset = alignForward(@sizeOf(Region) + region.path_size, 8);
            if (body.len != runs_offset + @as(u64, region.run_count) * @sizeOf(Run)) {
                return error.BadBody;
            }
            if (region.end <= region.start) return error.BadBody;
            if (record.data_size > data_size_max) return error.BadBody;
            _ = std.meta.intToEnum(Backing, region.backing) catch return error.BadBody;
        },
        .thread => if (body.len != @sizeOf(Thread)) return error.BadBody,
        .signal_action => if (body.len != @sizeOf(SignalAction)) return error.BadBody,
        .process_tree => {
            if (body.len < @sizeOf(ProcessTree)) return error.BadBody;
            const tree = std.mem.bytesToValue(ProcessTree, body[0..@sizeOf(ProcessTree)]);
            const zombies_size = @as(u64, tree.zombie_count) * @sizeOf(Zombie);
            if (body.len != @sizeOf(ProcessTree) + zombies_size) return error.BadBody;
            if (tree.virtual_pid == 0) return error.BadBody;
        },
        .pipe => {
            if (body.len < @sizeOf(Pipe)) return error.BadBody;
            const pipe = std.mem.bytesToValue(Pipe, body[0..@sizeOf(Pipe)]);
            if (body.len != @sizeOf(Pipe) + pipe.path_size) return error.BadBody;
            if (record.data_size != alignForward(pipe.byte_count, 8)) return error.BadBody;
            _ = std.meta.intToEnum(PipeEnd, pipe.end) catch return error.BadBody;
        },
        .socket => {
            if (body.len < @sizeOf(Socket)) return error.BadBody;
            const socket = std.mem.bytesToValue(Socket, body[0..@sizeOf(Socket)]);
            if (body.len != @sizeOf(Socket) + socket.path_size) return error.BadBody;
            if (record.data_size != alignForward(socket.byte_count, 8)) return error.BadBody;
            _ = std.meta.intToEnum(SocketState, socket.state) catch return error.BadBody;
        },
        .file_description => {
            if (body.len < @sizeOf(FileDescription)) return error.BadBody;
            const size = @sizeOf(FileDescription);
            const description = std.mem.bytesToValue(FileDescription, body[0..size]);
            if (body.len != size + description.path_size) return error.BadBody;
            if (description.fd < 0 or description.owner_fd < 0) return error.BadBody;
            if (record.data_size != 0) return error.BadBody;
        },
        .pending_signal => if (body.len != @sizeOf(PendingSignal)) return error.BadBody,
        .terminal => {
            if (body.len != @sizeOf(Terminal)) return error.BadBody;
            const terminal = std.mem.bytesToValue(Terminal, body[0..@sizeOf(Terminal)]);
            if (terminal.fd < 0 or terminal.fd > 2) return error.BadBody;
            if (terminal.foreground > 1) return error.BadBody;
            if (record.data_size != 0) return error.BadBody;
        },
        .event => {
            if (body.len != @sizeOf(Event) or record.data_size != 0) return error.BadBody;
            const event = std.mem.bytesToValue(Event, body[0..@sizeOf(Event)]);
            if (event.fd < 0) return error.BadBody;
            _ = std.meta.intToEnum(EventKind, event.kind) catch return error.BadBody;
        },
        .epoll => {
            if (body.len < @sizeOf(Epoll) or record.data_size != 0) return error.BadBody;
            const epoll = std.mem.bytesToValue(Epoll, body[0..@sizeOf(Epoll)]);
            const entries_size = @as(u64, epoll.entry_count) * @sizeOf(EpollEntry);
            if (epoll.fd < 0 or body.len != @sizeOf(Epoll) + entries_size) return error.BadBody;
        },
        .pty => {
            if (body.len != @sizeOf(Pty)) return error.BadBody;
            const pty = std.mem.bytesToValue(Pty, body[0..@sizeOf(Pty)]);
            if (pty.fd < 0 or pty.index >= 1 << 20) return error.BadBody;
            _ = std.meta.intToEnum(PtyRole, pty.role) catch return error.BadBody;
            const size = @as(u64, pty.output_size) + pty.input_size;
            if (record.data_size != alignForward(size, 8)) return error.BadBody;
        },
        .timer => {
            if (body.len != @sizeOf(Timer)) return error.BadBody;
            const timer = std.mem.bytesToValue(Timer, body[0..@sizeOf(Timer)]);
            _ = std.meta.intToEnum(TimerKind, timer.kind) catch return error.BadBody;
        },
        .descriptor => {
            if (body.len < @sizeOf(Descriptor)) return error.BadBody;
            const descriptor = std.mem.bytesToValue(Descriptor, body[0..@sizeOf(Descriptor)]);
            if (body.len != @sizeOf(Descriptor) + descriptor.path_size) return error.BadBody;
            _ = std.meta.intToEnum(DescriptorKind, descriptor.kind) catch return error.BadBody;
        },
    }
}

/// The path that follows a region's struct in its body.
pub fn regionPath(body: []const u8) []const u8 {
    const region = std.mem.bytesToValue(Region, body[0..@sizeOf(Region)]);
    return body[@sizeOf(Region)..][0..region.path_size];
}

/// The runs that follow a region's struct and path in its body; `body` must be 8-aligned.
pub fn regionRuns(body: []align(8) const u8) []const Run {
    const region = std.mem.bytesToValue(Region, body[0..@sizeOf(Region)]);
    const runs_offset: usize = @intCast(alignForward(@sizeOf(Region) + region.path_size, 8));
    const runs: [*]const Run = @ptrCast(@alignCast(body[runs_offset..].ptr));
    return runs[0..region.run_count];
}

test "image: header checksum covers every byte but itself" {
    var header: Header = .{
        .arch = @intFromEnum(protocol.Arch.current()),
        .elf_class = if (@sizeOf(usize) == 8) elf_class_64 else elf_class_32,
        .page_size = 4096,
    };
    header.header_checksum = headerChecksum(&header);
    try checkHeader(&header, 4096);
    header.program_name[3] = 'x';
    try std.testing.expectError(error.BadChecksum, checkHeader(&header, 4096));
    header.header_checksum = headerChecksum(&header);
    try std.testing.expectError(error.WrongPageSize, checkHeader(&header, 16384));
    header.magic ^= 1;
    try std.testing.expectError(error.BadMagic, checkHeader(&header, 4096));
}

test "image: record offsets put data on a page boundary" {
    const record: RecordHeader = .{ .tag = 2, .body_size = 60, .data_size = 8192 };
    try std.testing.expectEqual(@as(u64, 4096), dataOffset(4096 - 32 - 64, &record, 4096));
    try std.testing.expectEqual(@as(u64, 8192), dataOffset(4096, &record, 4096));
    try std.testing.expectEqual(@as(u64, 16384), nextOffset(4096, &record, 4096));
    const small: RecordHeader = .{ .tag = 3, .body_size = 32 };
    try std.testing.expectEqual(@as(u64, 4096 + 64), nextOffset(4096, &small, 4096));
}

test "image: a region body is checked against its run count" {
    var body: [@sizeOf(Region) + 8 + 2 * @sizeOf(Run)]u8 align(8) = undefined;
    const region: Region = .{
        .start = 0x1000,
        .end = 0x5000,
        .file_offset = 0,
        .page_count = 3,
        .protection = protection_read,
        .flags = 0,
        .backing = @intFromEnum(Backing.anonymous),
        .path_size = 5,
        .run_count = 2,
    };
    @memcpy(body[0..@sizeOf(Region)], std.mem.asBytes(&region));
    @memcpy(body[@sizeOf(Region)..][0..8], "[abc]\x00\x00\x00");
    const runs = [2]Run{
        .{ .page_index = 0, .page_count = 1 },
        .{ .page_index = 2, .page_count = 2 },
    };
    @memcpy(body[@sizeOf(Region) + 8 ..], std.mem.sliceAsBytes(&runs));
    var record: RecordHeader = .{ .tag = 2, .body_size = body.len, .data_size = 3 * 4096 };
    try checkBody(&record, &body);
    try std.testing.expectEqualStrings("[abc]", regionPath(&body));
    try std.testing.expectEqual(@as(u64, 2), regionRuns(&body)[1].page_index);
    record.body_size -= 16;
    try std.testing.expectError(error.BadBody, checkBody(&record, body[0 .. body.len - 16]));
}

/// One entry of test/vectors/image-header.json (written by an independent TypeScript encoder
/// with Bun.hash.xxHash64); 64-bit values are hex or decimal strings, as JSON numbers are not.
const Vector = struct {
    name: []const u8,
    header: struct {
        arch: u16,
        elf_class: u8,
        page_size: u32,
        record_count: u32,
        worker_id: u32,
        creation_time_ns: []const u8,
        computation_id: []const u8,
        generation: u32,
        peer_count: u32,
        real_pid: u32,
        image_size: []const u8,
        records_checksum: []const u8,
        restart_entry: []const u8,
        restart_thread_pointer: []const u8,
        program_name: []const u8,
        kernel_release: []const u8,
    },
    header_checksum: []const u8,
    bytes: []const u8,
};

test "image: header vectors shared with the TypeScript mirror" {
    const allocator = std.testing.allocator;
    const vectors_json = @embedFile("image_header_vectors");
    const parsed = try std.json.parseFromSlice([]Vector, allocator, vectors_json, .{});
    defer parsed.deinit();
    try std.testing.expect(parsed.value.len > 0);
    for (parsed.value) |vector| {
        const v = vector.header;
        var header: Header = .{
            .arch = v.arch,
            .elf_class = v.elf_class,
            .page_size = v.page_size,
            .record_count = v.record_count,
            .worker_id = v.worker_id,
            .creation_time_ns = try std.fmt.parseInt(u64, v.creation_time_ns, 10),
            .computation_id = try std.fmt.parseInt(u64, v.computation_id, 16),
            .generation = v.generation,
            .peer_count = v.peer_count,
            .real_pid = v.real_pid,
            .image_size = try std.fmt.parseInt(u64, v.image_size, 10),
            .records_checksum = try std.fmt.parseInt(u64, v.records_checksum, 16),
            .restart_entry = try std.fmt.parseInt(u64, v.restart_entry, 16),
            .restart_thread_pointer = try std.fmt.parseInt(u64, v.restart_thread_pointer, 16),
        };
        @memcpy(header.program_name[0..v.program_name.len], v.program_name);
        @memcpy(header.kernel_release[0..v.kernel_release.len], v.kernel_release);
        header.header_checksum = headerChecksum(&header);
        const expected_checksum = try std.fmt.parseInt(u64, vector.header_checksum, 16);
        try std.testing.expectEqual(expected_checksum, header.header_checksum);
        var expected: [header_size]u8 = undefined;
        _ = try std.fmt.hexToBytes(&expected, vector.bytes);
        try std.testing.expectEqualSlices(u8, &expected, std.mem.asBytes(&header));
        const decoded = std.mem.bytesToValue(Header, &expected);
        try std.testing.expectEqual(header.header_checksum, headerChecksum(&decoded));
    }
}
