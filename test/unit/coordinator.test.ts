import { describe, expect, test } from "bun:test";
import {
  Barrier, Command, Flags, header, Kind, joinStrings, Status, WorkerState, type Header,
} from "../../src/format/protocol";
import {
  initialState, step, tokensEqual, type Action, type Config, type State,
} from "../../src/coordinator/state";

const TOKEN = new Uint8Array(16).fill(7);
const WRONG_TOKEN = new Uint8Array(16).fill(8);
const START_MS = 1_700_000_000_000;

function config(overrides: Partial<Config> = {}): Config {
  return {
    token: TOKEN,
    exitOnLast: false,
    killAfterCheckpoint: false,
    intervalS: 0,
    staleTimeoutS: 0,
    host: "localhost",
    port: 7779,
    startMs: START_MS,
    ckptDir: "/ckpt",
    ...overrides,
  };
}

/// Drives a state machine the way the server does and keeps every action it asked for.
class Harness {
  state: State;
  actions: Action[] = [];
  private nextConn = 1;

  constructor(overrides: Partial<Config> = {}) {
    this.state = initialState(config(overrides));
  }

  feed(event: Parameters<typeof step>[1]): Action[] {
    const result = step(this.state, event);
    this.state = result.state;
    this.actions.push(...result.actions);
    return result.actions;
  }

  connect(remote = "127.0.0.1:5555"): number {
    const conn = this.nextConn++;
    this.feed({ type: "connected", conn, remote });
    return conn;
  }

  message(conn: number, fields: Partial<Header> & { kind: number }, payload?: Uint8Array) {
    const message = header({ token: TOKEN, ...fields });
    const bytes = payload ?? new Uint8Array();
    return this.feed({ type: "message", conn, header: message, payload: bytes });
  }

  /// A worker that connects and says hello; returns its connection and the actions.
  worker(name: string, realPid: number, fields: Partial<Header> = {}) {
    const conn = this.connect();
    const actions = this.message(conn, {
      kind: Kind.hello_worker, real_pid: realPid, state: WorkerState.running, ...fields,
    }, joinStrings([name, "node1"]));
    return { conn, actions };
  }

  command(command: number, intervalS = -1) {
    const conn = this.connect();
    const fields = { kind: Kind.hello_command, command, interval_s: intervalS };
    return { conn, actions: this.message(conn, fields) };
  }

  barrier(conn: number, barrier: number, state: number) {
    return this.message(conn, { kind: Kind.barrier, barrier, state });
  }

  /// Every worker given reaches each checkpoint barrier in turn.
  throughBarriers(conns: number[]) {
    for (const [barrier, state] of CHECKPOINT_STEPS) {
      for (const conn of conns) this.barrier(conn, barrier, state);
    }
  }

  image(conn: number, path: string, status: number = Status.success, reason?: string) {
    const payload = joinStrings(reason === undefined ? [path] : [path, reason]);
    return this.message(conn, { kind: Kind.image_written, status }, payload);
  }

  resume(conn: number) {
    return this.message(conn, { kind: Kind.resuming, state: WorkerState.running });
  }
}

/// Each checkpoint barrier with the state a worker reports on reaching it.
const CHECKPOINT_STEPS = [
  [Barrier.suspended, WorkerState.suspended],
  [Barrier.checkpointed, WorkerState.checkpointing],
  [Barrier.written, WorkerState.checkpointed],
] as const;

function sent(actions: Action[], kind?: number) {
  return actions.flatMap((action) =>
    action.type === "send" && (kind === undefined || action.header.kind === kind) ? [action] : []);
}

function reply(actions: Action[]) {
  const [result] = sent(actions, Kind.command_result);
  expect(result).toBeDefined();
  return result!;
}

describe("coordinator state: connections", () => {
  test("a wrong token is refused with bad_token, logged with the peer's address, closed", () => {
    const harness = new Harness();
    const conn = harness.connect("127.0.0.1:5555");
    const actions = harness.feed({
      type: "message", conn,
      header: header({ kind: Kind.hello_command, command: Command.status, token: WRONG_TOKEN }),
      payload: new Uint8Array(),
    });
    expect(actions).toEqual([
      { type: "send", conn, header: header({ kind: Kind.reject, status: Status.bad_token }) },
      {
        type: "log", level: "warn", message: "refused connection from 127.0.0.1:5555: wrong token",
      },
      { type: "close", conn },
    ]);
    expect(harness.state.connections.size).toBe(0);
  });

  test("a first message that is not a hello is refused with bad_message", () => {
    const harness = new Harness();
    const conn = harness.connect();
    const actions = harness.message(conn, { kind: Kind.barrier });
    expect(sent(actions)[0]!.header.status).toBe(Status.bad_message);
    expect(actions.at(-1)).toEqual({ type: "close", conn });
  });

  test("tokens compare equal only when every byte matches", () => {
    expect(tokensEqual(TOKEN, new Uint8Array(16).fill(7))).toBe(true);
    const almost = new Uint8Array(16).fill(7);
    almost[15] = 0;
    expect(tokensEqual(almost, TOKEN)).toBe(false);
    expect(tokensEqual(new Uint8Array(15).fill(7), TOKEN)).toBe(false);
  });

  test("a connection without a hello in time is closed; a registered worker is not", () => {
    const harness = new Harness();
    const silent = harness.connect("10.0.0.2:4000");
    const { conn: worker } = harness.worker("a.out", 100);
    expect(harness.feed({ type: "hello_timeout", conn: worker })).toEqual([]);
    const actions = harness.feed({ type: "hello_timeout", conn: silent });
    expect(actions).toEqual([
      {
        type: "log", level: "warn",
        message: "closed connection from 10.0.0.2:4000: no hello in time",
      },
      { type: "close", conn: silent },
    ]);
  });

  test("a bad frame closes the connection and removes its worker", () => {
    const harness = new Harness();
    const { conn } = harness.worker("a.out", 100);
    const actions = harness.feed({ type: "bad_frame", conn, reason: "bad magic" });
    expect(actions.some((action) => action.type === "close" && action.conn === conn)).toBe(true);
    expect(harness.state.workers.size).toBe(0);
  });
});

