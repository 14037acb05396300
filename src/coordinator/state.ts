// The coordinator as a pure state machine: `step(state, event)` updates the state in place and
// returns it with the actions the network layer must carry out. No sockets, timers or clock
// here, so every rule (reference 2.2-2.9) is tested by feeding events.
//
// Time comes only from `tick` events: `state.nowMs` is the time of the last tick, which the
// server sends every second, so every timeout here is accurate to about a second.
import {
  Barrier, Command, Flags, header, INTERVAL_UNCHANGED, Kind, splitStrings, Status,
  WORKER_ID_FIRST, WORKER_ID_STEP, WorkerState, type Header,
} from "../format/protocol";
import { renderWorkerList } from "./render";
import type { HostImages, RestartScript } from "./script";

/// The server's number for one accepted connection.
export type ConnId = number;
export type LogLevel = "info" | "warn" | "error";

export interface Config {
  token: Uint8Array;
  exitOnLast: boolean;
  killAfterCheckpoint: boolean;
  /// Default checkpoint interval; 0 means checkpoints happen only on request.
  intervalS: number;
  /// Exit 1 after this long without workers; 0 disables it.
  staleTimeoutS: number;
  /// Exit 1 this long after start, whatever happens.
  timeoutS?: number;
  /// Host and port as `--status` shows them.
  host: string;
  port: number;
  startMs: number;
  /// Absolute; where the restart script of each complete checkpoint goes.
  ckptDir: string;
}

export interface Worker {
  conn: ConnId;
  workerId: number;
  name: string;
  host: string;
  realPid: number;
  arch: number;
  /// WorkerState value.
  state: number;
  /// Barrier value this worker reached last in the current checkpoint or restart,
  /// Barrier.none while it runs; `--list` shows it.
  barrier: number;
  /// Worker ids of the spare connections it said it holds at barrier `suspended` of the
  /// current checkpoint; undefined before it reaches that barrier.
  heldSpares?: number[];
}

/// A connection a worker registered ahead of time for a child it may fork (hello_worker with
/// `flags.spare`). It keeps a computation alive for `--exit-on-last` but is no peer (not in
/// `--list`, status or barriers) until a process announces itself on it with worker_info.
export interface Spare {
  conn: ConnId;
  workerId: number;
  /// The worker that registered it.
  ownerWorkerId: number;
  /// Set when a process announced itself while a checkpoint was past barrier `suspended`;
  /// it becomes a worker once the checkpoint is over.
  announced?: { name: string; host: string; realPid: number; arch: number };
}

/// What one worker said of its image.
interface Image {
  path: string;
  /// Why the image is unusable; undefined when it was written.
  failure?: string;
}

/// One checkpoint, from its broadcast until every worker resumed (or left).
interface Checkpoint {
  generation: number;
  /// Workers present when `checkpointed` was released: the peer count every image records
  /// (reference 2.5 step 6), so a restart needs exactly that many images. Undefined before.
  memberCount?: number;
  images: Map<ConnId, Image>;
  /// Command connections of blocking checkpoints, answered once every image is in.
  waiting: ConnId[];
  /// Set once every image is in (or can no longer come), so the outcome is reported once.
  done: boolean;
  /// The broadcast `checkpoint` message, sent again to a child that joins before `suspended`.
  request: Header;
}

/// A connection is "pending" until its hello, then a worker or a command. A command connection
/// is closed right after its reply, which for a blocking checkpoint waits for the images.
type Role = "pending" | "worker" | "spare" | "command";

interface Connection {
  remote: string;
  role: Role;
}

export interface State {
  config: Config;
  connections: Map<ConnId, Connection>;
  /// Registered workers in the order they joined, which is the `--list` order.
  workers: Map<ConnId, Worker>;
  /// Spare connections not yet announced on.
  spares: Map<ConnId, Spare>;
  /// 0n while no computation exists (no worker since start or since the last one left).
  computationId: bigint;
  /// Number of checkpoints started in this computation; sent in every broadcast.
  generation: number;
  /// Workers a restart brings back; 0 once the restart is complete or when there is none.
  restartPeerCount: number;
  /// The barrier being collected now; Barrier.none between barriers and outside checkpoints
  /// and restarts. Workers reach barriers in one order, so one value serves all of them.
  currentBarrier: number;
  /// The checkpoint in progress, if any; requests meanwhile get not_running (as in DMTCP).
  checkpoint?: Checkpoint;
  intervalS: number;
  defaultIntervalS: number;
  nextWorkerId: number;
  /// When the interval timer fires next; undefined while disarmed.
  nextCheckpointMs?: number;
  nowMs: number;
  /// Since when there have been no workers; undefined while there are some.
  idleSinceMs?: number;
  /// Set by `kill`; a worker joining meanwhile is killed too (DMTCP does the same).
  killInProgress: boolean;
  /// Set once the machine asked to exit; later events are ignored.
  exitCode?: number;
}

