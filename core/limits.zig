//! Every ceiling in the native code, each with the reason for its value.
const std = @import("std");

/// The checkpoint thread's stack: it runs only our code, with fixed buffers and no recursion.
pub const thread_stack_size = 256 * 1024;
/// Longest path we handle (Linux PATH_MAX).
pub const path_size_max = 4096;
/// Program and host names sent to the coordinator are cut here (host names are at most 64
/// bytes on Linux; program names longer than this are not useful in `--list`).
pub const name_size_max = 255;
/// Environment variables the runtime looks at in one pass; a larger environment is scanned
/// only up to here (the kernel's own limit is about 32 pages of strings).
pub const env_count_max = 1 << 16;
/// How long a worker waits for the coordinator to answer its hello: it runs before the
/// program goes on (in fork), so it must be short; loopback answers in well under 1 ms.
pub const handshake_timeout_ms = 2000;
/// Messages a worker drains before giving up on a misbehaving coordinator.
pub const message_count_max = 1 << 30;

/// Spare coordinator connections one process keeps for the children it may fork: a burst
/// of forks takes them all before the coordinator answers again (about 0.1 to 1 ms each);
/// each costs the coordinator one idle connection.
pub const spare_count_max = 4;
/// Spare connections and their eventfd sit at this number or above, clear of the numbers
/// programs dup2() onto.
pub const spare_fd_base_min = 512;

/// Threads of one process we suspend and restore; each costs one slot of the thread table.
pub const threads_max = 1024;
/// Open descriptors recorded per image; more than this fails the checkpoint loudly.
pub const fds_max = 4096;
/// Mappings of one process: the kernel's default vm.max_map_count is 65530.
pub const regions_max = 65536;
/// /proc/self/maps text read in one go: a line is about 100 bytes plus its path, so this
/// holds regions_max typical lines. Reserved NORESERVE: only what is read costs memory.
pub const maps_size_max = 8 * 1024 * 1024;
/// Runs of stored pages in one region record: a region with more is split into several
/// records, so that a record's body stays bounded (1024 runs = 16 KiB).
pub const region_runs_max = 1024;
/// Pages whose /proc/self/pagemap entries are read at once (8 bytes each: 512 KiB).
pub const pagemap_pages_max = 64 * 1024;
/// Largest page size we support: arm64 kernels are built with 4, 16 or 64 KiB pages.
pub const page_size_max = 64 * 1024;
/// iovecs per writev: the kernel's IOV_MAX.
pub const iovecs_max = 1024;
/// mtcp_restart's buffer for reading and checking the image (one read per chunk).
pub const restart_read_size = 1024 * 1024;
/// The stack mtcp_restart runs on after it moves itself, which the restored runtime's entry
/// also uses until every thread is back on its own stack.
pub const restart_stack_size = 1024 * 1024;
/// DMTCP_* variables mtcp_restart hands to the restored runtime.
pub const restart_env_size_max = 64 * 1024;
pub const restart_env_count_max = 64;
/// How long the checkpoint thread waits for the program's threads to stop in the checkpoint
/// signal's handler; a thread that blocks the signal never does, and the checkpoint fails.
pub const suspend_timeout_ms = 10_000;
/// A signalled thread that still blocks the checkpoint signal after this many polls (about a
/// millisecond each) fails the checkpoint at once: it set its mask without our wrappers
/// (glibc's SIGEV_THREAD timer helper, pthread_attr_setsigmask_np) and would never stop.
/// Long enough for a thread that blocks every signal around a short critical section.
pub const suspend_blocked_polls_max = 200;
/// Pending signals recorded per checkpoint: each standard signal is pending at most once per
/// thread and once for the process; real-time signals queue up to RLIMIT_SIGPENDING (often
/// thousands): beyond this many they stay in the kernel's queue, delivered if the checkpoint
/// continues and lost at a restart.
pub const pending_signals_max = 1024;
/// POSIX timers of one process we re-create; more fail the checkpoint.
pub const timers_max = 256;
/// Timers created and deleted to reach a wanted id on kernels without
/// PR_TIMER_CREATE_RESTORE_IDS (before 6.15): ids are handed out in increasing order.
pub const timer_id_attempts_max = 1 << 16;
/// SIGEV_THREAD timers alive at once (timer_threads.zig); slots of deleted timers are found
/// again through /proc/self/timers when the table is full.
pub const thread_timers_max = 64;
/// Bytes below a saved stack pointer that a re-created thread may use before it jumps back
/// into its saved context: it only runs a few instructions there.
pub const restart_thread_stack_gap = 4096;