describe("coordinator state: workers", () => {
  test("workers get ids 40000, 41000, ... and the first one creates the computation", () => {
    const harness = new Harness();
    const first = harness.worker("a.out", 12345);
    const second = harness.worker("b.out", 12346);
    const computationId = (BigInt(START_MS) << 20n) ^ 12345n;
    const [accept1] = sent(first.actions, Kind.accept);
    const [accept2] = sent(second.actions, Kind.accept);
    expect(accept1!.header.worker_id).toBe(40000);
    expect(accept2!.header.worker_id).toBe(41000);
    expect(accept1!.header.computation_id).toBe(computationId);
    expect(accept2!.header.computation_id).toBe(computationId);
    expect(harness.state.computationId).toBe(computationId);
  });

  test("an id still in use is never handed out again", () => {
    const harness = new Harness();
    const first = harness.worker("a.out", 1);
    harness.worker("b.out", 2);
    harness.feed({ type: "closed", conn: first.conn });
    const third = harness.worker("c.out", 3);
    expect(sent(third.actions, Kind.accept)[0]!.header.worker_id).toBe(42000);
  });

  test("a hello with an interval sets the current interval and arms the timer", () => {
    const harness = new Harness({ intervalS: 60 });
    const { actions } = harness.worker("a.out", 1, { interval_s: 5 });
    expect(sent(actions, Kind.accept)[0]!.header.interval_s).toBe(5);
    expect(harness.state.intervalS).toBe(5);
    expect(harness.state.defaultIntervalS).toBe(60);
    expect(harness.state.nextCheckpointMs).toBe(START_MS + 5000);
    const second = harness.worker("b.out", 2);
    expect(sent(second.actions, Kind.accept)[0]!.header.interval_s).toBe(5);
  });

  test("worker_info updates name, host and real pid", () => {
    const harness = new Harness();
    const { conn } = harness.worker("dmtcp", 100);
    const actions = harness.message(conn, { kind: Kind.worker_info, real_pid: 200 },
      joinStrings(["counter", "node2"]));
    expect(actions).toEqual([]);
    const worker = harness.state.workers.get(conn)!;
    expect([worker.name, worker.host, worker.realPid]).toEqual(["counter", "node2", 200]);
  });

  test("a hello without names is refused", () => {
    const harness = new Harness();
    const { actions } = harness.worker("", 1);
    expect(sent(actions)[0]!.header.kind).toBe(Kind.reject);
    expect(harness.state.workers.size).toBe(0);
  });

  test("a disconnect removes the worker; the last one leaving ends the computation", () => {
    const harness = new Harness();
    const first = harness.worker("a.out", 1);
    const second = harness.worker("b.out", 2);
    harness.feed({ type: "closed", conn: first.conn });
    expect([...harness.state.workers.keys()]).toEqual([second.conn]);
    const actions = harness.feed({ type: "closed", conn: second.conn });
    expect(actions.some((action) => action.type === "exit")).toBe(false);
    expect(harness.state.workers.size).toBe(0);
    expect(harness.state.computationId).toBe(0n);
  });

  test("with exitOnLast the last worker leaving exits 0", () => {
    const harness = new Harness({ exitOnLast: true });
    const { conn } = harness.worker("a.out", 1);
    const actions = harness.feed({ type: "closed", conn });
    expect(actions.slice(-2)).toEqual([
      { type: "log", level: "info", message: "last worker exited" },
      { type: "exit", code: 0 },
    ]);
    expect(harness.feed({ type: "tick", nowMs: START_MS + 1000 })).toEqual([]);
  });
});

