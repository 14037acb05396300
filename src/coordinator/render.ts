// The exact texts `dmtcp command` and the coordinator print, as DMTCP prints them
// (reference 1.4), so scripts that read DMTCP's output keep working. Pure functions only.
import { Barrier, Command, Status, WorkerState } from "../format/protocol";

/// What one command got back from the coordinator (see client.ts `requestCoordinator`).
export interface Reply {
  /// Command value from src/format/protocol.ts.
  command: number;
  /// Status value from src/format/protocol.ts.
  status: number;
  peerCount: number;
  running: boolean;
  intervalS: number;
  /// The `--list` text, for Command.list only.
  listText?: string;
  /// Why a command failed, when the coordinator says (a failed blocking checkpoint).
  detail?: string;
}

/// No coordinator answered; only the JSON form reports this (DMT_COORD_NOT_FOUND).
export interface NotFound {
  command: number;
  status: "not_found";
}

export interface CoordinatorAddress {
  host: string;
  port: number;
  /// DMTCP prints "7779 (default port)" when the port came from no option or variable.
  portIsDefault?: boolean;
}

/// One registered worker as `--list` shows it.
export interface WorkerRow {
  workerId: number;
  name: string;
  host: string;
  realPid: number;
  state: number;
  barrier: number;
}

const COMMAND_NAMES: Record<number, string> = {
  [Command.none]: "DMT_INVALID_COORDINATOR_COMMAND",
  [Command.status]: "DMT_STATUS",
  [Command.list]: "DMT_LIST",
  [Command.checkpoint]: "DMT_CHECKPOINT",
  [Command.blocking_checkpoint]: "DMT_BLOCKING_CKPT",
  [Command.kill_after_checkpoint]: "DMT_KILL_AFTER_CKPT",
  [Command.interval]: "DMT_UPDATE_CKPT_INTERVAL",
  [Command.kill]: "DMT_KILL",
  [Command.quit]: "DMT_QUIT",
};

/// DMTCP's JSON knows four outcomes; our finer refusals all count as an invalid command.
const STATUS_NAMES: Record<number, string> = {
  [Status.success]: "DMT_COORD_SUCCESS",
  [Status.not_running]: "DMT_COORD_NOT_RUNNING",
};

/// DMTCP's names for the global barriers, so `--list` reads the same.
const BARRIER_NAMES: Record<number, string> = {
  [Barrier.none]: "",
  [Barrier.suspended]: "DMT:SUSPEND",
  [Barrier.checkpointed]: "DMT:CHECKPOINT",
  [Barrier.written]: "DMT:WriteCkpt",
  [Barrier.restarted]: "DMT:Restart",
};

export function commandName(command: number): string {
  return COMMAND_NAMES[command] ?? "DMT_INVALID_COORDINATOR_COMMAND";
}

export function statusName(status: number | "not_found"): string {
  if (status === "not_found") return "DMT_COORD_NOT_FOUND";
  return STATUS_NAMES[status] ?? "DMT_COORD_INVALID_COMMAND";
}

/// "WorkerState::RUNNING", as DMTCP prints a worker state.
export function workerStateName(state: number): string {
  const entry = Object.entries(WorkerState).find(([, value]) => value === state);
  return `WorkerState::${(entry?.[0] ?? "unknown").toUpperCase()}`;
}

/// The coordinator's `printList()` text: a header, then one line per worker from 1.
export function renderWorkerList(workers: Iterable<WorkerRow>, computationId: bigint): string {
  let text = "Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n";
  let number = 1;
  for (const worker of workers) {
    const uniquePid =
      `${computationId.toString(16)}-${worker.workerId}-${worker.realPid.toString(16)}`;
    const barrier = BARRIER_NAMES[worker.barrier] ?? "";
    text += `${number}, ${worker.name}[${worker.workerId}:${worker.realPid}]@${worker.host}, ` +
      `${uniquePid}, ${workerStateName(worker.state)}, ${barrier}\n`;
    number += 1;
  }
  return text;
}

function coordinatorBlock(address: CoordinatorAddress): string {
  const port = address.portIsDefault ? `${address.port} (default port)` : `${address.port}`;
  return `Coordinator:\n  Host: ${address.host}\n  Port: ${port}\n`;
}

/// `dmtcp command --status`.
export function renderStatusText(reply: Reply, address: CoordinatorAddress): string {
  const interval = reply.intervalS === 0 ? "0 (checkpoint manually)" : `${reply.intervalS}`;
  return coordinatorBlock(address) +
    "Status...\n" +
    `  NUM_PEERS=${reply.peerCount}\n` +
    `  RUNNING=${reply.running ? "yes" : "no"}\n` +
    `  CKPT_INTERVAL=${interval}\n`;
}

/// `dmtcp command --list`.
export function renderListText(reply: Reply, address: CoordinatorAddress): string {
  return coordinatorBlock(address) + (reply.listText ?? "");
}

/// Extra JSON fields each command carries on success (reference 1.4).
function jsonExtras(reply: Reply): Record<string, unknown> {
  switch (reply.command) {
    case Command.status:
      return {
        num_peers: reply.peerCount,
        running: reply.running,
        checkpoint_interval: reply.intervalS,
      };
    case Command.list:
      return { workers: reply.listText ?? "" };
    case Command.checkpoint:
    case Command.blocking_checkpoint:
    case Command.kill_after_checkpoint:
      return { num_peers: reply.peerCount };
    case Command.interval:
      return { checkpoint_interval: reply.intervalS };
    default:
      return {};
  }
}

/// `dmtcp command --json`: one object, keys in DMTCP's order, without a trailing newline.
export function renderJson(reply: Reply | NotFound, address: CoordinatorAddress): string {
  const object: Record<string, unknown> = {
    schema_version: 1,
    command: commandName(reply.command),
    command_status: statusName(reply.status),
    coordinator_host: address.host,
    coordinator_port: address.port,
  };
  if (reply.status === Status.success) Object.assign(object, jsonExtras(reply as Reply));
  return JSON.stringify(object);
}

/// What the text mode prints on stdout after a successful command ("" where DMTCP is silent).
/// Failures are the caller's: DMTCP prints their messages on stderr, except that a
/// kill-after-checkpoint answered NOT_RUNNING prints "Computation was checkpointed and
/// killed." on stdout (and still exits 2).
export function renderText(reply: Reply, address: CoordinatorAddress): string {
  switch (reply.command) {
    case Command.status:
      return renderStatusText(reply, address);
    case Command.list:
      return renderListText(reply, address);
    case Command.interval:
      return `Interval changed to ${reply.intervalS}\n`;
    default:
      return "";
  }
}

/// The whole stdout of `dmtcp command` for one reply, in either mode.
export function renderReply(
  reply: Reply,
  options: CoordinatorAddress & { json: boolean },
): string {
  if (options.json) return `${renderJson(reply, options)}\n`;
  return renderText(reply, options);
}