export type Event =
  | { type: "connected"; conn: ConnId; remote: string }
  | { type: "message"; conn: ConnId; header: Header; payload: Uint8Array }
  | { type: "bad_frame"; conn: ConnId; reason: string }
  | { type: "closed"; conn: ConnId }
  | { type: "tick"; nowMs: number }
  | { type: "hello_timeout"; conn: ConnId };

export type Action =
  | { type: "send"; conn: ConnId; header: Header; payload?: Uint8Array }
  | { type: "close"; conn: ConnId }
  | { type: "exit"; code: number }
  | { type: "log"; level: LogLevel; message: string }
  /// Every image of a checkpoint is written: the server writes the script that restarts them.
  | { type: "write_restart_script"; script: RestartScript };

export interface StepResult {
  state: State;
  actions: Action[];
}

/// DMTCP wraps virtual pids at one million, skipping those in use.
const WORKER_ID_LIMIT = 1_000_000;
const WORKER_ID_COUNT_MAX = (WORKER_ID_LIMIT - WORKER_ID_FIRST) / WORKER_ID_STEP;
const U64_MASK = (1n << 64n) - 1n;

export function initialState(config: Config): State {
  return {
    config,
    connections: new Map(),
    workers: new Map(),
    spares: new Map(),
    computationId: 0n,
    generation: 0,
    restartPeerCount: 0,
    currentBarrier: Barrier.none,
    intervalS: config.intervalS,
    defaultIntervalS: config.intervalS,
    nextWorkerId: WORKER_ID_FIRST,
    nowMs: config.startMs,
    idleSinceMs: config.startMs,
    killInProgress: false,
  };
}

export function step(state: State, event: Event): StepResult {
  const actions: Action[] = [];
  if (state.exitCode !== undefined) return { state, actions };
  switch (event.type) {
    case "connected":
      state.connections.set(event.conn, { remote: event.remote, role: "pending" });
      break;
    case "message":
      onMessage(state, event.conn, event.header, event.payload, actions);
      break;
    case "bad_frame":
      dropWithWarning(state, event.conn, event.reason, actions);
      break;
    case "closed":
      forget(state, event.conn, actions);
      break;
    case "tick":
      onTick(state, event.nowMs, actions);
      break;
    case "hello_timeout":
      if (state.connections.get(event.conn)?.role !== "pending") break;
      dropWithWarning(state, event.conn, "no hello in time", actions);
      break;
  }
  return { state, actions };
}

/// True when every worker runs: DMTCP's "RUNNING=yes" (unanimous RUNNING; none is "no").
export function isRunning(state: State): boolean {
  if (state.workers.size === 0) return false;
  for (const worker of state.workers.values()) {
    if (worker.state !== WorkerState.running) return false;
  }
  return true;
}

/// The exact `--list` text for the current workers.
export function listText(state: State): string {
  return renderWorkerList(state.workers.values(), state.computationId);
}

/// Compares every byte whatever the first difference, so timing reveals nothing of the token.
export function tokensEqual(given: Uint8Array, expected: Uint8Array): boolean {
  if (given.length !== expected.length) return false;
  let difference = 0;
  for (let index = 0; index < expected.length; index++) {
    difference |= given[index]! ^ expected[index]!;
  }
  return difference === 0;
}

function onMessage(
  state: State, conn: ConnId, message: Header, payload: Uint8Array, actions: Action[],
): void {
  const connection = state.connections.get(conn);
  // A message may still arrive on a connection we already closed; it no longer counts.
  if (connection === undefined) return;
  if (connection.role === "pending") {
    onFirstMessage(state, conn, message, payload, actions);
    return;
  }
  const worker = state.workers.get(conn);
  if (worker !== undefined) return onWorkerMessage(state, worker, message, payload, actions);
  const spare = state.spares.get(conn);
  if (spare !== undefined && message.kind === Kind.worker_info) {
    return onSpareAnnounced(state, spare, message, payload, actions);
  }
  dropWithWarning(state, conn, `unexpected message kind ${message.kind}`, actions);
}

function onFirstMessage(
  state: State, conn: ConnId, message: Header, payload: Uint8Array, actions: Action[],
): void {
  const hellos: number[] = [Kind.hello_worker, Kind.hello_restart, Kind.hello_command];
  if (!hellos.includes(message.kind)) {
    refuse(state, conn, Status.bad_message, "first message is not a hello", actions);
    return;
  }
  if (!tokensEqual(message.token, state.config.token)) {
    refuse(state, conn, Status.bad_token, "wrong token", actions);
    return;
  }
  if (message.kind === Kind.hello_command) {
    onCommand(state, conn, message, actions);
  } else if (message.kind === Kind.hello_worker) {
    onHelloWorker(state, conn, message, payload, actions);
  } else {
    onHelloRestart(state, conn, message, payload, actions);
  }
}