describe("coordinator state: commands", () => {
  test("status reports peers, running and interval, then closes the command connection", () => {
    const harness = new Harness({ intervalS: 30 });
    const empty = harness.command(Command.status);
    expect(reply(empty.actions).header.flags & Flags.running).toBe(0);
    harness.worker("a.out", 1);
    const { conn, actions } = harness.command(Command.status);
    const result = reply(actions).header;
    expect([result.status, result.peer_count, result.interval_s]).toEqual([0, 1, 30]);
    expect(result.flags & Flags.running).toBe(Flags.running);
    expect(actions.at(-1)).toEqual({ type: "close", conn });
  });

  test("running is false unless every worker runs", () => {
    const harness = new Harness();
    harness.worker("a.out", 1);
    const { conn } = harness.worker("b.out", 2);
    harness.state.workers.get(conn)!.state = WorkerState.suspended;
    expect(reply(harness.command(Command.status).actions).header.flags).toBe(0);
  });

  test("list sends DMTCP's exact text", () => {
    const harness = new Harness();
    harness.worker("a.out", 0x3039);
    harness.worker("b.out", 0x303a);
    const result = reply(harness.command(Command.list).actions);
    const id = ((BigInt(START_MS) << 20n) ^ 0x3039n).toString(16);
    expect(new TextDecoder().decode(result.payload)).toBe(
      "Client List:\n" +
      "#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n" +
      `1, a.out[40000:12345]@node1, ${id}-40000-3039, WorkerState::RUNNING, \n` +
      `2, b.out[41000:12346]@node1, ${id}-41000-303a, WorkerState::RUNNING, \n`,
    );
  });

  test("interval sets the current and default interval", () => {
    const harness = new Harness();
    harness.worker("a.out", 1);
    const result = reply(harness.command(Command.interval, 42).actions).header;
    expect([result.status, result.interval_s]).toEqual([Status.success, 42]);
    expect([harness.state.intervalS, harness.state.defaultIntervalS]).toEqual([42, 42]);
    expect(harness.state.nextCheckpointMs).toBe(START_MS + 42_000);
    expect(reply(harness.command(Command.interval, -1).actions).header.status)
      .toBe(Status.invalid_command);
  });

  test("kill sends kill to every worker and succeeds, even with none", () => {
    const harness = new Harness();
    expect(reply(harness.command(Command.kill).actions).header.status).toBe(Status.success);
    const a = harness.worker("a.out", 1);
    const b = harness.worker("b.out", 2);
    const { actions } = harness.command(Command.kill);
    expect(sent(actions, Kind.kill).map((action) => action.conn)).toEqual([a.conn, b.conn]);
    expect(reply(actions).header.status).toBe(Status.success);
    expect(actions.some((action) => action.type === "exit")).toBe(false);
  });

  test("a worker joining during a kill is killed too", () => {
    const harness = new Harness();
    harness.worker("a.out", 1);
    harness.command(Command.kill);
    const late = harness.worker("late", 2);
    expect(sent(late.actions).map((action) => action.header.kind)).toEqual([Kind.kill]);
  });

  test("quit kills the workers, replies, then exits 0", () => {
    const harness = new Harness();
    const { conn: worker } = harness.worker("a.out", 1);
    const { conn, actions } = harness.command(Command.quit);
    const shapes = actions.filter((action) => action.type !== "log").map((action) =>
      [action.type, "conn" in action ? action.conn : "code" in action ? action.code : null]);
    expect(shapes).toEqual([["send", worker], ["send", conn], ["close", conn], ["exit", 0]]);
  });

  test("checkpoint and blocking checkpoint are not_running without workers", () => {
    const harness = new Harness();
    for (const command of [Command.checkpoint, Command.blocking_checkpoint]) {
      const { conn, actions } = harness.command(command);
      expect(reply(actions).header.status).toBe(Status.not_running);
      expect(actions.at(-1)).toEqual({ type: "close", conn });
    }
  });
});

describe("coordinator state: timers", () => {
  test("the stale timeout counts from start, and again from the last worker leaving", () => {
    const harness = new Harness({ staleTimeoutS: 10 });
    expect(harness.feed({ type: "tick", nowMs: START_MS + 9_000 })).toEqual([]);
    const { conn } = harness.worker("a.out", 1);
    expect(harness.feed({ type: "tick", nowMs: START_MS + 20_000 })).toEqual([]);
    harness.feed({ type: "closed", conn });
    expect(harness.feed({ type: "tick", nowMs: START_MS + 29_000 })).toEqual([]);
    const actions = harness.feed({ type: "tick", nowMs: START_MS + 30_000 });
    expect(actions.at(-1)).toEqual({ type: "exit", code: 1 });
  });

  test("the timeout exits 1 whatever the workers do", () => {
    const harness = new Harness({ timeoutS: 5 });
    harness.worker("a.out", 1);
    expect(harness.feed({ type: "tick", nowMs: START_MS + 4_999 })).toEqual([]);
    expect(harness.feed({ type: "tick", nowMs: START_MS + 5_000 }).at(-1))
      .toEqual({ type: "exit", code: 1 });
  });

  test("the interval timer is armed by the first worker and disarmed when none remain", () => {
    const harness = new Harness({ intervalS: 60 });
    harness.feed({ type: "tick", nowMs: START_MS + 1_000 });
    expect(harness.state.nextCheckpointMs).toBeUndefined();
    const { conn } = harness.worker("a.out", 1);
    expect(harness.state.nextCheckpointMs).toBe(START_MS + 61_000);
    harness.feed({ type: "closed", conn });
    expect(harness.state.nextCheckpointMs).toBeUndefined();
  });
});

