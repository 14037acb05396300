import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DMTCP, DMTCP_ARM64, program, ROOT, Sandbox, until } from "./harness";

let sandbox: Sandbox;
beforeEach(() => (sandbox = new Sandbox()));
afterEach(() => sandbox.cleanup());

describe("the dmtcp executable", () => {
  test("--version works with an empty environment and no project tree", () => {
    const result = Bun.spawnSync(["env", "-i", DMTCP, "--version"], { cwd: "/" });
    expect(result.exitCode).toBe(0);
    expect(result.stdout.toString()).toMatch(/^dmtcp \(dmtcp\) \d+\.\d+\.\d+/);
  });

  test("the arm64 executable runs under qemu-aarch64", () => {
    const result = Bun.spawnSync(["qemu-aarch64-static", DMTCP_ARM64, "--version"], {
      env: { ...process.env, QEMU_LD_PREFIX: "/" },
    });
    expect(result.stderr.toString()).toBe("");
    expect(result.stdout.toString()).toMatch(/^dmtcp \(dmtcp\)/);
  });

  test("every tool has --help and exits 0", () => {
    for (const tool of ["launch", "restart", "command", "coordinator", "install-links"]) {
      const result = sandbox.run([tool, "--help"]);
      expect({ tool, code: result.code }).toEqual({ tool, code: 0 });
      expect(result.stdout.length).toBeGreaterThan(50);
    }
  });

  test("links named like DMTCP's tools act as those tools", async () => {
    const bin = sandbox.path("bin");
    const result = sandbox.run(["install-links", bin]);
    expect(result.code).toBe(0);
    expect(readdirSync(bin).sort()).toEqual([
      "dmtcp_command", "dmtcp_coordinator", "dmtcp_launch", "dmtcp_restart",
    ]);
    const env = { ...sandbox.env, PATH: `${bin}:${sandbox.env.PATH}` };
    const portFile = sandbox.path("port");
    const coordinator = Bun.spawn(["dmtcp_coordinator", "-p", "0", "--port-file", portFile], {
      env, stdout: "ignore", stderr: "ignore",
    });
    try {
      const port = await until(() => (existsSync(portFile) ? Bun.file(portFile).text() : ""));
      const launched = Bun.spawnSync(["dmtcp_launch", "-p", port, "sh", "-c", "exit 5"], { env });
      expect(launched.exitCode).toBe(5);
      const status = Bun.spawnSync(["dmtcp_command", "-p", port, "s"], { env });
      expect(status.exitCode).toBe(0);
      expect(status.stdout.toString()).toContain("NUM_PEERS=0");
      const version = Bun.spawnSync(["dmtcp_launch", "--version"], { env });
      expect(version.stdout.toString()).toStartWith("dmtcp_launch (dmtcp)");
    } finally {
      coordinator.kill();
    }
  });

  test("bad options give one clear message and exit 99 (command: 1 and 2)", async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [["launch", "--no-such-flag", "true"], 99, /unknown option '--no-such-flag'/],
      [["launch", "-p"], 99, /option '-p' needs a value/],
      [["launch", "-p", "99999", "true"], 99, /invalid value '99999' for --coord-port/],
      [["launch", "-i", "soon", "true"], 99, /invalid value 'soon' for --interval/],
      [["launch", "--ckpt-signal", "9", "true"], 99, /'9' for --ckpt-signal: SIGKILL cannot/],
      [["launch", "--ckpt-signal", "33", "true"], 99, /glibc reserves signal 33/],
      [["launch", "--ckpt-signal", "65", "true"], 99, /must be at most 64/],
      [["launch"], 99, /no program to launch/],
      [["frobnicate"], 99, /unknown command 'frobnicate'/],
      [["coordinator", "-p", "-5"], 99, /invalid value/],
      [["command", "--frob"], 1, /unknown command '--frob'/],
      [["command", "-p", "1", "-s"], 2, /Coordinator not found/],
      [["launch", "-j", "-p", "1", "true"], 99, /no coordinator is listening at 127.0.0.1:1/],
    ];
    for (const [args, code, message] of cases) {
      const result = sandbox.run(args);
      expect({ args, code: result.code }).toEqual({ args, code });
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toContain("    at ");
    }
    const env = sandbox.run(["launch", "true"], { env: { DMTCP_COORD_PORT: "http" } });
    expect(env.code).toBe(99);
    expect(env.stderr).toMatch(/invalid value 'http' for DMTCP_COORD_PORT/);
  });

  test("a port in use is refused with a clear message", async () => {
    const { port } = await sandbox.coordinator();
    const second = sandbox.run(["coordinator", "-p", String(port)]);
    expect(second.code).toBe(99);
    expect(second.stderr).toContain(`port ${port} is already in use`);
    const launch = sandbox.run(["launch", "--new-coordinator", "-p", String(port), "true"]);
    expect(launch.code).toBe(99);
  });

  test("natives are extracted once and reused by later runs", () => {
    const cache = sandbox.path("cache");
    const env = { XDG_CACHE_HOME: cache };
    expect(sandbox.run(["launch", "-p", "0", program("counter"), "1", "1"], { env }).code).toBe(0);
    const [hash] = readdirSync(join(cache, "dmtcp"));
    const library = join(cache, "dmtcp", hash!, "x86_64", "libdmtcp.so");
    const first = statSync(library);
    expect(sandbox.run(["launch", "-p", "0", program("counter"), "1", "1"], { env }).code).toBe(0);
    const second = statSync(library);
    expect(second.ino).toBe(first.ino);
    expect(second.mtimeMs).toBe(first.mtimeMs);
    expect(readdirSync(join(cache, "dmtcp"))).toEqual([hash!]);
  });

  test("two first runs at the same moment both succeed and leave one cache", async () => {
    const cache = sandbox.path("race-cache");
    mkdirSync(cache);
    const runs = [0, 1, 2, 3].map(() =>
      Bun.spawn([DMTCP, "launch", "-p", "0", program("counter"), "1", "1"], {
        env: { ...sandbox.env, XDG_CACHE_HOME: cache }, stdout: "ignore", stderr: "pipe",
      }),
    );
    const codes = await Promise.all(runs.map((run) => run.exited));
    expect(codes).toEqual([0, 0, 0, 0]);
    expect(
      readdirSync(join(cache, "dmtcp")).filter((name) => !name.includes(".tmp")),
    ).toHaveLength(1);
  });

  test("the project tree is not needed at run time", () => {
    const result = Bun.spawnSync([DMTCP, "--version"], {
      cwd: "/", env: { PATH: "/usr/bin:/bin" },
    });
    expect(result.exitCode).toBe(0);
    expect(ROOT.length).toBeGreaterThan(0);
  });
});

describe("the arm64 executable under qemu-user", () => {
  test("launches aarch64 and armv7 programs that register with its coordinator", async () => {
    const portFile = sandbox.path("arm-port");
    const coordinator = sandbox.spawn(
      [DMTCP_ARM64, "coordinator", "-p", "0", "--port-file", portFile],
    );
    const port = await until(() => (existsSync(portFile) ? Bun.file(portFile).text() : ""), {
      timeoutMs: 30000, what: "the emulated coordinator",
    });
    for (const arch of ["aarch64", "armv7"] as const) {
      const counter = sandbox.spawn(
        [DMTCP_ARM64, "launch", "-p", port, program("counter", arch), "20"],
      );
      await until(() => sandbox.run(["command", "-p", port, "-l"]).stdout.includes(
        `counter[`), { timeoutMs: 30000, what: `the ${arch} program to register` });
      expect(sandbox.status(Number(port)).peers).toBe(1);
      counter.child.kill("SIGKILL");
      await counter.exited();
      await until(() => sandbox.status(Number(port)).peers === 0, { timeoutMs: 30000 });
    }
    coordinator.child.kill("SIGTERM");
  });
});