/// Sends `reject`, says why in the log (naming the peer), and closes.
function refuse(
  state: State, conn: ConnId, status: number, reason: string, actions: Action[],
): void {
  const remote = state.connections.get(conn)?.remote ?? "?";
  actions.push({ type: "send", conn, header: header({ kind: Kind.reject, status }) });
  const message = `refused connection from ${remote}: ${reason}`;
  actions.push({ type: "log", level: "warn", message });
  close(state, conn, actions);
}

function dropWithWarning(state: State, conn: ConnId, reason: string, actions: Action[]): void {
  const connection = state.connections.get(conn);
  if (connection === undefined) return;
  const message = `closed connection from ${connection.remote}: ${reason}`;
  actions.push({ type: "log", level: "warn", message });
  close(state, conn, actions);
}

function close(state: State, conn: ConnId, actions: Action[]): void {
  actions.push({ type: "close", conn });
  forget(state, conn, actions);
}

/// Removes a connection and its worker; the last worker leaving ends the computation.
function forget(state: State, conn: ConnId, actions: Action[]): void {
  if (!state.connections.delete(conn)) return;
  if (state.spares.delete(conn)) {
    if (isEmpty(state)) return endComputation(state, actions);
    return progress(state, actions);
  }
  const worker = state.workers.get(conn);
  if (worker === undefined) {
    // A blocking checkpoint's command connection gave up waiting; nobody to answer any more.
    const waiting = state.checkpoint?.waiting;
    if (waiting?.includes(conn)) waiting.splice(waiting.indexOf(conn), 1);
    return;
  }
  state.workers.delete(conn);
  actions.push({
    type: "log", level: "info", message: `worker ${worker.workerId} (${worker.name}) left`,
  });
  if (isEmpty(state)) return endComputation(state, actions);
  if (state.currentBarrier === Barrier.restarted) {
    const message = `restart waits for ${state.restartPeerCount} processes: ` +
      `restart the image of worker ${worker.workerId} again to complete it`;
    actions.push({ type: "log", level: "warn", message });
  }
  // Whatever waited on this worker is re-checked, so that a worker exiting mid-checkpoint
  // does not hold the others (reference 2.9).
  progress(state, actions);
}

/// No worker and no spare a child could still announce itself on.
function isEmpty(state: State): boolean {
  return state.workers.size === 0 && state.spares.size === 0;
}

function endComputation(state: State, actions: Action[]): void {
  abandonCheckpoint(state, "every worker left", actions);
  state.computationId = 0n;
  state.restartPeerCount = 0;
  state.currentBarrier = Barrier.none;
  state.killInProgress = false;
  state.nextCheckpointMs = undefined;
  state.idleSinceMs = state.nowMs;
  if (!state.config.exitOnLast) return;
  actions.push({ type: "log", level: "info", message: "last worker exited" });
  exit(state, 0, actions);
}

function exit(state: State, code: number, actions: Action[]): void {
  abandonCheckpoint(state, "the coordinator exits", actions);
  state.exitCode = code;
  actions.push({ type: "exit", code });
}

/// "name\0host\0" → the two strings, or undefined when either is missing.
function parseIdentity(payload: Uint8Array): { name: string; host: string } | undefined {
  const [name, host] = splitStrings(payload);
  if (name === undefined || host === undefined || name === "" || host === "") return undefined;
  return { name, host };
}

function allocateWorkerId(state: State): number | undefined {
  const used = new Set([...state.workers.values(), ...state.spares.values()]
    .map((worker) => worker.workerId));
  for (let attempt = 0; attempt < WORKER_ID_COUNT_MAX; attempt++) {
    const workerId = state.nextWorkerId;
    const next = workerId + WORKER_ID_STEP;
    state.nextWorkerId = next >= WORKER_ID_LIMIT ? WORKER_ID_FIRST : next;
    if (!used.has(workerId)) return workerId;
  }
  return undefined;
}

/// Why a joining worker cannot join now, or undefined when it can.
function joinRefusal(state: State, message: Header): [number, string] | undefined {
  const states: number[] = [WorkerState.running, WorkerState.unknown];
  if (!states.includes(message.state)) return [Status.bad_message, "a new worker must run"];
  if (message.interval_s < INTERVAL_UNCHANGED) return [Status.bad_message, "negative interval"];
  for (const worker of state.workers.values()) {
    if (!states.includes(worker.state)) {
      return [Status.not_running, "a checkpoint or restart is in progress"];
    }
  }
  return undefined;
}