describe("coordinator state: restart", () => {
  test("restarted workers keep their ids and the computation named by their images", () => {
    const harness = new Harness();
    const fields = {
      kind: Kind.hello_restart, computation_id: 0xabcn, peer_count: 2, generation: 3,
      state: WorkerState.restarting,
    };
    const first = harness.connect();
    const accept = sent(harness.message(first, { ...fields, worker_id: 40000, real_pid: 9 },
      joinStrings(["a.out", "node1"])), Kind.accept)[0]!;
    expect([accept.header.worker_id, accept.header.computation_id]).toEqual([40000, 0xabcn]);
    const stranger = harness.connect();
    const refused = harness.message(stranger,
      { ...fields, computation_id: 0xdefn, worker_id: 41000 }, joinStrings(["b.out", "node1"]));
    expect(sent(refused)[0]!.header.status).toBe(Status.wrong_computation);
    const status = reply(harness.command(Command.status).actions).header;
    expect([status.peer_count, status.flags]).toEqual([1, 0]);
    const newcomer = harness.worker("c.out", 10);
    expect(sent(newcomer.actions)[0]!.header.status).toBe(Status.not_running);
  });
});

function logs(actions: Action[]) {
  return actions.flatMap((action) => action.type === "log" ? [action.message] : []);
}

function scripts(actions: Action[]) {
  return actions.flatMap((action) => action.type === "write_restart_script" ? [action.script] : []);
}

function closed(actions: Action[], conn: number) {
  return actions.some((action) => action.type === "close" && action.conn === conn);
}

/// Two running workers on node1, and the harness that holds them.
function twoWorkers(overrides: Partial<Config> = {}) {
  const harness = new Harness(overrides);
  const a = harness.worker("a.out", 1).conn;
  const b = harness.worker("b.out", 2).conn;
  return { harness, a, b };
}

