// The `dmtcp command` side of the protocol: one connection, one hello_command, one reply.
import type { Socket } from "bun";
import {
  Command, encode, Flags, FrameReader, header, INTERVAL_UNCHANGED, Kind, Status,
  type Frame,
} from "../format/protocol";
import type { Reply } from "./render";

export type { Reply } from "./render";
export { renderReply } from "./render";

/// Nothing listens at host:port (or the host cannot be reached in time).
export class CoordinatorUnreachable extends Error {
  constructor(readonly host: string, readonly port: number, readonly reason: string) {
    super(`no coordinator at ${host}:${port} (${reason})`);
    this.name = "CoordinatorUnreachable";
  }
}

/// The coordinator answered with `reject`; `status` says why.
export class CoordinatorRefused extends Error {
  constructor(readonly host: string, readonly port: number, readonly status: number) {
    super(refusalText(host, port, status));
    this.name = "CoordinatorRefused";
  }
}

/// The coordinator accepted the connection but sent no usable reply.
export class CoordinatorNoReply extends Error {
  constructor(readonly host: string, readonly port: number, readonly reason: string) {
    super(`the coordinator at ${host}:${port} did not reply: ${reason}`);
    this.name = "CoordinatorNoReply";
  }
}

function refusalText(host: string, port: number, status: number): string {
  if (status === Status.bad_token) {
    return `the coordinator at ${host}:${port} refused the request: the token does not match ` +
      "(is it another user's coordinator, or was DMTCP_COORD_TOKEN set for another one?)";
  }
  return `the coordinator at ${host}:${port} refused the request (status ${status})`;
}

export interface CommandRequest {
  host: string;
  port: number;
  token: Uint8Array;
  /// Command value from src/format/protocol.ts.
  command: number;
  /// New interval for Command.interval; ignored otherwise.
  intervalS?: number;
  /// Bounds connecting and waiting for the reply together; for a blocking checkpoint it
  /// bounds connecting only, since the reply waits for every image to be written.
  timeoutMs?: number;
}

const TIMEOUT_MS_DEFAULT = 5000;

/// Sends one command and returns the coordinator's reply. For `quit` the coordinator may exit
/// before its reply arrives; the socket closing counts as success, as in DMTCP.
export async function requestCoordinator(request: CommandRequest): Promise<Reply> {
  const exchange = new Exchange(request);
  const timeoutMs = request.timeoutMs ?? TIMEOUT_MS_DEFAULT;
  const timer = setTimeout(() => exchange.timeout(), timeoutMs);
  try {
    return await exchange.run();
  } finally {
    clearTimeout(timer);
  }
}

/// One request's connection; settles its promise exactly once.
class Exchange {
  private socket?: Socket<undefined>;
  private readonly reader = new FrameReader();
  private settled = false;
  private connected = false;
  private resolve!: (reply: Reply) => void;
  private reject!: (error: Error) => void;
  private readonly result = new Promise<Reply>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });

  constructor(private readonly request: CommandRequest) {}

  async run(): Promise<Reply> {
    const { host, port } = this.request;
    try {
      this.socket = await Bun.connect({
        hostname: host,
        port,
        socket: {
          open: (socket) => this.onOpen(socket),
          data: (_socket, data) => this.onData(data),
          close: () => this.onClose(),
          error: (_socket, error) => this.fail(new CoordinatorNoReply(host, port, error.message)),
          connectError: () => {},
        },
      });
      // A timeout may have settled the request while the connection was still being made.
      if (this.settled) this.socket.terminate();
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      this.fail(new CoordinatorUnreachable(host, port, reason));
    }
    return this.result;
  }

  timeout(): void {
    const { host, port, command } = this.request;
    // DMTCP waits as long as the checkpoint takes; a coordinator that dies closes the socket.
    if (this.connected && command === Command.blocking_checkpoint) return;
    const error = this.connected
      ? new CoordinatorNoReply(host, port, "timed out")
      : new CoordinatorUnreachable(host, port, "timed out");
    this.fail(error);
  }

  private onOpen(socket: Socket<undefined>): void {
    this.connected = true;
    socket.setNoDelay(true);
    const interval = this.request.command === Command.interval
      ? (this.request.intervalS ?? INTERVAL_UNCHANGED)
      : INTERVAL_UNCHANGED;
    const hello = header({
      kind: Kind.hello_command,
      command: this.request.command,
      interval_s: interval,
      real_pid: process.pid,
      token: this.request.token,
    });
    // 80 bytes always fit a fresh socket's send buffer, so one write is enough.
    socket.write(encode(hello));
  }

  private onData(data: Uint8Array): void {
    let frames: Frame[];
    try {
      frames = this.reader.push(data);
    } catch (error) {
      const { host, port } = this.request;
      this.fail(new CoordinatorNoReply(host, port, `bad reply: ${(error as Error).message}`));
      return;
    }
    const frame = frames[0];
    if (frame !== undefined) this.onFrame(frame);
  }

  private onFrame({ header: reply, payload }: Frame): void {
    const { host, port, command } = this.request;
    if (reply.kind === Kind.reject) {
      this.fail(new CoordinatorRefused(host, port, reply.status));
      return;
    }
    if (reply.kind !== Kind.command_result) {
      this.fail(new CoordinatorNoReply(host, port, `unexpected message kind ${reply.kind}`));
      return;
    }
    const text = payload.length > 0 ? new TextDecoder().decode(payload) : undefined;
    const listText = command === Command.list ? text : undefined;
    this.succeed({
      detail: command === Command.list ? undefined : text,
      command,
      status: reply.status,
      peerCount: reply.peer_count,
      running: (reply.flags & Flags.running) !== 0,
      intervalS: reply.interval_s,
      listText,
    });
  }

  private onClose(): void {
    const { host, port, command } = this.request;
    if (command === Command.quit) {
      this.succeed({ command, status: Status.success, peerCount: 0, running: false, intervalS: 0 });
      return;
    }
    this.fail(new CoordinatorNoReply(host, port, "connection closed"));
  }

  private succeed(reply: Reply): void {
    if (this.settled) return;
    this.settled = true;
    this.socket?.end();
    this.resolve(reply);
  }

  private fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.socket?.terminate();
    this.reject(error);
  }
}
