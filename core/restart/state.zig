//! mtcp_restart's whole state, in static memory: it has no allocator, and after it moves
//! itself everything it knows must be reachable relative to its own code (no pointers kept
//! across the move, only values).
const std = @import("std");
const linux = std.os.linux;
const limits = @import("limits");
const image = @import("format").image;

pub const Interval = struct {
    start: u64,
    end: u64,

    pub fn overlaps(self: Interval, start: u64, end: u64) bool {
        return self.start < end and start < self.end;
    }
};

/// The kernel's special mappings we move: [vvar], [vvar_vclock], [vdso].
pub const Special = enum { vvar, vvar_vclock, vdso };
pub const special_count = 3;

pub var image_fd: i32 = -1;
/// This process's coordinator connection (DMTCP_RESTART_FDS), or -1.
pub var connection_fd: i32 = -1;
/// DMTCP_IMAGE_VERIFIED=1: `dmtcp restart` checksummed every page of the image just before
/// exec'ing us, so step 1 checks only the structure and step 4 checksums the pages as it
/// reads them into place (one pass over the data instead of two).
pub var data_verified: bool = false;
pub var image_size: u64 = 0;
pub var page_size: usize = 4096;
pub var header: image.Header = undefined;

/// Every region of the image: where the program's memory goes back.
pub var regions: [limits.regions_max]Interval = undefined;
pub var region_count: usize = 0;
/// Where the image had the kernel's special mappings, and where the running kernel put them.
pub var special_old: [special_count]?Interval = .{ null, null, null };
pub var special_now: [special_count]?Interval = .{ null, null, null };

/// This process's own mappings before the move (its text, data, stack, ...).
pub var own: [256]Interval = undefined;
pub var own_count: usize = 0;

/// Of those, the pages the kernel or an emulator keeps using (relocate.isSystemPage): never
/// unmapped, and an image region exactly on one is the checkpointed process's copy of it.
pub var kept: [8]Interval = undefined;
pub var kept_count: usize = 0;
/// The image has a signal handler that returns through the system's trampoline.
pub var handler_without_restorer: bool = false;

/// The hole mtcp_restart moved into: [hole_start, hole_start + hole_size).
pub var hole_start: usize = 0;
pub var hole_size: usize = 0;
/// Where, inside the hole, the special mappings wait while they move.
pub var special_parking: usize = 0;
/// The image stored its [vdso] pages (all of them): trampolines are possible.
pub var vdso_stored: bool = false;
/// This kernel's vDSO differs from the image's (or DMTCP_VDSO_TRAMPOLINES=1): the running
/// kernel's special mappings stay where they are, and the image's [vdso] comes back as its
/// old pages with every entry point turned into a jump to this kernel's (special.zig).
pub var vdso_trampolines: bool = false;

/// DMTCP_* variables as NUL-terminated strings, one after the other.
pub var env_text: [limits.restart_env_size_max]u8 = undefined;
pub var env_text_size: usize = 0;
pub var envp: [limits.restart_env_count_max + 1]?[*:0]u8 = undefined;

pub var read_buffer: [limits.restart_read_size]u8 align(4096) = undefined;
pub var body: [image.body_size_max]u8 align(8) = undefined;
pub var info: image.RestartInfo = undefined;