describe("coordinator state: checkpoint", () => {
  test("checkpoint sends generation, computation and peer count to every worker", () => {
    const { harness, a, b } = twoWorkers();
    const { actions } = harness.command(Command.checkpoint);
    expect([reply(actions).header.status, reply(actions).header.peer_count]).toEqual([0, 2]);
    const requests = sent(actions, Kind.checkpoint);
    expect(requests.map((action) => action.conn)).toEqual([a, b]);
    const request = requests[0]!.header;
    expect([request.generation, request.peer_count, request.flags]).toEqual([1, 2, 0]);
    expect(request.computation_id).toBe(harness.state.computationId);
    expect(reply(harness.command(Command.status).actions).header.flags & Flags.running).toBe(0);
  });

  test("each barrier is released only when both workers reached it", () => {
    const { harness, a, b } = twoWorkers();
    harness.command(Command.checkpoint);
    for (const [barrier, state] of CHECKPOINT_STEPS) {
      expect(sent(harness.barrier(a, barrier, state))).toEqual([]);
      expect(harness.state.workers.get(a)!.state).toBe(state);
      const released = sent(harness.barrier(b, barrier, state), Kind.barrier_released);
      expect(released.map((action) => action.conn)).toEqual([a, b]);
      expect([released[0]!.header.barrier, released[0]!.header.peer_count]).toEqual([barrier, 2]);
    }
  });

  test("--list shows each worker's barrier during a checkpoint", () => {
    const { harness, a } = twoWorkers();
    harness.command(Command.checkpoint);
    harness.barrier(a, Barrier.suspended, WorkerState.suspended);
    const text = new TextDecoder().decode(reply(harness.command(Command.list).actions).payload);
    expect(text).toContain("a.out[40000:1]@node1, ");
    expect(text).toContain(", WorkerState::SUSPENDED, DMT:SUSPEND\n");
    expect(text).toContain(", WorkerState::PRESUSPEND, \n");
  });

  test("a full checkpoint writes the restart script, then the workers resume", () => {
    const { harness, a, b } = twoWorkers();
    harness.command(Command.checkpoint);
    harness.throughBarriers([a, b]);
    expect(scripts(harness.image(a, "/ckpt/ckpt_a.dmtcp"))).toEqual([]);
    const actions = harness.image(b, "/ckpt/ckpt_b.dmtcp");
    expect(scripts(actions)).toHaveLength(1);
    expect(logs(actions)).toContain("checkpoint 1 complete: 2 images");
    harness.resume(a);
    expect(harness.state.checkpoint).toBeDefined();
    harness.resume(b);
    expect(harness.state.checkpoint).toBeUndefined();
    const status = reply(harness.command(Command.status).actions).header;
    expect([status.flags & Flags.running, status.generation]).toEqual([Flags.running, 1]);
    expect(sent(harness.command(Command.checkpoint).actions, Kind.checkpoint)[0]!.header
      .generation).toBe(2);
  });

  test("the restart script action carries absolute images grouped by host", () => {
    const harness = new Harness({ host: "coord", port: 7000, intervalS: 30 });
    const conns = [["a", "node1"], ["b", "node2"], ["c", "node1"]].map(([name, host], index) => {
      const conn = harness.connect();
      harness.message(conn, { kind: Kind.hello_worker, real_pid: index + 1 },
        joinStrings([name!, host!]));
      return conn;
    });
    harness.command(Command.checkpoint);
    harness.throughBarriers(conns);
    harness.image(conns[2]!, "/d1/ckpt_c.dmtcp");
    harness.image(conns[0]!, "/d1/ckpt_a.dmtcp");
    const [script] = scripts(harness.image(conns[1]!, "/d2/ckpt_b.dmtcp"));
    expect(script).toEqual({
      ckptDir: "/ckpt",
      computationId: ((BigInt(START_MS) << 20n) ^ 1n).toString(16),
      generation: 1,
      coordHost: "coord",
      coordPort: 7000,
      intervalS: 30,
      hosts: [
        { host: "node1", images: ["/d1/ckpt_a.dmtcp", "/d1/ckpt_c.dmtcp"] },
        { host: "node2", images: ["/d2/ckpt_b.dmtcp"] },
      ],
    });
  });

  test("a worker that disconnects mid-barrier releases the barrier for the other", () => {
    const { harness, a, b } = twoWorkers();
    harness.command(Command.checkpoint);
    harness.barrier(a, Barrier.suspended, WorkerState.suspended);
    const released = sent(harness.feed({ type: "closed", conn: b }), Kind.barrier_released);
    expect(released.map((action) => [action.conn, action.header.peer_count])).toEqual([[a, 1]]);
    harness.barrier(a, Barrier.checkpointed, WorkerState.checkpointing);
    harness.barrier(a, Barrier.written, WorkerState.checkpointed);
    expect(scripts(harness.image(a, "/ckpt/ckpt_a.dmtcp"))).toHaveLength(1);
  });

  test("a worker sending another barrier than the current one is closed", () => {
    const { harness, a, b } = twoWorkers();
    harness.command(Command.checkpoint);
    const actions = harness.barrier(a, Barrier.written, WorkerState.checkpointed);
    expect(closed(actions, a)).toBe(true);
    expect(logs(actions)[0]).toEndWith("barrier written while waiting for suspended");
    const released = harness.barrier(b, Barrier.suspended, WorkerState.suspended);
    expect(sent(released, Kind.barrier_released).map((action) => action.conn)).toEqual([b]);
  });

  test("a repeated barrier is ignored and a wrong state is a protocol error", () => {
    const { harness, a, b } = twoWorkers();
    harness.command(Command.checkpoint);
    harness.barrier(a, Barrier.suspended, WorkerState.suspended);
    expect(harness.barrier(a, Barrier.suspended, WorkerState.suspended)).toEqual([]);
    const actions = harness.barrier(b, Barrier.suspended, WorkerState.running);
    expect(closed(actions, b)).toBe(true);
    expect(logs(actions)[0]).toEndWith("barrier suspended in state running");
  });

  test("barrier, image_written and resuming outside a checkpoint are protocol errors", () => {
    for (const kind of [Kind.barrier, Kind.image_written, Kind.resuming]) {
      const harness = new Harness();
      const { conn } = harness.worker("a.out", 1);
      const actions = harness.message(conn, {
        kind, barrier: Barrier.suspended, state: WorkerState.suspended,
      });
      expect(closed(actions, conn)).toBe(true);
    }
  });

  test("a checkpoint request while one is in progress is not_running", () => {
    const { harness, a, b } = twoWorkers();
    harness.command(Command.checkpoint);
    expect(reply(harness.command(Command.checkpoint).actions).header.status)
      .toBe(Status.not_running);
    harness.throughBarriers([a, b]);
    harness.image(a, "/ckpt/a.dmtcp");
    harness.image(b, "/ckpt/b.dmtcp");
    harness.resume(a);
    // One worker runs, the other has not resumed yet: still in progress.
    expect(reply(harness.command(Command.blocking_checkpoint).actions).header.status)
      .toBe(Status.not_running);
  });

  test("a blocking checkpoint replies only after both images are written", () => {
    const { harness, a, b } = twoWorkers();
    const { conn, actions } = harness.command(Command.blocking_checkpoint);
    expect(sent(actions, Kind.command_result)).toEqual([]);
    expect(closed(actions, conn)).toBe(false);
    harness.throughBarriers([a, b]);
    expect(sent(harness.image(a, "/ckpt/a.dmtcp"), Kind.command_result)).toEqual([]);
    const done = harness.image(b, "/ckpt/b.dmtcp");
    const result = reply(done);
    expect([result.conn, result.header.command, result.header.status])
      .toEqual([conn, Command.blocking_checkpoint, Status.success]);
    expect(closed(done, conn)).toBe(true);
  });

  test("a blocking checkpoint with one failed image replies checkpoint_failed, no script", () => {
    const { harness, a, b } = twoWorkers();
    harness.command(Command.blocking_checkpoint);
    harness.throughBarriers([a, b]);
    harness.image(a, "/ckpt/a.dmtcp", Status.checkpoint_failed, "no space left on device");
    const done = harness.image(b, "/ckpt/b.dmtcp");
    expect(reply(done).header.status).toBe(Status.checkpoint_failed);
    expect(scripts(harness.actions)).toEqual([]);
    expect(logs(done)).toContain(
      "checkpoint 1 failed: no image /ckpt/a.dmtcp: no space left on device");
  });

  test("a relative image path fails the checkpoint", () => {
    const { harness, a, b } = twoWorkers();
    harness.command(Command.blocking_checkpoint);
    harness.throughBarriers([a, b]);
    harness.image(a, "ckpt/a.dmtcp");
    expect(reply(harness.image(b, "/ckpt/b.dmtcp")).header.status).toBe(Status.checkpoint_failed);
  });

  test("a blocking checkpoint replies when the workers that remain are done", () => {
    const { harness, a, b } = twoWorkers();
    harness.command(Command.blocking_checkpoint);
    harness.throughBarriers([a, b]);
    harness.image(a, "/ckpt/a.dmtcp");
    // b leaves after the images recorded two peers: a restart from one image would hang.
    const done = harness.feed({ type: "closed", conn: b });
    expect(reply(done).header.status).toBe(Status.checkpoint_failed);
    expect(scripts(harness.actions)).toEqual([]);
    harness.resume(a);
    expect(harness.state.checkpoint).toBeUndefined();
  });

  test("a worker leaving before the images record their peers does not fail it", () => {
    const { harness, a, b } = twoWorkers();
    harness.command(Command.blocking_checkpoint);
    harness.barrier(a, Barrier.suspended, WorkerState.suspended);
    harness.barrier(b, Barrier.suspended, WorkerState.suspended);
    harness.feed({ type: "closed", conn: b });
    harness.barrier(a, Barrier.checkpointed, WorkerState.checkpointing);
    harness.barrier(a, Barrier.written, WorkerState.checkpointed);
    const done = harness.image(a, "/ckpt/a.dmtcp");
    expect(reply(done).header.status).toBe(Status.success);
    expect(scripts(done)[0]!.hosts).toEqual([{ host: "node1", images: ["/ckpt/a.dmtcp"] }]);
  });

  test("a blocking checkpoint whose workers all leave replies checkpoint_failed", () => {
    const { harness, a, b } = twoWorkers();
    const { conn } = harness.command(Command.blocking_checkpoint);
    harness.feed({ type: "closed", conn: a });
    const actions = harness.feed({ type: "closed", conn: b });
    expect([reply(actions).conn, reply(actions).header.status])
      .toEqual([conn, Status.checkpoint_failed]);
    expect(logs(actions)).toContain("checkpoint 1 abandoned: every worker left");
    expect(harness.state.checkpoint).toBeUndefined();
  });

  test("kill_after_checkpoint replies at once and sets the flag for that checkpoint only", () => {
    const { harness, a, b } = twoWorkers();
    const { actions } = harness.command(Command.kill_after_checkpoint);
    expect(reply(actions).header.status).toBe(Status.success);
    const request = sent(actions, Kind.checkpoint)[0]!.header;
    expect(request.flags & Flags.exit_after_checkpoint).toBe(Flags.exit_after_checkpoint);
    harness.throughBarriers([a, b]);
    harness.image(a, "/ckpt/a.dmtcp");
    expect(scripts(harness.image(b, "/ckpt/b.dmtcp"))).toHaveLength(1);
    harness.feed({ type: "closed", conn: a });
    harness.feed({ type: "closed", conn: b });
    expect(harness.state.checkpoint).toBeUndefined();
    harness.worker("c.out", 3);
    const next = sent(harness.command(Command.checkpoint).actions, Kind.checkpoint)[0]!.header;
    expect(next.flags & Flags.exit_after_checkpoint).toBe(0);
  });

  test("--kill-after-ckpt sets the flag for every checkpoint", () => {
    const { harness, a, b } = twoWorkers({ killAfterCheckpoint: true });
    for (let round = 0; round < 2; round++) {
      const request = sent(harness.command(Command.checkpoint).actions, Kind.checkpoint)[0]!;
      expect(request.header.flags & Flags.exit_after_checkpoint)
        .toBe(Flags.exit_after_checkpoint);
      harness.throughBarriers([a, b]);
      harness.image(a, "/ckpt/a.dmtcp");
      harness.image(b, "/ckpt/b.dmtcp");
      harness.resume(a);
      harness.resume(b);
    }
  });

  test("quit during a blocking checkpoint answers it checkpoint_failed", () => {
    const { harness } = twoWorkers();
    const blocking = harness.command(Command.blocking_checkpoint).conn;
    const { actions } = harness.command(Command.quit);
    const answered = sent(actions, Kind.command_result).find((action) => action.conn === blocking);
    expect(answered?.header.status).toBe(Status.checkpoint_failed);
    expect(actions.at(-1)).toEqual({ type: "exit", code: 0 });
  });
});