function onHelloWorker(
  state: State, conn: ConnId, message: Header, payload: Uint8Array, actions: Action[],
): void {
  if (state.killInProgress) {
    // DMTCP answers a process joining during a kill with the kill itself.
    actions.push({ type: "send", conn, header: header({ kind: Kind.kill }) });
    close(state, conn, actions);
    return;
  }
  const refusal = joinRefusal(state, message);
  if (refusal !== undefined) return refuse(state, conn, ...refusal, actions);
  const identity = parseIdentity(payload);
  if (identity === undefined) {
    return refuse(state, conn, Status.bad_message, "no program and host name", actions);
  }
  if ((message.flags & Flags.spare) !== 0) return registerSpare(state, conn, message, actions);
  const workerId = allocateWorkerId(state);
  if (workerId === undefined) {
    return refuse(state, conn, Status.bad_message, "every worker id is in use", actions);
  }
  if (state.workers.size === 0) startComputation(state, message.real_pid);
  register(state, conn, { ...identity, workerId, message, state: WorkerState.running }, actions);
}

/// A worker's spare connection: a worker id now, a peer once a child announces itself.
function registerSpare(state: State, conn: ConnId, message: Header, actions: Action[]): void {
  const owner = [...state.workers.values()].find((w) => w.workerId === message.worker_id);
  if (owner === undefined) {
    return refuse(state, conn, Status.bad_message, "a spare of no registered worker", actions);
  }
  const workerId = allocateWorkerId(state);
  if (workerId === undefined) {
    return refuse(state, conn, Status.bad_message, "every worker id is in use", actions);
  }
  state.spares.set(conn, { conn, workerId, ownerWorkerId: owner.workerId });
  state.connections.set(conn, { ...state.connections.get(conn)!, role: "spare" });
  const accept = header({
    kind: Kind.accept, worker_id: workerId, computation_id: state.computationId,
    generation: state.generation, interval_s: state.intervalS, peer_count: state.workers.size,
  });
  actions.push({ type: "send", conn, header: accept });
}

/// A forked child speaks on the spare it was handed: it becomes a worker, and joins a
/// checkpoint that has not passed `suspended` yet (its parent forked it before stopping).
function onSpareAnnounced(
  state: State, spare: Spare, message: Header, payload: Uint8Array, actions: Action[],
): void {
  const identity = parseIdentity(payload);
  if (identity === undefined) {
    return dropWithWarning(state, spare.conn, "worker_info without names", actions);
  }
  spare.announced = { ...identity, realPid: message.real_pid, arch: message.arch };
  const busy = state.currentBarrier === Barrier.restarted ||
    (state.checkpoint !== undefined && state.currentBarrier !== Barrier.suspended);
  if (busy) return;
  promote(state, spare, actions);
  progress(state, actions);
}

function promote(state: State, spare: Spare, actions: Action[]): void {
  const announced = spare.announced!;
  state.spares.delete(spare.conn);
  const worker: Worker = {
    conn: spare.conn, workerId: spare.workerId, name: announced.name, host: announced.host,
    realPid: announced.realPid, arch: announced.arch, state: WorkerState.running, barrier: 0,
  };
  state.workers.set(spare.conn, worker);
  state.connections.set(spare.conn, { ...state.connections.get(spare.conn)!, role: "worker" });
  const label = `${worker.name}[${worker.workerId}:${worker.realPid}]@${worker.host}`;
  actions.push({ type: "log", level: "info", message: `worker joined: ${label}` });
  if (state.killInProgress) {
    actions.push({ type: "send", conn: worker.conn, header: header({ kind: Kind.kill }) });
  }
  const checkpoint = state.checkpoint;
  if (checkpoint !== undefined && state.currentBarrier === Barrier.suspended) {
    worker.state = WorkerState.presuspend;
    actions.push({ type: "send", conn: worker.conn, header: checkpoint.request });
  }
}

/// Children that announced themselves while a checkpoint or restart ran join now.
function promoteAnnounced(state: State, actions: Action[]): void {
  for (const spare of [...state.spares.values()]) {
    if (spare.announced !== undefined) promote(state, spare, actions);
  }
}

/// A spare no worker said it holds at `suspended`: a child took it and has yet to speak
/// (or to close it), so barrier `suspended` waits for it.
function sparePending(state: State): boolean {
  for (const spare of state.spares.values()) {
    const owner = [...state.workers.values()].find((w) => w.workerId === spare.ownerWorkerId);
    if (owner?.heldSpares?.includes(spare.workerId) !== true) return true;
  }
  return false;
}

/// The first worker of an idle coordinator creates the computation.
function startComputation(state: State, realPid: number): void {
  const computationId = (BigInt(state.config.startMs) << 20n) ^ BigInt(realPid);
  state.computationId = computationId & U64_MASK;
  state.generation = 0;
  state.intervalS = state.defaultIntervalS;
}

interface Joining {
  name: string;
  host: string;
  workerId: number;
  message: Header;
  state: number;
}

