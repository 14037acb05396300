import { describe, expect, test } from "bun:test";
import {
  Command, Flags, header, Kind, joinStrings, Status, WorkerState, type Header,
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

  message(conn: number, fields: Partial<Header> & { kind: number }, payload = new Uint8Array()) {
    const message = header({ token: TOKEN, ...fields });
    return this.feed({ type: "message", conn, header: message, payload });
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
}

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
    const shapes = actions.flatMap((action) =>
      action.type === "log" ? [] : [[action.type, "conn" in action ? action.conn : action.code]]);
    expect(shapes).toEqual([["send", worker], ["send", conn], ["close", conn], ["exit", 0]]);
  });

  test("checkpoint: not_running without workers, invalid_command (logged) with them", () => {
    const harness = new Harness();
    for (const command of [Command.checkpoint, Command.blocking_checkpoint]) {
      expect(reply(harness.command(command).actions).header.status).toBe(Status.not_running);
    }
    harness.worker("a.out", 1);
    const { actions } = harness.command(Command.kill_after_checkpoint);
    expect(reply(actions).header.status).toBe(Status.invalid_command);
    expect(actions).toContainEqual({
      type: "log", level: "warn", message: "checkpointing is not available in this build",
    });
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