/// Processes of one computation that one restart re-creates (one image each), and entries
/// of a process's virtual pid table (each restarted process plus its zombies).
pub const processes_max = 1024;
/// Unreaped children one process records; more are left out of its image.
pub const zombies_max = 256;
/// Children of one process listed at a checkpoint (/proc/<pid>/task/<tid>/children).
pub const children_max = 4096;
/// Distinct pipes (and FIFOs) one restart re-creates for the whole tree.
pub const pipes_max = 1024;
/// Bytes buffered in one pipe: /proc/sys/fs/pipe-max-size's default, the most an
/// unprivileged process can give a pipe.
pub const pipe_size_max = 1024 * 1024;
/// Distinct sockets one restart re-creates for the whole tree (each end of a pair counts).
pub const sockets_max = 1024;
/// Bytes queued for reading on one socket that a checkpoint stores: a Unix socket queues at
/// most its peer's send buffer, which an unprivileged process can raise to twice
/// net.core.wmem_max (425984 bytes by default). More fails the checkpoint.
pub const socket_size_max = 1024 * 1024;
/// Messages of one datagram or seqpacket socket walked at a checkpoint.
pub const socket_messages_max = 4096;
/// Open file descriptions of regular files shared between descriptors (across fork, or
/// dup) that one restart opens once for all their holders.
pub const descriptions_max = 1024;
/// Descriptors one epoll instance watches that a checkpoint saves (its record is at most
/// 64 KiB); more fail the checkpoint.
pub const epoll_entries_max = 2048;
/// Pseudo-terminals one restart re-creates for the whole tree (each has two ends to hand down).
pub const ptys_max = 256;
/// Bytes waiting in one pseudo-terminal that a checkpoint stores, each way: the kernel
/// buffers at most 64 KiB of output for a master and 4 KiB of input for a slave.
pub const pty_queue_size_max = 64 * 1024;
/// Descriptors on pseudo-terminals in all the images of one restart.
pub const pty_uses_max = 4 * ptys_max;
/// What mtcp_restart hands down to every process of the tree: pipes, sockets, descriptions,
/// both ends of pseudo-terminals.
pub const inherited_max = pipes_max + sockets_max + descriptions_max + 2 * ptys_max;
/// Processes of the family (the tree of workers a process belongs to) compared with kcmp
/// when a checkpoint looks for descriptions shared across fork.
pub const family_max = processes_max;
/// Distinct shared memory objects (shared anonymous or deleted mappings) of one restart.
pub const shared_objects_max = 1024;
/// The text mtcp_restart hands the mtcp_restart of the other word size (handover.zig): its
/// pipe ends and shared memory objects, at most one number triple of 20 + 10 + 20 digits each.
pub const handover_text_size_max = (pipes_max + shared_objects_max) * 56 + 128;
/// The lowest descriptor number mtcp_restart puts its own descriptors at, when the images
/// use none above it (shells move theirs to 10 and up, so stay clear of the low ones).
pub const restart_fd_base_min = 100;

comptime {
    std.debug.assert(suspend_blocked_polls_max < suspend_timeout_ms);
    std.debug.assert(thread_stack_size % 4096 == 0);
    std.debug.assert(name_size_max < path_size_max);
    std.debug.assert(region_runs_max * 16 + path_size_max + 64 <= 64 * 1024);
    std.debug.assert(restart_read_size % (64 * 1024) == 0);
    std.debug.assert(restart_stack_size % 65536 == 0);
    std.debug.assert(restart_thread_stack_gap < thread_stack_size / 2);
    std.debug.assert(socket_size_max <= pipe_size_max);
}
