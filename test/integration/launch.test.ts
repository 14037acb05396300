import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, readFileSync } from "node:fs";
import { DMTCP, program, Sandbox, until } from "./harness";

let sandbox: Sandbox;
beforeEach(() => (sandbox = new Sandbox()));
afterEach(() => sandbox.cleanup());

describe("dmtcp launch", () => {
  test("a launched program is in --status and --list until it exits", async () => {
    const { port } = await sandbox.coordinator();
    const counter = sandbox.spawn([DMTCP, "launch", "-p", String(port), program("counter"), "50"]);
    await until(() => sandbox.status(port).peers === 1, { what: "the worker to register" });
    const list = sandbox.run(["command", "-p", String(port), "--list"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain("Client List:");
    expect(list.stdout).toMatch(new RegExp(`1, counter\\[40000:${counter.pid}\\]@`));
    expect(list.stdout).toContain("WorkerState::RUNNING");
    const status = sandbox.run(["command", "-p", String(port), "--status"]);
    expect(status.stdout).toContain("NUM_PEERS=1\n  RUNNING=yes\n  CKPT_INTERVAL=0");
    counter.child.kill("SIGTERM");
    await counter.exited();
    await until(() => sandbox.status(port).peers === 0, { what: "the worker to leave" });
  });

  test("the program keeps the launcher's pid and exit code", async () => {
    const { port } = await sandbox.coordinator();
    const result = sandbox.run(["launch", "-p", String(port), "sh", "-c", 'echo "$$"; exit 7']);
    expect(result.code).toBe(7);
    const shell = sandbox.spawn([DMTCP, "launch", "-p", String(port), "sh", "-c", 'echo "$$"']);
    expect(await shell.exited()).toBe(0);
    expect(shell.stdout.trim()).toBe(String(shell.pid));
  });

  test("a signal sent to the launch pid reaches the program", async () => {
    const { port } = await sandbox.coordinator();
    const script = 'trap "echo got-usr1; exit 3" USR1; echo ready; while :; do sleep 0.05; done';
    const shell = sandbox.spawn([DMTCP, "launch", "-p", String(port), "sh", "-c", script]);
    await until(() => shell.stdout.includes("ready"), { what: "the program to start" });
    await until(() => sandbox.status(port).peers >= 1, { what: "registration" });
    shell.child.kill("SIGUSR1");
    expect(await shell.exited()).toBe(3);
    expect(shell.stdout).toContain("got-usr1");
  });

  test("killing the coordinator leaves the program running", async () => {
    const coordinator = await sandbox.coordinator();
    const counter = sandbox.spawn(
      [DMTCP, "launch", "-p", String(coordinator.port), program("counter"), "20"],
    );
    await until(() => sandbox.status(coordinator.port).peers === 1, { what: "registration" });
    coordinator.process.child.kill("SIGKILL");
    await coordinator.process.exited();
    const seen = counter.lines().length;
    await until(() => counter.lines().length > seen + 5, { what: "the program to go on counting" });
    expect(counter.child.exitCode).toBeNull();
  });

  test("with no coordinator, launch starts one that exits after the last worker", async () => {
    const portFile = sandbox.path("launch-port");
    const counter = sandbox.spawn([
      DMTCP, "launch", "-p", "0", "--port-file", portFile, program("counter"), "20", "40",
    ]);
    const port = await until(() => Number(readFileSync(portFile, "utf8")), { what: "port file" });
    await until(() => sandbox.status(port).peers === 1, { what: "registration" });
    expect(await counter.exited()).toBe(0);
    await until(() => sandbox.run(["command", "-p", String(port), "-s"]).code === 2, {
      what: "the on-demand coordinator to exit",
    });
  });

  test("forked children and exec'd programs stay in the computation", async () => {
    const { port } = await sandbox.coordinator();
    const forker = sandbox.spawn([DMTCP, "launch", "-p", String(port), program("forker"), "20"]);
    await until(() => sandbox.status(port).peers === 2, { what: "parent and child to register" });
    const list = sandbox.run(["command", "-p", String(port), "--list"]).stdout;
    expect(list).toContain("forker[40000:");
    // The child's id is its spare connection's, or a new one when it forked before any spare.
    expect([...list.matchAll(/forker\[(\d+):/g)].map((match) => match[1])).toHaveLength(2);
    forker.child.kill("SIGKILL");
    await forker.exited();
    const exec = sandbox.spawn([
      DMTCP, "launch", "-p", String(port), "sh", "-c", `exec ${program("counter")} 20`,
    ]);
    // Worker ids go on from where the forker's spare connections left them.
    const taken = new RegExp(`counter\\[\\d+:${exec.pid}\\]`);
    await until(() => taken.test(sandbox.run(["command", "-p", String(port), "-l"]).stdout),
      { what: "the exec'd program to take over the worker" });
  });

  test("every child of a burst of forks joins, whether it execs at once or not", async () => {
    // A child could be handed a spare its parent's checkpoint thread still listed as being
    // opened, and close it as one of the parent's: it then never joined (1 run in 2 here).
    for (let round = 0; round < 3; round++) {
      const { port } = await sandbox.coordinator();
      const burst = sandbox.spawn([
        DMTCP,
        "launch",
        "-p",
        String(port),
        program("fork_burst"),
        "64",
      ]);
      await until(() => sandbox.status(port).peers === 65, {
        what: "the parent and its 64 children",
      });
      burst.child.kill("SIGKILL");
      await burst.exited();
      await until(() => sandbox.status(port).peers === 0, { what: "the children to end with it" });
    }
  });

  test("a 32-bit program gets the i386 runtime and registers", async () => {
    const { port } = await sandbox.coordinator();
    const counter = sandbox.spawn(
      [DMTCP, "launch", "-p", String(port), program("counter", "i386"), "20"],
    );
    await until(() => sandbox.status(port).peers === 1, { what: "the i386 worker to register" });
    await until(() => counter.lines().length > 2, { what: "the i386 program to count" });
  });

  test("static, setuid, missing and foreign programs are refused with exit 99", async () => {
    const { port } = await sandbox.coordinator();
    const cases: Array<[string, RegExp]> = [
      [program("static_hello"), /statically linked/],
      ["no-such-program-here", /no such program in PATH/],
      [program("counter", "aarch64"), /aarch64 program and this dmtcp carries x86_64 and i386/],
    ];
    const setuid = sandbox.path("setuid_counter");
    copyFileSync(program("counter"), setuid);
    chmodSync(setuid, 0o4755);
    cases.push([setuid, /setuid or setgid/]);
    for (const [target, message] of cases) {
      const result = sandbox.run(["launch", "-p", String(port), target]);
      expect({ target, code: result.code }).toEqual({ target, code: 99 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toContain("    at ");
    }
    const custom = sandbox.run(["launch", "-p", String(port), program("static_hello")], {
      env: { DMTCP_FAIL_RC: "42" },
    });
    expect(custom.code).toBe(42);
  });
});

describe("dmtcp launch on a shared port", () => {
  test("launches racing to start a coordinator on one port all join the same one", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = String(probe.port);
    probe.stop(true);
    const launches = [0, 1, 2].map(() =>
      sandbox.spawn([DMTCP, "launch", "-p", port, program("counter"), "20"]));
    await until(() => {
      const peers = sandbox.status(Number(port)).peers;
      if (peers === 3) return true;
      throw new Error(`${peers} joined; ${launches.map((launch) => launch.stderr).join(" | ")}`);
    }, { what: "all three to join" });
    for (const launch of launches) launch.child.kill("SIGKILL");
    sandbox.run(["command", "-p", port, "--quit"]);
  });
});
