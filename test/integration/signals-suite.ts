// Signal and timer state across checkpoint and restart, at least two cycles each: handlers
// and their flags, masks, alternate signal stacks, interval and POSIX timers, and signals
// pending at the checkpoint, which must arrive after the restart exactly once. The same suite
// runs for every architecture (one file each, so the emulated ones can run in parallel), as
// checkpoint-suite.ts does. `dmtcp command` and `dmtcp inspect` come from the host's executable.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { FileSink } from "bun";
import {
  dmtcpFor, emulated, findImage, program, Sandbox, until, type Arch, type Computation,
  type Running,
} from "./harness";

let sandbox: Sandbox;
/// The executable that carries the architecture under test, and how much slower it runs.
let DMTCP: string;
let slow = 1;

const computation = () => sandbox.computation(DMTCP, 10000 * slow);
const launch = (c: Computation, argv: string[], stdin: "pipe" | "ignore" = "ignore") =>
  sandbox.launch(c, argv, stdin, DMTCP);

/// Waits as `until` does, with the deadline stretched for an emulated architecture.
function waitFor<T>(condition: () => T | Promise<T>, what = "condition", timeoutMs = 10000) {
  return until(condition, { timeoutMs: timeoutMs * slow, what });
}

async function checkpoint(c: Computation): Promise<void> {
  await waitFor(() => sandbox.status(Number(c.port)).running, "the computation to run");
  const result = sandbox.run(["command", "-p", c.port, "--bcheckpoint"]);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
}

async function cycle(c: Computation, running: Running, name: string, stdin: "pipe" | "ignore") {
  await checkpoint(c);
  const image = findImage(c.ckptDir, name);
  expect(image).toBeDefined();
  running.child.kill("SIGKILL");
  await running.exited();
  await waitFor(() => sandbox.status(Number(c.port)).peers === 0, "the worker to leave");
  return sandbox.spawn([DMTCP, "restart", "-p", c.port, image!], { stdin });
}

interface Round {
  round: number;
  alarms: number;
  rt: number;
  usr1: number;
}

/// "round R alarms A rt B usr1 U" lines of test/programs/signals_timers.c.
function rounds(running: Running): Round[] {
  return running.lines().filter((line) => line.startsWith("round ")).map((line) => {
    const [, round, , alarms, , rt, , usr1] = line.split(" ");
    return { round: Number(round), alarms: Number(alarms), rt: Number(rt), usr1: Number(usr1) };
  });
}

/// "round R alarms A usr1 U" lines of test/programs/threaded_handlers.c.
function handlerRounds(running: Running): { round: number; alarms: number; usr1: number }[] {
  return running.lines().filter((line) => line.startsWith("round ")).map((line) => {
    const [, round, , alarms, , usr1] = line.split(" ");
    return { round: Number(round), alarms: Number(alarms), usr1: Number(usr1) };
  });
}

/// "round R usr2 N" lines of test/programs/uses_sigusr2.c.
function usr2Rounds(running: Running): { round: number; usr2: number }[] {
  return running.lines().filter((line) => line.startsWith("round ")).map((line) => {
    const [, round, , usr2] = line.split(" ");
    return { round: Number(round), usr2: Number(usr2) };
  });
}

const WARNING =
  "dmtcp: uses_sigusr2 uses signal 12 (SIGUSR2), which dmtcp needs to checkpoint it; " +
  "launch it with --ckpt-signal ";

interface CpuRound {
  round: number;
  virtual: number;
  prof: number;
  cpu: number;
  thread: number;
  expirations: number;
  overrun: number;
}

/// "round R virtual V prof P cpu C thread T expirations E overrun O" of cpu_timers.c.
function cpuRounds(running: Running): CpuRound[] {
  return running.lines().filter((line) => line.startsWith("round ")).map((line) => {
    const words = line.split(" ");
    const value = (name: string) => Number(words[words.indexOf(name) + 1]);
    return {
      round: value("round"), virtual: value("virtual"), prof: value("prof"), cpu: value("cpu"),
      thread: value("thread"), expirations: value("expirations"), overrun: value("overrun"),
    };
  });
}

