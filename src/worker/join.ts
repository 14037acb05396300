// Joins the computation for `launch`: finds or starts the coordinator, then registers the
// program as a worker over a connection that the program inherits through execve, so it is a
// worker from its first instruction and the coordinator never sees it missing.
import { hostname } from "node:os";
import { CoordinatorError } from "../errors";
import * as protocol from "../format/protocol";
import { readToken } from "../coordinator/token";
import { closeFd } from "../native/libc";
import { connectTcp, readExactly, writeAll } from "../native/socket";
import type { CoordinatorTarget, Env } from "../options";

const CONNECT_TIMEOUT_MS = 5000;

export interface Joined {
  fd: number;
  host: string;
  address: string;
  port: number;
  token: Uint8Array;
  workerId: number;
}

export interface Registration {
  name: string;
  realPid: number;
  intervalS: number | undefined;
  arch: number;
  /// Present for a restart: the identity recorded in the image.
  restart?: { workerId: number; computationId: bigint; generation: number; peerCount: number };
}

export function isLocalHost(host: string): boolean {
  return host === "localhost" || host.startsWith("127.") || host === "::1" || host === hostname();
}

async function resolveAddress(host: string): Promise<string> {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return host;
  if (host === "localhost") return "127.0.0.1";
  try {
    // Loaded only for names: every launch pays for what it imports.
    const { lookup } = await import("node:dns/promises");
    return (await lookup(host, { family: 4 })).address;
  } catch {
    throw new CoordinatorError(`cannot resolve the coordinator host '${host}'`);
  }
}

/// Connects per the mode (any: join else start; join: must exist; new: must start).
export async function joinComputation(
  target: CoordinatorTarget,
  registration: Registration,
  env: Env,
  coordinatorArgs: string[],
): Promise<Joined> {
  const address = await resolveAddress(target.host);
  // As in DMTCP, without a chosen port "any" means a new coordinator on the default port.
  let port = target.port;
  if (target.mode !== "new") {
    const fd = tryConnect(address, port);
    if (fd !== undefined) return register(fd, target.host, address, port, registration, env);
    if (target.mode === "join") {
      throw new CoordinatorError(
        `no coordinator is listening at ${target.host}:${port}`,
        "Start one with 'dmtcp coordinator', or drop --join-coordinator to start one on demand.",
      );
    }
  }
  if (!isLocalHost(target.host)) {
    throw new CoordinatorError(
      `no coordinator at ${target.host}:${port}, and one can only be started on this host`,
      "Start 'dmtcp coordinator' on that host first.",
    );
  }
  const token = crypto.getRandomValues(new Uint8Array(protocol.TOKEN_SIZE));
  try {
    port = await startCoordinator(port, token, env, coordinatorArgs);
  } catch (error) {
    // Two launches at once on one port: the other started it first, so join theirs.
    const fd = target.mode === "any" ? tryConnect(address, port) : undefined;
    if (fd === undefined) throw error;
    return register(fd, target.host, address, port, registration, env);
  }
  const fd = tryConnect(address, port);
  if (fd === undefined) throw new CoordinatorError(`the new coordinator on port ${port} vanished`);
  return register(fd, target.host, address, port, registration, {
    ...env,
    DMTCP_COORD_TOKEN: hex(token),
  });
}

/// Registers one more process with the coordinator `joined` reached: a restart of several
/// images holds one connection per image.
export function joinAgain(joined: Joined, registration: Registration): Joined {
  const fd = tryConnect(joined.address, joined.port);
  if (fd === undefined) {
    throw new CoordinatorError(`the coordinator at ${joined.host}:${joined.port} went away`);
  }
  try {
    const workerId = hello(fd, joined.token, registration);
    return { ...joined, fd, workerId };
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

function tryConnect(address: string, port: number): number | undefined {
  if (port === 0) return undefined;
  try {
    return connectTcp(address, port, CONNECT_TIMEOUT_MS);
  } catch {
    return undefined;
  }
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/// The variables through which the runtime finds its coordinator and adopts the connection
/// (core/runtime/environment.zig reads them; DMTCP_COORD_FD and DMTCP_PID_MAP are
/// fixed-width so they can be rewritten in place).
export function coordinatorEnv(joined: Joined): Record<string, string> {
  const pad = (value: number) => String(value).padStart(10, "0");
  return {
    DMTCP_COORD_HOST: joined.host,
    DMTCP_COORD_PORT: String(joined.port),
    DMTCP_COORD_ADDR: joined.address,
    DMTCP_COORD_TOKEN: hex(joined.token),
    DMTCP_COORD_FD: `${pad(joined.fd)}:${pad(process.pid)}:${pad(joined.workerId)}`,
    // Rewritten in place after a restart: the pid map a program exec'd later reads.
    DMTCP_PID_MAP: pad(0),
  };
}

function register(
  fd: number,
  host: string,
  address: string,
  port: number,
  registration: Registration,
  env: Env,
): Joined {
  const token = readToken(env, host, port);
  if (token === undefined) {
    closeFd(fd);
    throw new CoordinatorError(
      `a coordinator answers at ${host}:${port}, but its token is not known here`,
      "Run as the user who started it, or set DMTCP_COORD_TOKEN to its token.",
    );
  }
  try {
    const workerId = hello(fd, token, registration);
    return { fd, host, address, port, token, workerId };
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

function hello(fd: number, token: Uint8Array, registration: Registration): number {
  const payload = protocol.joinStrings([registration.name, hostname()]);
  const restart = registration.restart;
  const message = protocol.header({
    kind: restart ? protocol.Kind.hello_restart : protocol.Kind.hello_worker,
    real_pid: registration.realPid,
    state: restart ? protocol.WorkerState.restarting : protocol.WorkerState.running,
    arch: registration.arch,
    interval_s: registration.intervalS ?? protocol.INTERVAL_UNCHANGED,
    worker_id: restart?.workerId ?? 0,
    computation_id: restart?.computationId ?? 0n,
    generation: restart?.generation ?? 0,
    peer_count: restart?.peerCount ?? 0,
    token,
  });
  writeAll(fd, protocol.encode(message, payload));
  const reply = protocol.decode(readExactly(fd, protocol.HEADER_SIZE, CONNECT_TIMEOUT_MS));
  if (reply.payload_size > 0) readExactly(fd, reply.payload_size, CONNECT_TIMEOUT_MS);
  if (reply.kind === protocol.Kind.accept) return reply.worker_id;
  if (reply.status === protocol.Status.bad_token) {
    throw new CoordinatorError(
      "the coordinator refused our token",
      "Its token file is stale or belongs to another coordinator; set DMTCP_COORD_TOKEN.",
    );
  }
  if (reply.status === protocol.Status.wrong_computation) {
    throw new CoordinatorError(
      "the coordinator runs another computation",
      "Restart under a new coordinator (another -p, or -p 0) or end the running computation.",
    );
  }
  throw new CoordinatorError(
    `the coordinator refused to add this process (status ${reply.status})`,
    "A checkpoint or restart may be in progress there; retry when it is over.",
  );
}

/// Starts `dmtcp coordinator --exit-on-last` in the background; returns its port.
async function startCoordinator(
  port: number,
  token: Uint8Array,
  env: Env,
  extraArgs: string[],
): Promise<number> {
  const args = ["--exit-on-last", "-q", "-q", "-p", String(port), ...extraArgs];
  const { startCoordinatorProcess } = await import("../coordinator/start");
  return await startCoordinatorProcess(args, { ...env, DMTCP_COORD_TOKEN: hex(token) });
}
