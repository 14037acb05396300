import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ROOT } from "./harness";
import { loaderPlatform, PLATFORMS } from "../../src/native/cache";
import type { ArchName } from "../../src/native/elf";

const ARCHS: ArchName[] = ["x86_64", "i386", "aarch64", "armv7"];
/// What the runtime may take from libc: nothing that allocates or does stdio.
/// The only exports not named dmtcp_: the process-id wrappers (core/runtime/pids.zig), the
/// /proc path wrappers (core/runtime/proc_paths.zig, which pass fopen and opendir on to glibc),
/// the signal wrappers that guard the checkpoint signal (core/runtime/signal_wrappers.zig),
/// clone, whose children without CLONE_VM join as fork's do (core/runtime/fork.zig), and
/// timer_create, which runs SIGEV_THREAD timers on a thread of ours (timer_threads.zig).
const WRAPPERS = [
  "getpid", "getppid", "gettid", "getpgid", "getpgrp", "getsid", "setsid", "setpgid", "setpgrp",
  "kill", "killpg", "tgkill", "wait4", "waitpid", "wait", "wait3", "waitid", "tcgetpgrp",
  "tcsetpgrp", "syscall", "sigaction", "signal", "bsd_signal", "sigprocmask", "pthread_sigmask",
  "open", "open64", "openat", "openat64", "__open_2", "__open64_2", "__openat_2", "__openat64_2",
  "fopen", "fopen64", "opendir", "stat", "stat64", "lstat", "lstat64", "fstatat", "fstatat64",
  "__xstat", "__xstat64", "__lxstat", "__lxstat64", "__fxstatat", "__fxstatat64", "statx",
  "access", "faccessat", "readlink", "readlinkat", "__readlink_chk", "execve", "execv", "execvp",
  "execvpe", "clone",
  "timer_create", "sighold", "sigrelse", "sigignore", "sigset", "sigblock", "sigsetmask",
  "siggetmask", "sigsuspend", "__sigpause", "sigpause", "__xpg_sigpause",
];
const FORBIDDEN = /^(malloc|calloc|realloc|free|printf|fprintf|puts|fwrite|fopen|posix_memalign)$/;

function dynamicSymbols(path: string, which: "--defined-only" | "--undefined-only"): string[] {
  const result = Bun.spawnSync(["nm", "-D", which, path]);
  expect(result.exitCode).toBe(0);
  return result.stdout.toString().trim().split("\n").filter(Boolean)
    .map((line) => line.trim().split(/\s+/).at(-1)!.replace(/@.*/, ""));
}

describe("the native parts", () => {
  for (const arch of ARCHS) {
    const exportsTitle =
      `${arch} libdmtcp.so exports only dmtcp_ symbols and the pid, path and signal wrappers, ` +
      "and imports no allocator or stdio";
    test(exportsTitle, () => {
      const library = join(ROOT, "zig-out", arch, "libdmtcp.so");
      const exported = dynamicSymbols(library, "--defined-only");
      expect(exported.length).toBeGreaterThan(0);
      const others = exported.filter((name) => !name.startsWith("dmtcp_"));
      expect(others.sort()).toEqual([...WRAPPERS].sort());
      const imported = dynamicSymbols(library, "--undefined-only");
      expect(imported.filter((name) => FORBIDDEN.test(name))).toEqual([]);
    });

    // The table, not only what the links learn from the loaders when they are made: a loader
    // here that says a name the table lacks means the table is behind glibc or the kernel.
    test(`${arch}: this machine's loader gives $PLATFORM a name of the table`, () => {
      const platform = loaderPlatform(arch);
      if (platform === undefined) return; // No such loader here, or glibc before 2.33.
      expect(PLATFORMS[arch]).toContain(platform);
    }, 30000);

    test(`${arch} mtcp_restart is static and needs no libc`, () => {
      const restart = join(ROOT, "zig-out", arch, "mtcp_restart");
      const header = Bun.spawnSync(["readelf", "-l", restart]).stdout.toString();
      expect(header).not.toContain("INTERP");
      expect(header).not.toContain("Requesting program interpreter");
    });
  }
});