/// Records the worker, applies its interval, and answers `accept`.
function register(state: State, conn: ConnId, joining: Joining, actions: Action[]): void {
  const { message } = joining;
  const worker: Worker = {
    conn,
    workerId: joining.workerId,
    name: joining.name,
    host: joining.host,
    realPid: message.real_pid,
    arch: message.arch,
    state: joining.state,
    barrier: 0,
  };
  state.workers.set(conn, worker);
  state.connections.set(conn, { ...state.connections.get(conn)!, role: "worker" });
  state.idleSinceMs = undefined;
  // A worker launched with an interval sets the current one only (reference 2.7).
  if (message.interval_s !== INTERVAL_UNCHANGED) state.intervalS = message.interval_s;
  if (state.workers.size === 1 || message.interval_s !== INTERVAL_UNCHANGED) armTimer(state);
  actions.push({ type: "send", conn, header: acceptHeader(state, worker) });
  const label = `${worker.name}[${worker.workerId}:${worker.realPid}]@${worker.host}`;
  actions.push({ type: "log", level: "info", message: `worker joined: ${label}` });
}

function acceptHeader(state: State, worker: Worker): Header {
  return header({
    kind: Kind.accept,
    worker_id: worker.workerId,
    computation_id: state.computationId,
    generation: state.generation,
    interval_s: state.intervalS,
    peer_count: state.workers.size,
  });
}

/// Interval checkpoints count from the first worker's arrival, a resume or an interval change.
function armTimer(state: State): void {
  const armed = state.workers.size > 0 && state.intervalS > 0;
  state.nextCheckpointMs = armed ? state.nowMs + state.intervalS * 1000 : undefined;
}

/// Why a restarted worker cannot rejoin now, or undefined when it can (reference 2.4.4).
function restartRefusal(state: State, message: Header): [number, string] | undefined {
  if (message.computation_id === 0n) return [Status.bad_message, "no computation id"];
  if (message.worker_id === 0) return [Status.bad_message, "no worker id"];
  if (message.peer_count === 0) return [Status.bad_message, "no peer count"];
  if (message.interval_s < INTERVAL_UNCHANGED) return [Status.bad_message, "negative interval"];
  if (state.workers.size === 0) return undefined;
  if (message.computation_id !== state.computationId) {
    return [Status.wrong_computation, "another computation is registered"];
  }
  const restarting = [...state.workers.values()].every(
    (worker) => worker.state === WorkerState.restarting,
  );
  if (!restarting) return [Status.not_running, "the computation is not restarting"];
  if (message.peer_count !== state.restartPeerCount) {
    return [Status.wrong_computation, "its images name another number of processes"];
  }
  if (state.workers.size >= state.restartPeerCount) {
    return [Status.wrong_computation, "every process of the restart has joined"];
  }
  const used = [...state.workers.values()].some((w) => w.workerId === message.worker_id);
  if (used) return [Status.wrong_computation, "its worker id is already registered"];
  return undefined;
}

function onHelloRestart(
  state: State, conn: ConnId, message: Header, payload: Uint8Array, actions: Action[],
): void {
  const refusal = restartRefusal(state, message);
  if (refusal !== undefined) return refuse(state, conn, ...refusal, actions);
  const identity = parseIdentity(payload);
  if (identity === undefined) {
    return refuse(state, conn, Status.bad_message, "no program and host name", actions);
  }
  if (state.workers.size === 0) {
    // A restart on an idle coordinator brings back the computation its images name.
    state.computationId = message.computation_id;
    state.generation = message.generation;
    state.restartPeerCount = message.peer_count;
    state.intervalS = state.defaultIntervalS;
    state.currentBarrier = Barrier.restarted;
  }
  const joining = { ...identity, workerId: message.worker_id, message };
  register(state, conn, { ...joining, state: WorkerState.restarting }, actions);
}

function onWorkerMessage(
  state: State, worker: Worker, message: Header, payload: Uint8Array, actions: Action[],
): void {
  switch (message.kind) {
    case Kind.worker_info: {
      const identity = parseIdentity(payload);
      if (identity === undefined) {
        dropWithWarning(state, worker.conn, "worker_info without names", actions);
        return;
      }
      worker.name = identity.name;
      worker.host = identity.host;
      if (message.real_pid !== 0) worker.realPid = message.real_pid;
      return;
    }
    case Kind.barrier:
      return onBarrier(state, worker, message, payload, actions);
    case Kind.image_written:
      return onImageWritten(state, worker, message, payload, actions);
    case Kind.resuming:
      return onResuming(state, worker, message, actions);
    default:
      dropWithWarning(state, worker.conn, `unexpected message kind ${message.kind}`, actions);
  }
}

/// Runs one user command, replies, and closes the command connection.
function onCommand(state: State, conn: ConnId, message: Header, actions: Action[]): void {
  state.connections.set(conn, { ...state.connections.get(conn)!, role: "command" });
  const status = runCommand(state, conn, message, actions);
  // A blocking checkpoint is answered once its images are in (completeIfImagesIn).
  if (status === undefined) return;
  answer(state, conn, message.command, status, actions);
  if (message.command === Command.quit) exit(state, 0, actions);
}