describe("coordinator state: interval checkpoints", () => {
  test("the timer fires at the right tick and not while a checkpoint is in progress", () => {
    const { harness, a, b } = twoWorkers({ intervalS: 10 });
    expect(sent(harness.feed({ type: "tick", nowMs: START_MS + 9_999 }))).toEqual([]);
    const fired = harness.feed({ type: "tick", nowMs: START_MS + 10_000 });
    expect(sent(fired, Kind.checkpoint).map((action) => action.conn)).toEqual([a, b]);
    expect(logs(fired)).toContain("checkpoint interval of 10 s reached");
    expect(sent(harness.feed({ type: "tick", nowMs: START_MS + 30_000 }))).toEqual([]);
    harness.throughBarriers([a, b]);
    harness.image(a, "/ckpt/a.dmtcp");
    harness.image(b, "/ckpt/b.dmtcp");
    harness.resume(a);
    harness.resume(b);
    // Re-armed from the last known time, the tick at 30 s.
    expect(harness.state.nextCheckpointMs).toBe(START_MS + 40_000);
    expect(sent(harness.feed({ type: "tick", nowMs: START_MS + 39_000 }))).toEqual([]);
    const again = sent(harness.feed({ type: "tick", nowMs: START_MS + 40_000 }), Kind.checkpoint);
    expect(again[0]!.header.generation).toBe(2);
  });

  test("the interval command re-arms the timer from the last tick", () => {
    const { harness } = twoWorkers({ intervalS: 100 });
    harness.feed({ type: "tick", nowMs: START_MS + 5_000 });
    harness.command(Command.interval, 3);
    expect(harness.state.nextCheckpointMs).toBe(START_MS + 8_000);
    const fired = harness.feed({ type: "tick", nowMs: START_MS + 8_000 });
    expect(sent(fired, Kind.checkpoint)).toHaveLength(2);
  });

  test("no interval checkpoint fires while a restart is in progress", () => {
    const harness = new Harness({ intervalS: 5 });
    restartWorker(harness, 40000, 2);
    expect(harness.state.nextCheckpointMs).toBe(START_MS + 5_000);
    expect(sent(harness.feed({ type: "tick", nowMs: START_MS + 6_000 }))).toEqual([]);
  });
});

