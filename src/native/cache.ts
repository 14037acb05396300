// The native parts travel inside the executable and are written, once, to a directory named by
// their content hash. A new directory is filled under a temporary name and renamed into place,
// so two first runs at the same moment never see a half-written file.
import {
  chmodSync, existsSync, mkdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { FileError } from "../errors";
import type { ArchName } from "./elf";

export interface NativeSet {
  /// Hash over every embedded file, computed by scripts/build.
  hash: string;
  /// "x86_64/libdmtcp.so" → path of the embedded file inside the executable.
  files: Record<string, string>;
}

let embedded: NativeSet = { hash: "none", files: {} };

export function setNatives(natives: NativeSet): void {
  embedded = natives;
}

export function nativeHash(): string {
  return embedded.hash;
}

export function carriedArchs(): ArchName[] {
  const names = Object.keys(embedded.files).map((file) => file.split("/")[0] as ArchName);
  return [...new Set(names)];
}

/// The executable that carries each architecture's natives, as scripts/build.ts makes them: a
/// 64-bit host's executable also carries its 32-bit sibling.
const EXECUTABLES: Record<ArchName, string> = {
  x86_64: "dmtcp-linux-x64",
  i386: "dmtcp-linux-x64",
  aarch64: "dmtcp-linux-arm64",
  armv7: "dmtcp-linux-arm64",
};

export function executableFor(arch: ArchName): string {
  return EXECUTABLES[arch];
}

type Env = Record<string, string | undefined>;

/// Where caches may go, most preferred first: XDG, home, then the temporary directory.
export function cacheRoots(env: Env): string[] {
  const roots: string[] = [];
  if (env.XDG_CACHE_HOME) roots.push(join(env.XDG_CACHE_HOME, "dmtcp"));
  if (env.HOME) roots.push(join(env.HOME, ".cache", "dmtcp"));
  const tmp = env.DMTCP_TMPDIR || env.TMPDIR || "/tmp";
  roots.push(join(tmp, `dmtcp-${process.getuid?.() ?? "user"}`, "cache"));
  return roots;
}

/// Returns the directory holding the natives, writing them first if no run has yet.
export async function nativeDirectory(env: Env): Promise<string> {
  const failures: string[] = [];
  for (const root of cacheRoots(env)) {
    const directory = join(root, embedded.hash);
    // Code we preload into programs must come from a directory only this user can write.
    const unsafe = foreignOwner(root);
    if (unsafe) {
      failures.push(`${root}: ${unsafe}`);
      continue;
    }
    try {
      if (!existsSync(directory)) await extract(root, directory);
      linkPlatforms(directory);
      return directory;
    } catch (error) {
      failures.push(`${root}: ${(error as Error).message}`);
    }
  }
  throw new FileError(
    `cannot write dmtcp's native files to any cache directory (${failures.join("; ")})`,
    "Set XDG_CACHE_HOME or DMTCP_TMPDIR to a writable directory.",
  );
}

function foreignOwner(root: string): string | undefined {
  if (!existsSync(root)) return undefined;
  const stat = statSync(root);
  if (stat.uid !== process.getuid?.()) return `owned by uid ${stat.uid}, not you`;
  if ((stat.mode & 0o022) !== 0) return "writable by other users";
  return undefined;
}

async function extract(root: string, directory: string): Promise<void> {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const temporary = `${directory}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    for (const [name, source] of Object.entries(embedded.files)) {
      const target = join(temporary, name);
      mkdirSync(join(target, ".."), { recursive: true, mode: 0o755 });
      writeFileSync(target, await Bun.file(source).bytes(), { mode: 0o755, flush: true });
      chmodSync(target, 0o755);
    }
    chmodSync(temporary, 0o755);
    renameSync(temporary, directory);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    // Another run renamed its copy first: theirs is complete, so use it.
    if (existsSync(directory) && statSync(directory).isDirectory()) return;
    throw error;
  }
}

export function runtimeLibrary(directory: string, arch: ArchName): string {
  return join(directory, arch, "libdmtcp.so");
}

/// The values the loader gives `$PLATFORM` for programs of each architecture: each names one
/// word size only, unlike `$LIB` ("lib" is 32-bit on Fedora and 64-bit on Arch). They are the
/// kernel's AT_PLATFORM, which glibc refines on x86 only (sysdeps/x86/cpu-features.c):
/// - x86_64: the kernel says "x86_64"; glibc says "haswell" or "xeon_phi" on some Intel CPUs.
/// - i386: a 64-bit kernel says "i686" (COMPAT_ELF_PLATFORM), a 32-bit one its machine
///   ("i386" to "i686"); glibc says "i686" or "i586" by the CPU's features.
/// - aarch64: "aarch64" (glibc keeps it: aarch64/dl-procinfo.h has no platforms).
/// - armv7: the CPU's architecture, "v7l" on an armv7 kernel ("v5l", "v6l" on older CPUs,
///   which cannot run our armv7 code anyway), "v8l" on arm64 (COMPAT_ELF_PLATFORM) and under
///   qemu-arm; glibc keeps it (arm/dl-procinfo.h).
/// Big-endian kernels ("v7b", "aarch64_be") cannot run our little-endian code.
/// A name missing here would leave programs of that word size outside the computation, so
/// each machine's own loaders are also asked (`loaderPlatform`) when the links are made.
export const PLATFORMS: Record<ArchName, readonly string[]> = {
  x86_64: ["x86_64", "haswell", "xeon_phi"],
  i386: ["i386", "i486", "i586", "i686"],
  aarch64: ["aarch64"],
  armv7: ["v5l", "v6l", "v7l", "v8l"],
};

/// Each architecture's glibc loader where every distribution puts it (the PT_INTERP of its
/// programs); for ARM under qemu-user, binfmt_misc runs it.
const LOADERS: Record<ArchName, string> = {
  x86_64: "/lib64/ld-linux-x86-64.so.2",
  i386: "/lib/ld-linux.so.2",
  aarch64: "/lib/ld-linux-aarch64.so.1",
  armv7: "/lib/ld-linux-armhf.so.3",
};

/// What this machine's loader for `arch` gives `$PLATFORM`: glibc 2.33 and later print it
/// (`dl_platform="..."`) with --list-diagnostics. Undefined when there is no such loader or it
/// does not say.
export function loaderPlatform(arch: ArchName): string | undefined {
  const loader = LOADERS[arch];
  if (!existsSync(loader)) return undefined;
  try {
    const result = Bun.spawnSync([loader, "--list-diagnostics"], {
      stdout: "pipe", stderr: "ignore", timeout: 10000,
    });
    return /^dl_platform="([^"\n]+)"$/m.exec(result.stdout.toString())?.[1];
  } catch {
    return undefined;
  }
}

/// Which library each `$PLATFORM` value links to: the table's names for every carried
/// architecture, and the names the loaders here reported (`learnt`) unless another
/// architecture already claims them.
export function platformLinks(
  carried: readonly ArchName[],
  learnt: Partial<Record<ArchName, string>>,
): Map<string, ArchName> {
  const links = new Map<string, ArchName>();
  for (const arch of carried) for (const platform of PLATFORMS[arch]) links.set(platform, arch);
  for (const arch of carried) {
    const platform = learnt[arch];
    if (platform !== undefined && !links.has(platform) && !platform.includes("/")) {
      links.set(platform, arch);
    }
  }
  return links;
}

/// LD_PRELOAD's one entry for every program of a computation: the loader expands `$PLATFORM`,
/// so a 64-bit program loads the 64-bit runtime and a 32-bit one (exec'd from inside the
/// computation, whatever the word size of its parent) the 32-bit one, with no exec wrapper.
export function preloadEntry(directory: string): string {
  return join(directory, "preload", "$PLATFORM", "libdmtcp.so");
}

/// preload/<platform>/libdmtcp.so → ../../<arch>/libdmtcp.so for every carried architecture;
/// made once, under a temporary name renamed into place like the natives themselves.
function linkPlatforms(directory: string): void {
  const target = join(directory, "preload");
  if (existsSync(target)) return;
  const carried = carriedArchs();
  const learnt: Partial<Record<ArchName, string>> = {};
  for (const arch of carried) learnt[arch] = loaderPlatform(arch);
  const temporary = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    for (const [platform, arch] of platformLinks(carried, learnt)) {
      mkdirSync(join(temporary, platform), { recursive: true, mode: 0o755 });
      symlinkSync(
        join("..", "..", arch, "libdmtcp.so"),
        join(temporary, platform, "libdmtcp.so"),
      );
    }
    renameSync(temporary, target);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    if (!existsSync(target)) throw error;
  }
}

export function restartProgram(directory: string, arch: ArchName): string {
  return join(directory, arch, "mtcp_restart");
}
