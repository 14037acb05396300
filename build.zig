//! Builds the native parts for the four architectures we ship: the preloaded runtime
//! `libdmtcp.so` and the static `mtcp_restart`, plus the C test programs. Output goes to
//! zig-out/<arch>/, which scripts/build embeds into the `dmtcp` executables.
const std = @import("std");
const builtin = @import("builtin");

comptime {
    const minimum = std.SemanticVersion.parse("0.15.2") catch unreachable;
    if (builtin.zig_version.order(minimum) == .lt) @compileError("dmtcp needs zig 0.15.2 or newer");
}

/// Every architecture we ship: its name in dist/ and the image header, the glibc baseline the
/// runtime links against (2.17 loads on CentOS 7 and every distribution since), and the target
/// of the libc-free restart program.
const Platform = struct {
    name: []const u8,
    gnu: []const u8,
    bare: []const u8,
    /// For test programs that must be static (musl links statically, glibc does not).
    musl: []const u8,
    cpu: []const u8 = "baseline",
};

const platforms = [_]Platform{
    .{
        .name = "x86_64",
        .gnu = "x86_64-linux-gnu.2.17",
        .bare = "x86_64-linux-none",
        .musl = "x86_64-linux-musl",
    },
    .{
        .name = "i386",
        .gnu = "x86-linux-gnu.2.17",
        .bare = "x86-linux-none",
        .musl = "x86-linux-musl",
        .cpu = "pentium4",
    },
    .{
        .name = "aarch64",
        .gnu = "aarch64-linux-gnu.2.17",
        .bare = "aarch64-linux-none",
        .musl = "aarch64-linux-musl",
    },
    // Debian's armhf baseline: ARMv7-A, Thumb-2, VFPv3-D16, no NEON.
    .{
        .name = "armv7",
        .gnu = "arm-linux-gnueabihf.2.17",
        .bare = "arm-linux-eabihf",
        .musl = "arm-linux-musleabihf",
        .cpu = "generic+v7a+vfp3d16+thumb2",
    },
};

pub fn build(b: *std.Build) void {
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "Optimization mode") orelse
        .ReleaseSafe;
    const only = b.option([]const u8, "arch", "Build only this architecture");

    const test_step = b.step("test", "Run the Zig unit tests on the host");
    const targets_step = b.step(
        "test-targets",
        "Run the Zig unit tests built for i386, aarch64 and armv7 (ARM through qemu-user)",
    );
    const manifest_step = b.step("format-manifest", "Print the wire and image layouts as JSON");

    for (platforms) |platform| {
        if (only) |name| if (!std.mem.eql(u8, name, platform.name)) continue;
        const gnu = resolve(b, platform.gnu, platform.cpu);
        const bare = resolve(b, platform.bare, platform.cpu);
        const modules = addModules(b, gnu, optimize);
        addRuntime(b, platform, gnu, optimize, modules);
        addRestart(b, platform, bare, optimize);
        addTestPrograms(b, platform, gnu, resolve(b, platform.musl, platform.cpu));
        const foreign = gnu.result.cpu.arch != b.graph.host.result.cpu.arch;
        if (foreign) addTargetTests(b, targets_step, gnu);
    }

    const host = b.graph.host;
    const host_modules = addModules(b, host, .Debug);
    for ([_]*std.Build.Module{ host_modules.format, host_modules.arch }) |module| {
        const unit = b.addTest(.{ .root_module = module });
        test_step.dependOn(&b.addRunArtifact(unit).step);
    }
    const runtime_tests = b.addTest(.{
        .root_module = runtimeModule(b, host, .Debug, host_modules),
    });
    test_step.dependOn(&b.addRunArtifact(runtime_tests).step);

    const manifest = b.addExecutable(.{
        .name = "format-manifest",
        .root_module = b.createModule(.{
            .root_source_file = b.path("core/format/manifest.zig"),
            .target = host,
            .optimize = .Debug,
            .imports = &.{.{ .name = "format", .module = host_modules.format }},
        }),
    });
    manifest_step.dependOn(&b.addRunArtifact(manifest).step);
}

/// The unit tests of the format, arch and runtime modules built for another architecture and
/// run by the kernel: natively for i386, through qemu-user (binfmt_misc) for ARM. The
/// runtime's tests run against that architecture's real glibc, which checks its constants.
fn addTargetTests(b: *std.Build, step: *std.Build.Step, target: std.Build.ResolvedTarget) void {
    const modules = addModules(b, target, .Debug);
    const roots = [_]*std.Build.Module{
        modules.format,
        modules.arch,
        runtimeModule(b, target, .Debug, modules),
    };
    for (roots, [_][]const u8{ "format", "arch", "runtime" }) |module, name| {
        const unit = b.addTest(.{ .root_module = module });
        const arch_name = @tagName(target.result.cpu.arch);
        const run = std.Build.Step.Run.create(b, b.fmt("run {s} {s} tests", .{ arch_name, name }));
        run.addArtifactArg(unit);
        run.expectExitCode(0);
        step.dependOn(&run.step);
    }
}

fn resolve(b: *std.Build, triple: []const u8, cpu: []const u8) std.Build.ResolvedTarget {
    const query = std.Target.Query.parse(.{ .arch_os_abi = triple, .cpu_features = cpu }) catch
        @panic("bad target triple");
    return b.resolveTargetQuery(query);
}

