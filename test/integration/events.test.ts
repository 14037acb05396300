// Event-loop descriptors across checkpoint and restart, two cycles each: epoll watching a
// pipe, an eventfd, a signalfd and a timerfd (test/programs/events.c), and Python's asyncio,
// whose loop is an epoll instance with a socket pair to wake it.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  DMTCP, findImage, program, Sandbox, until, type Computation, type Running,
} from "./harness";

let sandbox: Sandbox;
beforeEach(() => (sandbox = new Sandbox()));
afterEach(() => sandbox.cleanup());

const counted = (running: Running) =>
  running.lines().map((line) => Number(line.split(" ")[0])).filter((n) => !Number.isNaN(n));

/// Two checkpoint-kill-restart cycles of a program printing "<n> ..." lines: each restart
/// goes on after the checkpoint's line, contiguously, with no BAD line.
async function twoCycles(c: Computation, first: Running, name: string): Promise<Running> {
  let running = first;
  for (let round = 0; round < 2; round++) {
    await until(() => counted(running).length >= 3, { what: `${name} to make progress` });
    await until(() => sandbox.status(Number(c.port)).running, { what: "the computation" });
    const result = sandbox.run(["command", "-p", c.port, "--bcheckpoint"]);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
    const before = counted(running).at(-1)!;
    running.child.kill("SIGKILL");
    await running.exited();
    await until(() => sandbox.status(Number(c.port)).peers === 0, { what: "the worker to leave" });
    running = sandbox.spawn([DMTCP, "restart", "-p", c.port, findImage(c.ckptDir, name)!]);
    await until(() => counted(running).length >= 3, { what: `${name} to go on` });
    const after = counted(running);
    expect(after[0]!).toBeGreaterThanOrEqual(before);
    after.forEach((value, index) => expect(value).toBe(after[0]! + index));
    expect(running.stdout).not.toContain("BAD");
    expect(running.stderr).toBe("");
  }
  return running;
}

describe("event-loop descriptors", () => {
  test("epoll over a pipe, an eventfd, a signalfd and a timerfd", async () => {
    const c = await sandbox.computation();
    const running = await twoCycles(c, sandbox.launch(c, [program("events"), "20"]), "events");
    const inspect = sandbox.run(["inspect", findImage(c.ckptDir, "events")!]).stdout;
    expect(inspect).toMatch(/ epoll /);
    expect(running.lines().every((line) => line.endsWith(" ok"))).toBe(true);
  });

  test("python3 asyncio keeps its loop", async () => {
    const c = await sandbox.computation();
    const script = [
      "import asyncio",
      "async def main():",
      "    n = 0",
      "    while True:",
      "        print(n, flush=True)",
      "        n += 1",
      "        await asyncio.sleep(0.02)",
      "asyncio.run(main())",
    ].join("\n");
    await twoCycles(c, sandbox.launch(c, ["/usr/bin/python3", "-c", script]), "python3");
  });
});
