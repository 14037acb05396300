// The controlling terminal: a job-control program that turned echo and canonical mode off and
// gave its terminal to a child's process group is restarted on another terminal, twice; the
// child must still be in the foreground (not stopped by SIGTTIN at its next read) and the
// terminal's settings must be the program's.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { FileSink } from "bun";
import { DMTCP, program, ROOT, Sandbox, until, type Running } from "./harness";

let sandbox: Sandbox;
beforeEach(() => (sandbox = new Sandbox()));
afterEach(() => sandbox.cleanup());

const RELAY = join(ROOT, "test/integration/pty_relay.py");

/// argv run on a new pseudo-terminal of its own, as a terminal emulator would.
const onTerminal = (argv: string[]) =>
  sandbox.spawn(["/usr/bin/python3", RELAY, ...argv], { stdin: "pipe" });

function type(running: Running, text: string): void {
  const stdin = running.child.stdin as FileSink;
  stdin.write(text);
  stdin.flush();
}

/// The child's answer to `line`, once it came.
async function answer(running: Running, line: string): Promise<string> {
  return await until(
    () => running.lines().find((text) => text.startsWith(`got ${line} `)) ?? "",
    { what: `the answer to '${line}'` },
  );
}

describe("controlling terminal", () => {
  test("the foreground group and the terminal settings come back, twice", async () => {
    const c = await sandbox.computation();
    let running = onTerminal([
      DMTCP, "launch", "-p", c.port, "-c", c.ckptDir, program("terminal"),
    ]);
    await until(() => running.stdout.includes("ready"), { what: "the program" });
    type(running, "first\n");
    expect(await answer(running, "first")).toBe("got first foreground=1 raw=1");
    for (let round = 0; round < 2; round++) {
      await until(() => sandbox.status(Number(c.port)).peers === 2, { what: "both workers" });
      const result = sandbox.run(["command", "-p", c.port, "--bcheckpoint"]);
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
      await sandbox.killWorkers(c.port);
      await running.exited();
      const images = readdirSync(c.ckptDir).filter((name) => name.endsWith(".dmtcp"))
        .map((name) => join(c.ckptDir, name));
      expect(images.length).toBe(2);
      const terminals = images.map((image) =>
        sandbox.run(["inspect", image]).stdout.split("\n").find((line) =>
          line.startsWith("terminal:"))).sort();
      expect(terminals).toEqual([
        expect.stringMatching(/^terminal: on fd 0, background, no echo, raw, \d+x\d+$/),
        expect.stringMatching(/^terminal: on fd 0, foreground, no echo, raw, \d+x\d+$/),
      ]);
      running = onTerminal([DMTCP, "restart", "-p", c.port, ...images]);
      await until(() => {
        const status = sandbox.status(Number(c.port));
        return status.peers === 2 && status.running;
      }, { what: "the restart" });
      type(running, `after${round}\n`);
      // A new terminal echoes and is canonical: "raw=1" is the program's setting come back,
      // and no echo of the typed line precedes the answer.
      expect(await answer(running, `after${round}`)).toBe(`got after${round} foreground=1 raw=1`);
      expect(running.stdout).not.toContain(`after${round}\ngot`);
    }
    type(running, "q");
    await until(() => running.stdout.includes("child ended 0"), { what: "the child's end" });
    expect(await running.exited()).toBe(0);
  });
});
