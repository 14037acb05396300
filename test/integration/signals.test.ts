// Signal and timer state across checkpoint and restart, at least two cycles each: handlers
// and their flags, masks, alternate signal stacks, interval and POSIX timers, and signals
// pending at the checkpoint, which must arrive after the restart exactly once.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { FileSink } from "bun";
import {
  DMTCP, findImage, program, Sandbox, until, type Computation, type Running,
} from "./harness";

let sandbox: Sandbox;
beforeEach(() => (sandbox = new Sandbox()));
afterEach(() => sandbox.cleanup());

const computation = () => sandbox.computation();
const launch = (c: Computation, argv: string[], stdin: "pipe" | "ignore" = "ignore") =>
  sandbox.launch(c, argv, stdin);

async function checkpoint(c: Computation): Promise<void> {
  await until(() => sandbox.status(Number(c.port)).running, { what: "the computation to run" });
  const result = sandbox.run(["command", "-p", c.port, "--bcheckpoint"]);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
}

async function cycle(c: Computation, running: Running, name: string, stdin: "pipe" | "ignore") {
  await checkpoint(c);
  const image = findImage(c.ckptDir, name);
  expect(image).toBeDefined();
  running.child.kill("SIGKILL");
  await running.exited();
  await until(() => sandbox.status(Number(c.port)).peers === 0, { what: "the worker to leave" });
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

describe("signals and timers across checkpoint and restart", () => {
  test("an itimer, a POSIX timer, an alternate-stack handler and a blocked SIGTERM", async () => {
    const c = await computation();
    let running = launch(c, [program("signals_timers"), "50"]);
    for (let round = 0; round < 2; round++) {
      await until(() => rounds(running).length >= 4, { what: "signals_timers to make progress" });
      const before = rounds(running).at(-1)!;
      running = await cycle(c, running, "signals_timers", "ignore");
      await until(() => rounds(running).length >= 6, { what: "signals_timers to run again" });
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
  });

  test("signals pending at the checkpoint arrive after restart, each exactly once", async () => {
    const c = await computation();
    let running = launch(c, [program("pending_signals")], "pipe");
    const ticks = (r: Running) => r.lines().filter((line) => line.startsWith("tick")).length;
    await until(() => running.stdout.includes("pending ready") && ticks(running) >= 2);
    for (let round = 0; round < 2; round++) {
      // A checkpoint that continues takes the pending signals and queues them again.
      await checkpoint(c);
      running = await cycle(c, running, "pending_signals", "pipe");
      await until(() => ticks(running) >= 3, { what: "pending_signals to run again" });
      expect(running.stdout).not.toContain("BAD");
    }
    const stdin = running.child.stdin as FileSink;
    stdin.write("go\n");
    stdin.flush();
    expect(await running.exited()).toBe(0);
    expect(running.lines().at(-1)).toBe("got usr1=1 hup=1 rt1=1,2,3 rt3=7 on_thread=1");
  });

  test("the image lists pending signals and armed timers", async () => {
    const c = await computation();
    const running = launch(c, [program("signals_timers"), "50"], "ignore");
    await until(() => rounds(running).length >= 2);
    await checkpoint(c);
    const inspect = sandbox.run(["inspect", findImage(c.ckptDir, "signals_timers")!]);
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toMatch(/timers: 2\n {2}itimer_real +next in \d+ ns, every 20000000 ns/);
    expect(inspect.stdout).toMatch(
      / {2}posix +id 0 clock 1 signal 34 next in \d+ ns, every 30000000 ns/,
    );
  });
});

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

describe("older signal interfaces", () => {
  test("sigsuspend with every other signal blocked, sigblock, sighold and sigset", async () => {
    const c = await computation();
    let running = launch(c, [program("old_signals"), "300"]);
    const counted = (r: Running) => r.lines().map((line) => Number(line.split(" ")[0]));
    for (let round = 0; round < 2; round++) {
      await until(() => counted(running).length >= 3, { what: "old_signals to make progress" });
      const before = counted(running).at(-1)!;
      running = await cycle(c, running, "old_signals", "ignore");
      await until(() => counted(running).length >= 3, { what: "old_signals to run again" });
      const after = counted(running);
      expect(after[0]!).toBeGreaterThan(before);
      after.forEach((value, index) => expect(value).toBe(after[0]! + index));
      expect(running.stdout).not.toContain("BAD");
      expect(running.stderr).toBe("");
    }
  });
});

describe("a program that uses the checkpoint signal itself", () => {
  test("is warned once, keeps its handler and mask, and checkpoints over two cycles", async () => {
    const c = await computation();
    let running = launch(c, [program("uses_sigusr2"), "30"]);
    await until(() => usr2Rounds(running).length >= 2, { what: "uses_sigusr2 to start" });
    expect(running.stderr.split(WARNING)).toHaveLength(2);
    // Sent from outside while the program blocks it: held, as the kernel would hold it.
    process.kill(running.pid, "SIGUSR2");
    for (let round = 0; round < 2; round++) {
      const before = usr2Rounds(running).at(-1)!;
      running = await cycle(c, running, "uses_sigusr2", "ignore");
      await until(() => usr2Rounds(running).length >= 3, { what: "the restarted program" });
      expect(usr2Rounds(running)[0]!.round).toBeGreaterThan(before.round);
      expect(running.stdout).not.toContain("BAD");
      expect(running.stderr).not.toContain("dmtcp:");
    }
    expect(usr2Rounds(running).at(-1)!.usr2).toBe(1);
  });

  test("launched with --ckpt-signal 40 it is not warned, and restarts", async () => {
    const c = await computation();
    let running = launch(c, ["--ckpt-signal", "40", program("uses_sigusr2"), "30"]);
    await until(() => usr2Rounds(running).length >= 2, { what: "uses_sigusr2 to start" });
    const before = usr2Rounds(running).at(-1)!;
    running = await cycle(c, running, "uses_sigusr2", "ignore");
    await until(() => usr2Rounds(running).length >= 3, { what: "the restarted program" });
    expect(usr2Rounds(running)[0]!.round).toBeGreaterThan(before.round);
    expect(running.stdout).not.toContain("BAD");
    await checkpoint(c);
    expect(running.stderr).toBe("");
  });

  test("DMTCP_QUIET=2 silences the warning", async () => {
    const c = await computation();
    const argv = [DMTCP, "launch", "-p", c.port, "-c", c.ckptDir, program("uses_sigusr2"), "30"];
    const running = sandbox.spawn(argv, { env: { DMTCP_QUIET: "2" } });
    await until(() => usr2Rounds(running).length >= 2, { what: "uses_sigusr2 to start" });
    await checkpoint(c);
    expect(running.stdout).not.toContain("BAD");
    expect(running.stderr).toBe("");
  });
});

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

describe("timers on CPU-time clocks, overruns and SIGEV_THREAD", () => {
  test("virtual and profiling itimers, a CPU-time timer and overrun counts carry on", async () => {
    const c = await computation();
    let running = launch(c, [program("cpu_timers")]);
    await until(() => cpuRounds(running).length >= 4, { what: "cpu_timers to make progress" });
    await checkpoint(c);
    const inspect = sandbox.run(["inspect", findImage(c.ckptDir, "cpu_timers")!]);
    expect(inspect.stdout).toMatch(/itimer_virtual +next in \d+ ns, every 10000000 ns/);
    expect(inspect.stdout).toMatch(/itimer_prof +next in \d+ ns, every 10000000 ns/);
    expect(inspect.stdout).toMatch(/posix +id 0 clock -6 signal 35 .*every 20000000 ns/);
    for (let round = 0; round < 2; round++) {
      const before = cpuRounds(running).at(-1)!;
      running = await cycle(c, running, "cpu_timers", "ignore");
      await until(() => cpuRounds(running).length >= 6, { what: "the restarted cpu_timers" });
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
  });

  test("a SIGEV_THREAD timer keeps running its function, and more come and go", async () => {
    const c = await computation();
    let running = launch(c, [program("cpu_timers"), "thread"]);
    await until(() => cpuRounds(running).some((line) => line.thread > 0), { what: "the timer" });
    for (let round = 0; round < 2; round++) {
      const before = cpuRounds(running).at(-1)!;
      running = await cycle(c, running, "cpu_timers", "ignore");
      await until(() => cpuRounds(running).length >= 6, { what: "the restarted cpu_timers" });
      expect(running.stdout).not.toContain("BAD");
      const after = cpuRounds(running);
      expect(after[0]!.thread).toBeGreaterThanOrEqual(before.thread);
      expect(after.at(-1)!.thread).toBeGreaterThan(after[0]!.thread);
    }
  });
});