/// A fresh sandbox per test, with the executable and slowness of `arch`.
function useSandbox(arch: Arch): void {
  beforeEach(() => {
    sandbox = new Sandbox();
    DMTCP = dmtcpFor(arch);
    slow = emulated(arch) ? 6 : 1;
  });
  afterEach(() => sandbox.cleanup());
}

export function signalsSuite(arch: Arch): void {
  /// Per test: two cycles, each stretched under emulation.
  const timeoutMs = 120000 * (emulated(arch) ? 6 : 1);
  /// qemu-user keeps POSIX timers in a table of its own: the program gets ids 0x0caf0000 |
  /// slot, while /proc/self/timers lists the host timers behind them (host ids and signal
  /// numbers, nothing linking them to the program's). The runtime cannot list them and
  /// fails such a checkpoint, saying so; the tests of programs with POSIX timers are skipped
  /// there, and the last test checks that failure instead (docs/architectures.md).
  const withPosixTimers = test.skipIf(emulated(arch));

  describe(`signals and timers across checkpoint and restart (${arch})`, () => {
    useSandbox(arch);

    withPosixTimers(
      "an itimer, a POSIX timer, an alternate-stack handler and a blocked SIGTERM",
      async () => {
        const c = await computation();
        let running = launch(c, [program("signals_timers", arch), "50"]);
        for (let round = 0; round < 2; round++) {
          await waitFor(() => rounds(running).length >= 4, "signals_timers to make progress");
          const before = rounds(running).at(-1)!;
          running = await cycle(c, running, "signals_timers", "ignore");
          await waitFor(() => rounds(running).length >= 6, "signals_timers to run again");
          const after = rounds(running);
          expect(running.stdout).not.toContain("BAD");
          // Counts continue from where they were, and the timers still tick.
          expect(after[0]!.round).toBeGreaterThan(before.round);
          expect(after[0]!.alarms).toBeGreaterThanOrEqual(before.alarms);
          expect(after[0]!.rt).toBeGreaterThanOrEqual(before.rt);
          expect(after[0]!.usr1).toBeGreaterThanOrEqual(before.usr1);
          expect(after.at(-1)!.alarms).toBeGreaterThan(after[0]!.alarms);
          expect(after.at(-1)!.rt).toBeGreaterThan(after[0]!.rt);
          expect(after.at(-1)!.usr1 - after[0]!.usr1).toBe(after.at(-1)!.round - after[0]!.round);
        }
      },
      timeoutMs,
    );

    test("signals pending at the checkpoint arrive after restart, each exactly once", async () => {
      const c = await computation();
      let running = launch(c, [program("pending_signals", arch)], "pipe");
      const ticks = (r: Running) => r.lines().filter((line) => line.startsWith("tick")).length;
      await waitFor(() => running.stdout.includes("pending ready") && ticks(running) >= 2);
      for (let round = 0; round < 2; round++) {
        // A checkpoint that continues takes the pending signals and queues them again.
        await checkpoint(c);
        running = await cycle(c, running, "pending_signals", "pipe");
        await waitFor(() => ticks(running) >= 3, "pending_signals to run again");
        expect(running.stdout).not.toContain("BAD");
      }
      const stdin = running.child.stdin as FileSink;
      stdin.write("go\n");
      stdin.flush();
      expect(await running.exited()).toBe(0);
      expect(running.lines().at(-1)).toBe("got usr1=1 hup=1 rt1=1,2,3 rt3=7 on_thread=1");
    }, timeoutMs);

    withPosixTimers("the image lists pending signals and armed timers", async () => {
      const c = await computation();
      const running = launch(c, [program("signals_timers", arch), "50"], "ignore");
      await waitFor(() => rounds(running).length >= 2);
      await checkpoint(c);
      const inspect = sandbox.run(["inspect", findImage(c.ckptDir, "signals_timers")!]);
      expect(inspect.code).toBe(0);
      expect(inspect.stdout).toMatch(
        /timers: 2\n {2}itimer_real +next in \d+ ns, every 20000000 ns/,
      );
      expect(inspect.stdout).toMatch(
        / {2}posix +id 0 clock 1 signal 34 next in \d+ ns, every 30000000 ns/,
      );
    }, timeoutMs);
  });

  describe(`signal handlers of a multi-threaded program (${arch})`, () => {
    useSandbox(arch);

    test("run and return after each restart, and report the flags they were set with", async () => {
      const c = await computation();
      let running = launch(c, [program("threaded_handlers", arch), "30"]);
      for (let round = 0; round < 2; round++) {
        const progress = "threaded_handlers to make progress";
        await waitFor(() => handlerRounds(running).length >= 3, progress);
        const before = handlerRounds(running).at(-1)!;
        running = await cycle(c, running, "threaded_handlers", "ignore");
        await waitFor(() => handlerRounds(running).length >= 4, "threaded_handlers to run again");
        const after = handlerRounds(running);
        expect(running.stdout).not.toContain("BAD");
        expect(running.stderr).toBe("");
        expect(after[0]!.round).toBeGreaterThan(before.round);
        expect(after.at(-1)!.alarms).toBeGreaterThan(after[0]!.alarms);
        expect(after.at(-1)!.usr1 - after[0]!.usr1).toBe(after.at(-1)!.round - after[0]!.round);
      }
    }, timeoutMs);
  });

  describe(`older signal interfaces (${arch})`, () => {
    useSandbox(arch);

    test("sigsuspend with every other signal blocked, sigblock, sighold and sigset", async () => {
      const c = await computation();
      let running = launch(c, [program("old_signals", arch), "300"]);
      const counted = (r: Running) => r.lines().map((line) => Number(line.split(" ")[0]));
      for (let round = 0; round < 2; round++) {
        await waitFor(() => counted(running).length >= 3, "old_signals to make progress");
        const before = counted(running).at(-1)!;
        running = await cycle(c, running, "old_signals", "ignore");
        await waitFor(() => counted(running).length >= 3, "old_signals to run again");
        const after = counted(running);
        expect(after[0]!).toBeGreaterThan(before);
        after.forEach((value, index) => expect(value).toBe(after[0]! + index));
        expect(running.stdout).not.toContain("BAD");
        expect(running.stderr).toBe("");
      }
    }, timeoutMs);
  });

  describe(`a program that uses the checkpoint signal itself (${arch})`, () => {
    useSandbox(arch);

    test(
      "is warned once, keeps its handler and mask, and checkpoints over two cycles",
      async () => {
        const c = await computation();
        let running = launch(c, [program("uses_sigusr2", arch), "30"]);
        await waitFor(() => usr2Rounds(running).length >= 2, "uses_sigusr2 to start");
        expect(running.stderr.split(WARNING)).toHaveLength(2);
        // Sent from outside while the program blocks it: held, as the kernel would hold it.
        process.kill(running.pid, "SIGUSR2");
        for (let round = 0; round < 2; round++) {
          const before = usr2Rounds(running).at(-1)!;
          running = await cycle(c, running, "uses_sigusr2", "ignore");
          await waitFor(() => usr2Rounds(running).length >= 3, "the restarted program");
          expect(usr2Rounds(running)[0]!.round).toBeGreaterThan(before.round);
          expect(running.stdout).not.toContain("BAD");
          expect(running.stderr).not.toContain("dmtcp:");
        }
        expect(usr2Rounds(running).at(-1)!.usr2).toBe(1);
      },
      timeoutMs,
    );

    test("launched with --ckpt-signal 40 it is not warned, and restarts", async () => {
      const c = await computation();
      let running = launch(c, ["--ckpt-signal", "40", program("uses_sigusr2", arch), "30"]);
      await waitFor(() => usr2Rounds(running).length >= 2, "uses_sigusr2 to start");
      const before = usr2Rounds(running).at(-1)!;
      running = await cycle(c, running, "uses_sigusr2", "ignore");
      await waitFor(() => usr2Rounds(running).length >= 3, "the restarted program");
      expect(usr2Rounds(running)[0]!.round).toBeGreaterThan(before.round);
      expect(running.stdout).not.toContain("BAD");
      await checkpoint(c);
      expect(running.stderr).toBe("");
    }, timeoutMs);

    test("DMTCP_QUIET=2 silences the warning", async () => {
      const c = await computation();
      const argv = [
        DMTCP, "launch", "-p", c.port, "-c", c.ckptDir, program("uses_sigusr2", arch), "30",
      ];
      const running = sandbox.spawn(argv, { env: { DMTCP_QUIET: "2" } });
      await waitFor(() => usr2Rounds(running).length >= 2, "uses_sigusr2 to start");
      await checkpoint(c);
      expect(running.stdout).not.toContain("BAD");
      expect(running.stderr).toBe("");
    }, timeoutMs);
  });

  describe(`timers on CPU-time clocks, overruns and SIGEV_THREAD (${arch})`, () => {
    useSandbox(arch);

    withPosixTimers(
      "virtual and profiling itimers, a CPU-time timer and overrun counts carry on",
      async () => {
        const c = await computation();
        let running = launch(c, [program("cpu_timers", arch)]);
        await waitFor(() => cpuRounds(running).length >= 4, "cpu_timers to make progress");
        await checkpoint(c);
        const inspect = sandbox.run(["inspect", findImage(c.ckptDir, "cpu_timers")!]);
        expect(inspect.stdout).toMatch(/itimer_virtual +next in \d+ ns, every 10000000 ns/);
        expect(inspect.stdout).toMatch(/itimer_prof +next in \d+ ns, every 10000000 ns/);
        expect(inspect.stdout).toMatch(/posix +id 0 clock -6 signal 35 .*every 20000000 ns/);
        for (let round = 0; round < 2; round++) {
          const before = cpuRounds(running).at(-1)!;
          running = await cycle(c, running, "cpu_timers", "ignore");
          await waitFor(() => cpuRounds(running).length >= 6, "the restarted cpu_timers");
          expect(running.stdout).not.toContain("BAD");
          const after = cpuRounds(running);
          for (const key of ["virtual", "prof", "cpu", "expirations"] as const) {
            // Nothing counted is lost, and every timer still fires.
            expect({ key, first: after[0]![key] >= before[key] }).toEqual({ key, first: true });
            expect({ key, grew: after.at(-1)![key] > after[0]![key] }).toEqual({ key, grew: true });
          }
          // The blocked 5 ms timer's signal is taken every 50 ms: its overrun counts the rest.
          expect(after.slice(1).some((line) => line.overrun > 0)).toBe(true);
        }
      },
      timeoutMs,
    );

    withPosixTimers(
      "a SIGEV_THREAD timer keeps running its function, and more come and go",
      async () => {
        const c = await computation();
        let running = launch(c, [program("cpu_timers", arch), "thread"]);
        await waitFor(() => cpuRounds(running).some((line) => line.thread > 0), "the timer");
        for (let round = 0; round < 2; round++) {
          const before = cpuRounds(running).at(-1)!;
          running = await cycle(c, running, "cpu_timers", "ignore");
          await waitFor(() => cpuRounds(running).length >= 6, "the restarted cpu_timers");
          expect(running.stdout).not.toContain("BAD");
          const after = cpuRounds(running);
          expect(after[0]!.thread).toBeGreaterThanOrEqual(before.thread);
          expect(after.at(-1)!.thread).toBeGreaterThan(after[0]!.thread);
        }
      },
      timeoutMs,
    );

    test.if(emulated(arch))(
      "under qemu-user a POSIX timer fails the checkpoint, saying why",
      async () => {
        const c = await computation();
        const running = launch(c, [program("signals_timers", arch), "50"]);
        await waitFor(() => rounds(running).length >= 2, "signals_timers to start");
        await waitFor(() => sandbox.status(Number(c.port)).running, "the computation");
        const result = sandbox.run(["command", "-p", c.port, "--bcheckpoint"]);
        expect(result.code).not.toBe(0);
        expect(result.stdout + result.stderr).toContain("saving timer: HiddenByEmulator");
        const seen = rounds(running).length;
        await waitFor(() => rounds(running).length > seen, "the program to go on");
        expect(running.stdout).not.toContain("BAD");
      },
      timeoutMs,
    );
  });
}