/// A restarted process of a computation of `peerCount` rejoining, as `dmtcp restart` does.
function restartWorker(harness: Harness, workerId: number, peerCount: number) {
  const conn = harness.connect();
  const actions = harness.message(conn, {
    kind: Kind.hello_restart, computation_id: 0xabcn, peer_count: peerCount, generation: 3,
    worker_id: workerId, real_pid: workerId + 1, state: WorkerState.restarting,
  }, joinStrings([`p${workerId}`, "node1"]));
  expect(sent(actions)[0]!.header.kind).toBe(Kind.accept);
  return conn;
}

describe("coordinator state: restart barrier", () => {
  test("the restart barrier waits for every peer the images name", () => {
    const harness = new Harness({ intervalS: 60 });
    const a = restartWorker(harness, 40000, 2);
    expect(harness.barrier(a, Barrier.restarted, WorkerState.restarting)).toEqual([]);
    const b = restartWorker(harness, 41000, 2);
    const released = sent(harness.barrier(b, Barrier.restarted, WorkerState.restarting));
    expect(released.map((action) => [action.conn, action.header.kind, action.header.peer_count]))
      .toEqual([[a, Kind.barrier_released, 2], [b, Kind.barrier_released, 2]]);
    harness.feed({ type: "tick", nowMs: START_MS + 7_000 });
    harness.resume(a);
    expect(harness.state.restartPeerCount).toBe(2);
    const done = harness.resume(b);
    expect(logs(done)).toContain("restart complete: 2 workers running");
    expect(harness.state.nextCheckpointMs).toBe(START_MS + 67_000);
    const request = sent(harness.command(Command.checkpoint).actions, Kind.checkpoint)[0]!;
    expect([request.header.generation, request.header.computation_id]).toEqual([4, 0xabcn]);
  });

  test("every process of the restart joined: one more is refused", () => {
    const harness = new Harness();
    restartWorker(harness, 40000, 1);
    const conn = harness.connect();
    const actions = harness.message(conn, {
      kind: Kind.hello_restart, computation_id: 0xabcn, peer_count: 1, worker_id: 41000,
      state: WorkerState.restarting,
    }, joinStrings(["late", "node1"]));
    expect(sent(actions)[0]!.header.status).toBe(Status.wrong_computation);
  });

  test("resuming before the restart barrier is released is a protocol error", () => {
    const harness = new Harness();
    const a = restartWorker(harness, 40000, 2);
    harness.barrier(a, Barrier.restarted, WorkerState.restarting);
    expect(closed(harness.resume(a), a)).toBe(true);
  });
});