/// `detail` says why a command failed; it travels as the reply's payload.
function answer(
  state: State, conn: ConnId, command: number, status: number, actions: Action[],
  detail?: string,
): void {
  const text = command === Command.list ? listText(state) : detail;
  const payload = text === undefined ? undefined : new TextEncoder().encode(text);
  const result = resultHeader(state, command, status);
  actions.push({ type: "send", conn, header: result, payload });
  close(state, conn, actions);
}

function resultHeader(state: State, command: number, status: number): Header {
  return header({
    kind: Kind.command_result,
    command,
    status,
    peer_count: state.workers.size,
    flags: isRunning(state) ? Flags.running : 0,
    interval_s: state.intervalS,
    computation_id: state.computationId,
    generation: state.generation,
  });
}

/// Carries out a command's effect and returns the reply status, or undefined when the reply
/// waits for the checkpoint to finish.
function runCommand(
  state: State, conn: ConnId, message: Header, actions: Action[],
): number | undefined {
  switch (message.command) {
    case Command.status:
    case Command.list:
      return Status.success;
    case Command.interval:
      if (message.interval_s < 0) return Status.invalid_command;
      state.intervalS = message.interval_s;
      state.defaultIntervalS = message.interval_s;
      armTimer(state);
      return Status.success;
    case Command.kill:
    case Command.quit:
      killWorkers(state, actions);
      return Status.success;
    case Command.checkpoint:
      return requestCheckpoint(state, false, actions);
    case Command.kill_after_checkpoint:
      return requestCheckpoint(state, true, actions);
    case Command.blocking_checkpoint: {
      const status = requestCheckpoint(state, false, actions);
      if (status !== Status.success) return status;
      state.checkpoint!.waiting.push(conn);
      return undefined;
    }
    default:
      return Status.invalid_command;
  }
}

function killWorkers(state: State, actions: Action[]): void {
  // A spare's child, if one announces itself on it later, gets the kill then.
  for (const worker of [...state.workers.values(), ...state.spares.values()]) {
    actions.push({ type: "send", conn: worker.conn, header: header({ kind: Kind.kill }) });
  }
  state.killInProgress = !isEmpty(state);
}

function onTick(state: State, nowMs: number, actions: Action[]): void {
  state.nowMs = nowMs;
  const { timeoutS, staleTimeoutS, startMs } = state.config;
  if (timeoutS !== undefined && timeoutS > 0 && nowMs - startMs >= timeoutS * 1000) {
    actions.push({ type: "log", level: "warn", message: `timeout of ${timeoutS} s reached` });
    exit(state, 1, actions);
    return;
  }
  const idleSinceMs = state.idleSinceMs;
  if (idleSinceMs !== undefined && staleTimeoutS > 0) {
    if (nowMs - idleSinceMs >= staleTimeoutS * 1000) {
      const message = `no worker for ${staleTimeoutS} s (stale timeout)`;
      actions.push({ type: "log", level: "warn", message });
      exit(state, 1, actions);
      return;
    }
  }
  const nextMs = state.nextCheckpointMs;
  if (nextMs === undefined || nowMs < nextMs) return;
  // A due checkpoint waits while a checkpoint or restart runs; the timer is re-armed when it
  // ends, so it fires one interval later (reference 2.7).
  if (state.checkpoint !== undefined || !isRunning(state)) return;
  const message = `checkpoint interval of ${state.intervalS} s reached`;
  actions.push({ type: "log", level: "info", message });
  startCheckpoint(state, false, actions);
}

// Checkpoint and restart barriers (reference 2.5, 2.6, 2.9). Each worker reports the state it
// is in with every barrier; `progress` re-checks whatever waits on "every worker" after each
// arrival, image, resume and departure.

/// The state a worker reports with each barrier, and the barrier collected after it.
const BARRIER_STEPS: Record<number, { state: number; next: number }> = {
  [Barrier.suspended]: { state: WorkerState.suspended, next: Barrier.checkpointed },
  [Barrier.checkpointed]: { state: WorkerState.checkpointing, next: Barrier.written },
  [Barrier.written]: { state: WorkerState.checkpointed, next: Barrier.none },
  [Barrier.restarted]: { state: WorkerState.restarting, next: Barrier.none },
};

/// "suspended" for Barrier.suspended, for log messages.
function nameOf(table: Record<string, number>, value: number): string {
  return Object.keys(table).find((name) => table[name] === value) ?? `${value}`;
}

/// Starts a checkpoint when every worker runs and none is in progress (reference 2.5).
function requestCheckpoint(state: State, exitOnce: boolean, actions: Action[]): number {
  if (!isRunning(state) || state.checkpoint !== undefined) return Status.not_running;
  startCheckpoint(state, exitOnce, actions);
  return Status.success;
}

