import { afterEach, describe, expect, test } from "bun:test";
import {
  mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Arch, Barrier, Command, encode, FrameReader, header, joinStrings, Kind, Status, WorkerState,
  type Frame, type Header,
} from "../../src/format/protocol";
import {
  CoordinatorRefused, CoordinatorUnreachable, requestCoordinator,
} from "../../src/coordinator/client";
import { startServer, type RunningServer } from "../../src/coordinator/server";
import { until } from "../integration/harness";

const TOKEN = crypto.getRandomValues(new Uint8Array(16));
const HOST = "127.0.0.1";

let servers: RunningServer[] = [];
let scratchDirs: string[] = [];
afterEach(() => {
  for (const server of servers) server.stop();
  servers = [];
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
  scratchDirs = [];
});

async function start(options: Partial<Parameters<typeof startServer>[0]> = {}) {
  const logs: string[] = [];
  const server = await startServer({
    token: TOKEN, port: 0, log: (level, message) => logs.push(`${level}: ${message}`), ...options,
  });
  servers.push(server);
  return { server, logs };
}

/// A bare worker: connects, says hello, and hands back the frames it receives.
async function rawWorker(port: number, name: string) {
  const reader = new FrameReader();
  const frames: Frame[] = [];
  let wake = () => {};
  const socket = await Bun.connect({
    hostname: HOST,
    port,
    socket: {
      data(_socket, data) {
        frames.push(...reader.push(data));
        wake();
      },
    },
  });
  const hello = header({
    kind: Kind.hello_worker, real_pid: process.pid, state: WorkerState.running,
    arch: Arch.x86_64, token: TOKEN,
  });
  socket.write(encode(hello, joinStrings([name, "node1"])));
  const next = async (): Promise<Frame> => {
    while (frames.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return frames.shift()!;
  };
  const send = (fields: Partial<Header> & { kind: number }, payload?: Uint8Array) =>
    socket.write(encode(header({ token: TOKEN, ...fields }), payload));
  return { socket, next, send };
}

/// A port nothing listens on: bound once by us, then released.
function closedPort(): number {
  const listener = Bun.listen({ hostname: HOST, port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

describe("coordinator server", () => {
  test("status with the right token gets the coordinator's reply", async () => {
    const { server } = await start({ intervalS: 9 });
    const reply = await requestCoordinator({
      host: HOST, port: server.port, token: TOKEN, command: Command.status,
    });
    expect(reply).toEqual({
      command: Command.status, status: Status.success, peerCount: 0, running: false,
      intervalS: 9, listText: undefined,
    });
  });

  test("a wrong token is refused, and the coordinator logs who tried", async () => {
    const { server, logs } = await start();
    const request = requestCoordinator({
      host: HOST, port: server.port, token: new Uint8Array(16), command: Command.status,
    });
    await expect(request).rejects.toBeInstanceOf(CoordinatorRefused);
    await request.catch((error: Error) => expect(error.message).toContain("token does not match"));
    expect(logs.some((line) => /^warn: refused connection from 127\.0\.0\.1:\d+: wrong token$/
      .test(line))).toBe(true);
  });

  test("a closed port is CoordinatorUnreachable", async () => {
    const port = closedPort();
    const request = requestCoordinator({ host: HOST, port, token: TOKEN, command: Command.status });
    await expect(request).rejects.toBeInstanceOf(CoordinatorUnreachable);
    await request.catch((error: CoordinatorUnreachable) => expect(error.port).toBe(port));
  });

  test("a worker is accepted as 40000, then listed and killed", async () => {
    const { server } = await start();
    const worker = await rawWorker(server.port, "counter");
    const accept = await worker.next();
    expect(accept.header.kind).toBe(Kind.accept);
    expect(accept.header.worker_id).toBe(40000);
    const list = await requestCoordinator({
      host: HOST, port: server.port, token: TOKEN, command: Command.list,
    });
    expect(list.peerCount).toBe(1);
    expect(list.listText).toContain(`1, counter[40000:${process.pid}]@node1, `);
    expect(list.listText).toContain(", WorkerState::RUNNING, \n");
    const port = server.port;
    await requestCoordinator({ host: HOST, port, token: TOKEN, command: Command.kill });
    expect((await worker.next()).header.kind).toBe(Kind.kill);
    worker.socket.end();
  });

  test("quit replies and the coordinator exits 0", async () => {
    const { server } = await start();
    const reply = await requestCoordinator({
      host: HOST, port: server.port, token: TOKEN, command: Command.quit,
    });
    expect(reply.status).toBe(Status.success);
    expect(await server.exited).toBe(0);
  });

  test("a silent connection is closed after the hello timeout", async () => {
    const { server, logs } = await start({ helloTimeoutMs: 50 });
    const closed = Promise.withResolvers<void>();
    await Bun.connect({
      hostname: HOST, port: server.port, socket: { data() {}, close: () => closed.resolve() },
    });
    await closed.promise;
    expect(logs.some((line) => line.endsWith("no hello in time"))).toBe(true);
  });

  test("two workers go through a full checkpoint and the restart script appears", async () => {
    const ckptDir = mkdtempSync(join(tmpdir(), "dmtcp-ckpt-"));
    scratchDirs.push(ckptDir);
    const { server, logs } = await start({ ckptDir, restartCommand: ["/opt/dmtcp", "restart"] });
    const workers = [await rawWorker(server.port, "a.out"), await rawWorker(server.port, "b.out")];
    const accepts = await Promise.all(workers.map((worker) => worker.next()));
    const computationId = accepts[0]!.header.computation_id.toString(16);
    const port = server.port;
    const blocking = requestCoordinator({
      host: HOST, port, token: TOKEN, command: Command.blocking_checkpoint,
    });
    for (const worker of workers) expect((await worker.next()).header.kind).toBe(Kind.checkpoint);
    const steps = [
      [Barrier.suspended, WorkerState.suspended],
      [Barrier.checkpointed, WorkerState.checkpointing],
      [Barrier.written, WorkerState.checkpointed],
    ];
    for (const [barrier, state] of steps) {
      for (const worker of workers) worker.send({ kind: Kind.barrier, barrier, state });
      for (const worker of workers) {
        const released = (await worker.next()).header;
        expect([released.kind, released.barrier, released.peer_count])
          .toEqual([Kind.barrier_released, barrier, 2]);
      }
    }
    const images = ["ckpt_a.dmtcp", "ckpt_b.dmtcp"].map((name) => join(ckptDir, name));
    workers.forEach((worker, index) =>
      worker.send({ kind: Kind.image_written }, joinStrings([images[index]!])));
    const reply = await blocking;
    expect([reply.status, reply.peerCount]).toEqual([Status.success, 2]);
    const name = `dmtcp_restart_script_${computationId}.sh`;
    expect(readdirSync(ckptDir).sort()).toEqual(["dmtcp_restart_script.sh", name]);
    expect(readlinkSync(join(ckptDir, "dmtcp_restart_script.sh"))).toBe(name);
    expect(statSync(join(ckptDir, name)).mode & 0o777).toBe(0o700);
    const text = readFileSync(join(ckptDir, "dmtcp_restart_script.sh"), "utf8");
    expect(text).toContain(`given_ckpt_files=(\n  '${images[0]}'\n  '${images[1]}'\n)\n`);
    expect(text).toContain("dmt_rstr_cmd=('/opt/dmtcp' 'restart')\n");
    expect(text).toContain(`coord_port=\${DMTCP_COORD_PORT:-${port}}\n`);
    expect(logs).toContain("info: checkpoint 1 complete: 2 images");
    for (const worker of workers) worker.send({ kind: Kind.resuming, state: WorkerState.running });
    await until(async () => (await requestCoordinator({
      host: HOST, port, token: TOKEN, command: Command.status,
    })).running, { what: "every worker resumed" });
    for (const worker of workers) worker.socket.end();
  });

  test("a port in use fails with EADDRINUSE", async () => {
    const { server } = await start();
    const error = await startServer({ token: TOKEN, port: server.port }).catch((e) => e);
    expect(error.code).toBe("EADDRINUSE");
  });
});
