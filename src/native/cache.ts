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

/// The values the loader gives `$PLATFORM` (AT_PLATFORM, which glibc may refine) for programs
/// of each architecture: each names one word size only, unlike `$LIB` ("lib" is 32-bit on
/// Fedora and 64-bit on Arch). x86_64 glibc says "haswell" or "xeon_phi" on some Intel CPUs;
/// a 32-bit ARM program sees "v7l" on an armv7 kernel and "v8l" on arm64 and under qemu.
export const PLATFORMS: Record<ArchName, readonly string[]> = {
  x86_64: ["x86_64", "haswell", "xeon_phi"],
  i386: ["i386", "i486", "i586", "i686"],
  aarch64: ["aarch64"],
  armv7: ["v5l", "v6l", "v7l", "v8l"],
};

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
  const temporary = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    for (const arch of carriedArchs()) {
      for (const platform of PLATFORMS[arch]) {
        mkdirSync(join(temporary, platform), { recursive: true, mode: 0o755 });
        symlinkSync(
          join("..", "..", arch, "libdmtcp.so"),
          join(temporary, platform, "libdmtcp.so"),
        );
      }
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