describe("coordinator state: spare connections", () => {
  /// A spare registered by the worker `owner` (its worker id); returns the spare's connection
  /// and the id the coordinator gave it.
  function spare(harness: Harness, ownerWorkerId: number) {
    const conn = harness.connect();
    const actions = harness.message(conn, {
      kind: Kind.hello_worker, real_pid: 100, state: WorkerState.running,
      worker_id: ownerWorkerId, flags: Flags.spare,
    }, joinStrings(["parent", "node1"]));
    const [accept] = sent(actions, Kind.accept);
    expect(accept).toBeDefined();
    return { conn, workerId: accept!.header.worker_id };
  }

  function announce(harness: Harness, conn: number, name: string, realPid: number) {
    return harness.message(conn, { kind: Kind.worker_info, real_pid: realPid },
      joinStrings([name, "node1"]));
  }

  function suspendedHolding(harness: Harness, conn: number, held: number[]) {
    return harness.message(conn, {
      kind: Kind.barrier, barrier: Barrier.suspended, state: WorkerState.suspended,
    }, joinStrings(held.map(String)));
  }

  test("a spare gets its own worker id but is no peer until a child announces itself", () => {
    const harness = new Harness();
    const parent = harness.worker("parent", 100);
    const { conn, workerId } = spare(harness, 40000);
    expect(workerId).toBe(41000);
    expect(reply(harness.command(Command.status).actions).header.peer_count).toBe(1);
    announce(harness, conn, "child", 101);
    expect(reply(harness.command(Command.status).actions).header.peer_count).toBe(2);
    const list = new TextDecoder().decode(reply(harness.command(Command.list).actions).payload);
    expect(list).toContain("child[41000:101]@node1");
    expect(parent.conn).toBe(1);
  });

  test("a spare of no registered worker is refused", () => {
    const harness = new Harness();
    const conn = harness.connect();
    const actions = harness.message(conn, {
      kind: Kind.hello_worker, real_pid: 100, state: WorkerState.running, worker_id: 45000,
      flags: Flags.spare,
    }, joinStrings(["parent", "node1"]));
    expect(sent(actions, Kind.reject)[0]?.header.status).toBe(Status.bad_message);
  });

  test("with exitOnLast a parent leaving while its child holds a spare does not exit", () => {
    const harness = new Harness({ exitOnLast: true });
    const parent = harness.worker("parent", 100);
    const child = spare(harness, 40000);
    harness.feed({ type: "closed", conn: parent.conn });
    expect(harness.actions.some((action) => action.type === "exit")).toBe(false);
    announce(harness, child.conn, "child", 101);
    harness.feed({ type: "closed", conn: child.conn });
    expect(harness.actions.filter((action) => action.type === "exit")).toEqual([
      { type: "exit", code: 0 },
    ]);
  });

  test("suspended waits for a spare its owner no longer holds, and the child joins", () => {
    const harness = new Harness();
    const parent = harness.worker("parent", 100);
    const held = spare(harness, 40000);
    const taken = spare(harness, 40000);
    harness.command(Command.checkpoint);
    const before = suspendedHolding(harness, parent.conn, [held.workerId]);
    expect(sent(before, Kind.barrier_released)).toEqual([]);
    const joined = announce(harness, taken.conn, "child", 101);
    expect(sent(joined, Kind.checkpoint).map((action) => action.conn)).toEqual([taken.conn]);
    const released = harness.barrier(taken.conn, Barrier.suspended, WorkerState.suspended);
    expect(sent(released, Kind.barrier_released).map((a) => a.conn).sort())
      .toEqual([parent.conn, taken.conn].sort());
  });

  test("suspended is released once an unannounced spare closes", () => {
    const harness = new Harness();
    const parent = harness.worker("parent", 100);
    const taken = spare(harness, 40000);
    harness.command(Command.checkpoint);
    expect(sent(suspendedHolding(harness, parent.conn, []), Kind.barrier_released)).toEqual([]);
    const actions = harness.feed({ type: "closed", conn: taken.conn });
    expect(sent(actions, Kind.barrier_released).map((a) => a.conn)).toEqual([parent.conn]);
  });

  test("a child announcing itself after suspended joins once the checkpoint is over", () => {
    const harness = new Harness();
    const parent = harness.worker("parent", 100);
    const held = spare(harness, 40000);
    harness.command(Command.checkpoint);
    suspendedHolding(harness, parent.conn, [held.workerId]);
    harness.barrier(parent.conn, Barrier.checkpointed, WorkerState.checkpointing);
    expect(sent(announce(harness, held.conn, "child", 101), Kind.checkpoint)).toEqual([]);
    expect(harness.state.workers.size).toBe(1);
    harness.barrier(parent.conn, Barrier.written, WorkerState.checkpointed);
    harness.image(parent.conn, "/ckpt/a.dmtcp");
    harness.resume(parent.conn);
    expect(harness.state.workers.size).toBe(2);
    expect(harness.state.spares.size).toBe(0);
  });

  test("kill reaches spares too", () => {
    const harness = new Harness();
    harness.worker("parent", 100);
    const child = spare(harness, 40000);
    const actions = harness.command(Command.kill).actions;
    expect(sent(actions, Kind.kill).map((action) => action.conn)).toContain(child.conn);
  });
});