function startCheckpoint(state: State, exitOnce: boolean, actions: Action[]): void {
  state.generation += 1;
  const exitAfterCheckpoint = exitOnce || state.config.killAfterCheckpoint;
  state.currentBarrier = Barrier.suspended;
  // The interval counts again from the moment every worker has resumed, as in DMTCP.
  state.nextCheckpointMs = undefined;
  const message = header({
    kind: Kind.checkpoint,
    generation: state.generation,
    computation_id: state.computationId,
    peer_count: state.workers.size,
    flags: exitAfterCheckpoint ? Flags.exit_after_checkpoint : 0,
  });
  state.checkpoint = {
    generation: state.generation, images: new Map(), waiting: [], done: false, request: message,
  };
  for (const worker of state.workers.values()) {
    worker.heldSpares = undefined;
    // The worker enters presuspend on receipt (reference 2.5 step 1); marking it now makes
    // `--status` say RUNNING=no from the moment the checkpoint is under way.
    worker.state = WorkerState.presuspend;
    worker.barrier = Barrier.none;
    actions.push({ type: "send", conn: worker.conn, header: message });
  }
  const exiting = exitAfterCheckpoint ? ", workers exit after it" : "";
  const text = `checkpoint ${state.generation} started: ${state.workers.size} workers${exiting}`;
  actions.push({ type: "log", level: "info", message: text });
}

function onBarrier(
  state: State, worker: Worker, message: Header, payload: Uint8Array, actions: Action[],
): void {
  const expected = state.currentBarrier;
  // A repeated arrival changes nothing; DMTCP ignores it too.
  if (message.barrier === expected && worker.barrier === expected) return;
  const step = BARRIER_STEPS[message.barrier];
  if (expected === Barrier.none || message.barrier !== expected || step === undefined) {
    const waited = expected === Barrier.none ? "no barrier" : nameOf(Barrier, expected);
    const reason = `barrier ${nameOf(Barrier, message.barrier)} while waiting for ${waited}`;
    return dropWithWarning(state, worker.conn, reason, actions);
  }
  if (message.state !== step.state) {
    const reason = `barrier ${nameOf(Barrier, message.barrier)} ` +
      `in state ${nameOf(WorkerState, message.state)}`;
    return dropWithWarning(state, worker.conn, reason, actions);
  }
  worker.barrier = message.barrier;
  worker.state = message.state;
  if (message.barrier === Barrier.suspended) {
    worker.heldSpares = splitStrings(payload).map(Number).filter(Number.isInteger);
  }
  progress(state, actions);
}

function onImageWritten(
  state: State, worker: Worker, message: Header, payload: Uint8Array, actions: Action[],
): void {
  const checkpoint = state.checkpoint;
  const expected = checkpoint !== undefined && checkpoint.memberCount !== undefined &&
    state.currentBarrier === Barrier.none && worker.barrier === Barrier.written &&
    !checkpoint.images.has(worker.conn);
  if (!expected) {
    return dropWithWarning(state, worker.conn, "image_written out of turn", actions);
  }
  const statuses: number[] = [Status.success, Status.checkpoint_failed];
  if (!statuses.includes(message.status)) {
    const reason = `image_written with status ${message.status}`;
    return dropWithWarning(state, worker.conn, reason, actions);
  }
  const [path = "", reason] = splitStrings(payload);
  const failure = imageFailure(message.status, path, reason);
  checkpoint.images.set(worker.conn, { path, failure });
  if (failure !== undefined) {
    const text = `worker ${worker.workerId} (${worker.name}) has no image ${path}: ${failure}`;
    actions.push({ type: "log", level: "warn", message: text });
  }
  progress(state, actions);
}

/// Why a reported image is unusable, or undefined when the restart script may name it.
function imageFailure(status: number, path: string, reason?: string): string | undefined {
  if (status !== Status.success) return reason || "the worker gave no reason";
  // The script runs from anywhere, so a relative path would name the wrong file.
  if (!path.startsWith("/")) return `its path "${path}" is not absolute`;
  return undefined;
}

function onResuming(state: State, worker: Worker, message: Header, actions: Action[]): void {
  const afterImage = worker.state === WorkerState.checkpointed &&
    state.checkpoint?.images.has(worker.conn) === true;
  const afterRestart = worker.state === WorkerState.restarting &&
    worker.barrier === Barrier.restarted && state.currentBarrier === Barrier.none;
  if (!afterImage && !afterRestart) {
    return dropWithWarning(state, worker.conn, "resuming out of turn", actions);
  }
  if (message.state !== WorkerState.running) {
    const reason = `resuming in state ${nameOf(WorkerState, message.state)}`;
    return dropWithWarning(state, worker.conn, reason, actions);
  }
  worker.state = WorkerState.running;
  worker.barrier = Barrier.none;
  progress(state, actions);
}

function progress(state: State, actions: Action[]): void {
  releaseIfReached(state, actions);
  completeIfImagesIn(state, actions);
  finishIfResumed(state, actions);
}

