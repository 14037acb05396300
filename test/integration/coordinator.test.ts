import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { DMTCP, program, Sandbox, until } from "./harness";
import * as protocol from "../../src/format/protocol";

let sandbox: Sandbox;
beforeEach(() => (sandbox = new Sandbox()));
afterEach(() => sandbox.cleanup());

async function rawHello(port: number, token: Uint8Array): Promise<protocol.Frame | "closed"> {
  const reader = new protocol.FrameReader();
  return await new Promise((resolve) => {
    void Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(socket) {
          socket.write(protocol.encode(protocol.header({
            kind: protocol.Kind.hello_worker, real_pid: 1, token,
          }), protocol.joinStrings(["intruder", "elsewhere"])));
        },
        data(_socket, data) {
          const frames = reader.push(new Uint8Array(data));
          if (frames[0]) resolve(frames[0]);
        },
        close() {
          resolve("closed");
        },
      },
    });
  });
}

describe("dmtcp coordinator", () => {
  test("a connection without the token is refused and logged", async () => {
    const coordinator = await sandbox.coordinator();
    const reply = await rawHello(coordinator.port, new Uint8Array(16));
    expect(reply).not.toBe("closed");
    const frame = reply as protocol.Frame;
    expect(frame.header.kind).toBe(protocol.Kind.reject);
    expect(frame.header.status).toBe(protocol.Status.bad_token);
    await until(() => coordinator.process.stderr.includes("wrong token"), { what: "the log line" });
    expect(sandbox.status(coordinator.port).peers).toBe(0);
  });

  test("it listens on loopback only by default", async () => {
    const coordinator = await sandbox.coordinator();
    const hex = coordinator.port.toString(16).toUpperCase().padStart(4, "0");
    const table = await Bun.file("/proc/net/tcp").text();
    const listening = table.split("\n").filter((line) => line.includes(`:${hex} 00000000:0000 0A`));
    expect(listening).toHaveLength(1);
    expect(listening[0]).toContain(`0100007F:${hex}`);
  });

  test("--interval, --kill and --quit do what they say", async () => {
    const coordinator = await sandbox.coordinator();
    const port = String(coordinator.port);
    const interval = sandbox.run(["command", "-p", port, "--interval", "30"]);
    expect(interval.stdout).toContain("Interval changed to 30");
    expect(sandbox.run(["command", "-p", port, "-s"]).stdout).toContain("CKPT_INTERVAL=30");
    const counter = sandbox.spawn([DMTCP, "launch", "-p", port, program("counter"), "20"]);
    await until(() => sandbox.status(coordinator.port).peers === 1, { what: "registration" });
    expect(sandbox.run(["command", "-p", port, "--kill"]).code).toBe(0);
    expect(await counter.exited()).toBe(0);
    expect(sandbox.run(["command", "-p", port, "--quit"]).code).toBe(0);
    expect(await coordinator.process.exited()).toBe(0);
  });

  test("--json follows DMTCP's schema, including when no coordinator answers", async () => {
    const coordinator = await sandbox.coordinator();
    const status = sandbox.run(["command", "-p", String(coordinator.port), "--json", "-s"]);
    expect(Object.keys(JSON.parse(status.stdout))).toEqual([
      "schema_version", "command", "command_status", "coordinator_host", "coordinator_port",
      "num_peers", "running", "checkpoint_interval",
    ]);
    const missing = sandbox.run(["command", "-p", "1", "--json", "-s"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("");
    expect(JSON.parse(missing.stdout).command_status).toBe("DMT_COORD_NOT_FOUND");
  });

  test("--daemon returns once the coordinator listens in the background", async () => {
    const portFile = sandbox.path("daemon-port");
    const result = sandbox.run(["coordinator", "--daemon", "-q", "-p", "0", "--port-file", portFile,
      "--exit-on-last"]);
    expect(result.code).toBe(0);
    const port = Number(await Bun.file(portFile).text());
    expect(sandbox.status(port).peers).toBe(0);
    expect(sandbox.run(["command", "-p", String(port), "-q"]).code).toBe(0);
  });
});