const Modules = struct {
    format: *std.Build.Module,
    arch: *std.Build.Module,
    limits: *std.Build.Module,
};

fn addModules(
    b: *std.Build,
    target: std.Build.ResolvedTarget,
    optimize: std.builtin.OptimizeMode,
) Modules {
    const format = b.createModule(.{
        .root_source_file = b.path("core/format/root.zig"),
        .target = target,
        .optimize = optimize,
    });
    format.addAnonymousImport("protocol_vectors", .{
        .root_source_file = b.path("test/vectors/protocol.json"),
    });
    format.addAnonymousImport("image_header_vectors", .{
        .root_source_file = b.path("test/vectors/image-header.json"),
    });
    const arch = b.createModule(.{
        .root_source_file = b.path("arch/root.zig"),
        .target = target,
        .optimize = optimize,
    });
    const limits = b.createModule(.{
        .root_source_file = b.path("core/limits.zig"),
        .target = target,
        .optimize = optimize,
    });
    return .{ .format = format, .arch = arch, .limits = limits };
}

fn runtimeModule(
    b: *std.Build,
    target: std.Build.ResolvedTarget,
    optimize: std.builtin.OptimizeMode,
    modules: Modules,
) *std.Build.Module {
    return b.createModule(.{
        .root_source_file = b.path("core/runtime/root.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        // Position-independent: it is a shared library loaded anywhere.
        .pic = true,
        .imports = &.{
            .{ .name = "format", .module = modules.format },
            .{ .name = "arch", .module = modules.arch },
            .{ .name = "limits", .module = modules.limits },
        },
    });
}

fn addRuntime(
    b: *std.Build,
    platform: Platform,
    target: std.Build.ResolvedTarget,
    optimize: std.builtin.OptimizeMode,
    modules: Modules,
) void {
    const lib = b.addLibrary(.{
        .name = "dmtcp",
        .linkage = .dynamic,
        .root_module = runtimeModule(b, target, optimize, modules),
    });
    // dlsym (glibc's own timer_create, core/runtime/timer_threads.zig) is in libdl before 2.34.
    lib.root_module.linkSystemLibrary("dl", .{});
    // Shipped inside the executable: debug info would triple its size.
    lib.root_module.strip = optimize != .Debug;
    const install = b.addInstallArtifact(lib, .{
        .dest_dir = .{ .override = .{ .custom = platform.name } },
        .dylib_symlinks = false,
    });
    b.getInstallStep().dependOn(&install.step);
}

fn addRestart(
    b: *std.Build,
    platform: Platform,
    target: std.Build.ResolvedTarget,
    optimize: std.builtin.OptimizeMode,
) void {
    const modules = addModules(b, target, optimize);
    const exe = b.addExecutable(.{
        .name = "mtcp_restart",
        .linkage = .static,
        .root_module = b.createModule(.{
            .root_source_file = b.path("core/restart/main.zig"),
            .target = target,
            .optimize = optimize,
            // It must run while the saved program's memory is being mapped back, so it
            // cannot depend on where the kernel loads it: static position-independent.
            .pic = true,
            // One thread and no TLS: after it moves itself, nothing may point at the old copy.
            .single_threaded = true,
            .imports = &.{
                .{ .name = "format", .module = modules.format },
                .{ .name = "arch", .module = modules.arch },
                .{ .name = "limits", .module = modules.limits },
            },
        }),
    });
    exe.pie = true;
    exe.root_module.strip = optimize != .Debug;
    const install = b.addInstallArtifact(exe, .{
        .dest_dir = .{ .override = .{ .custom = platform.name } },
    });
    b.getInstallStep().dependOn(&install.step);
}

fn addTestPrograms(
    b: *std.Build,
    platform: Platform,
    gnu: std.Build.ResolvedTarget,
    musl: std.Build.ResolvedTarget,
) void {
    const programs_step = b.step(
        b.fmt("test-programs-{s}", .{platform.name}),
        b.fmt("Build the C test programs for {s}", .{platform.name}),
    );
    var dir = b.build_root.handle.openDir("test/programs", .{ .iterate = true }) catch return;
    defer dir.close();
    var iterator = dir.iterate();
    while (iterator.next() catch null) |entry| {
        if (entry.kind != .file or !std.mem.endsWith(u8, entry.name, ".c")) continue;
        const name = entry.name[0 .. entry.name.len - 2];
        const static = std.mem.startsWith(u8, name, "static_");
        const module = b.createModule(.{
            .target = if (static) musl else gnu,
            .optimize = .ReleaseSafe,
            .link_libc = true,
        });
        module.addCSourceFile(.{
            .file = b.path(b.fmt("test/programs/{s}", .{entry.name})),
            .flags = &.{ "-std=gnu11", "-Wall", "-Werror", "-pthread" },
        });
        module.linkSystemLibrary("pthread", .{});
        // glibc 2.17 keeps timer_create in librt.
        module.linkSystemLibrary("rt", .{});
        const exe = b.addExecutable(.{
            .name = name,
            .root_module = module,
            .linkage = if (static) .static else null,
        });
        const install = b.addInstallArtifact(exe, .{
            .dest_dir = .{ .override = .{ .custom = b.fmt("{s}/test", .{platform.name}) } },
        });
        programs_step.dependOn(&install.step);
        b.getInstallStep().dependOn(&install.step);
    }
}