/// Releases the current barrier once every worker reached it; the restart barrier also
/// waits until every process the images name has joined (reference 2.6).
function releaseIfReached(state: State, actions: Action[]): void {
  const barrier = state.currentBarrier;
  if (barrier === Barrier.none || state.workers.size === 0) return;
  if (barrier === Barrier.restarted && state.workers.size < state.restartPeerCount) return;
  for (const worker of state.workers.values()) {
    if (worker.barrier !== barrier) return;
  }
  if (barrier === Barrier.suspended && sparePending(state)) return;
  const peerCount = state.workers.size;
  const released = header({
    kind: Kind.barrier_released, barrier, peer_count: peerCount,
    generation: state.generation, computation_id: state.computationId,
  });
  for (const conn of state.workers.keys()) {
    actions.push({ type: "send", conn, header: released });
  }
  state.currentBarrier = BARRIER_STEPS[barrier]!.next;
  if (barrier === Barrier.checkpointed) state.checkpoint!.memberCount = peerCount;
}

/// Once every remaining worker reported its image: the outcome, the restart script, and the
/// answers to blocking checkpoints (reference 2.5 step 10).
function completeIfImagesIn(state: State, actions: Action[]): void {
  const checkpoint = state.checkpoint;
  if (checkpoint === undefined || checkpoint.done) return;
  if (checkpoint.memberCount === undefined || state.currentBarrier !== Barrier.none) return;
  for (const conn of state.workers.keys()) {
    if (!checkpoint.images.has(conn)) return;
  }
  checkpoint.done = true;
  const failure = checkpointFailure(checkpoint);
  if (failure === undefined) {
    actions.push({ type: "write_restart_script", script: restartScript(state, checkpoint) });
    const message = `checkpoint ${checkpoint.generation} complete: ` +
      `${checkpoint.images.size} images`;
    actions.push({ type: "log", level: "info", message });
  } else {
    const message = `checkpoint ${checkpoint.generation} failed: ${failure}`;
    actions.push({ type: "log", level: "warn", message });
  }
  answerWaiting(state, failure === undefined ? Status.success : Status.checkpoint_failed, actions,
    failure);
}

function checkpointFailure(checkpoint: Checkpoint): string | undefined {
  const memberCount = checkpoint.memberCount!;
  const missing = memberCount - checkpoint.images.size;
  // Each image records `memberCount` peers, so a restart from fewer would wait forever.
  if (missing > 0) return `${missing} of ${memberCount} workers left before writing an image`;
  for (const image of checkpoint.images.values()) {
    if (image.failure !== undefined) return `no image ${image.path}: ${image.failure}`;
  }
  return undefined;
}

/// Image paths grouped by host, hosts and images in the order their workers joined.
function restartScript(state: State, checkpoint: Checkpoint): RestartScript {
  const hosts: HostImages[] = [];
  for (const worker of state.workers.values()) {
    const image = checkpoint.images.get(worker.conn)!;
    let group = hosts.find((entry) => entry.host === worker.host);
    if (group === undefined) {
      group = { host: worker.host, images: [] };
      hosts.push(group);
    }
    group.images.push(image.path);
  }
  return {
    ckptDir: state.config.ckptDir,
    computationId: state.computationId.toString(16),
    generation: checkpoint.generation,
    coordHost: state.config.host,
    coordPort: state.config.port,
    intervalS: state.intervalS,
    hosts,
  };
}

function answerWaiting(
  state: State, status: number, actions: Action[], detail?: string,
): void {
  const waiting = state.checkpoint?.waiting.splice(0) ?? [];
  for (const conn of waiting) {
    answer(state, conn, Command.blocking_checkpoint, status, actions, detail);
  }
}

/// The checkpoint or restart is over once every worker runs again: the interval counts anew.
function finishIfResumed(state: State, actions: Action[]): void {
  if (!isRunning(state)) return;
  const checkpoint = state.checkpoint;
  if (checkpoint !== undefined) {
    // Every worker resumes only after its image, so this holds; checked all the same.
    if (!checkpoint.done) return;
    state.checkpoint = undefined;
    armTimer(state);
    promoteAnnounced(state, actions);
    return;
  }
  if (state.restartPeerCount === 0) return;
  const message = `restart complete: ${state.workers.size} workers running`;
  actions.push({ type: "log", level: "info", message });
  state.restartPeerCount = 0;
  armTimer(state);
  promoteAnnounced(state, actions);
}

/// Ends a checkpoint that cannot finish, answering blocking commands with checkpoint_failed.
function abandonCheckpoint(state: State, reason: string, actions: Action[]): void {
  const checkpoint = state.checkpoint;
  if (checkpoint === undefined) return;
  if (!checkpoint.done) {
    checkpoint.done = true;
    const message = `checkpoint ${checkpoint.generation} abandoned: ${reason}`;
    actions.push({ type: "log", level: "warn", message });
    answerWaiting(state, Status.checkpoint_failed, actions, reason);
  }
  state.checkpoint = undefined;
  state.currentBarrier = Barrier.none;
  promoteAnnounced(state, actions);
}
