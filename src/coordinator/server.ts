// The coordinator's thin network layer: TCP sockets in, `step` events; `step` actions out,
// socket writes and closes. Every decision lives in state.ts.
import type { Socket, TCPSocketListener } from "bun";
import { chmodSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { encode, FrameReader, ProtocolError, type Frame } from "../format/protocol";
import {
  restartScriptName, restartScriptText, SCRIPT_LINK_NAME, type RestartScript,
} from "./script";
import {
  initialState, step, type Action, type ConnId, type Event, type LogLevel, type State,
} from "./state";

export type Log = (level: LogLevel, message: string) => void;

export interface ServerOptions {
  token: Uint8Array;
  /// Address to listen on; loopback unless the user asks for more.
  bind?: string;
  /// 0 picks any free port; `RunningServer.port` tells which.
  port: number;
  /// Host name `--status` shows; defaults to `bind`.
  host?: string;
  exitOnLast?: boolean;
  killAfterCheckpoint?: boolean;
  intervalS?: number;
  /// Exit 1 after this long without workers (DMTCP's default is 8 h); 0 disables it.
  staleTimeoutS?: number;
  timeoutS?: number;
  log?: Log;
  /// How often `tick` runs; DMTCP's event loop wakes every second.
  tickMs?: number;
  /// How long a new connection has to send its hello.
  helloTimeoutMs?: number;
  /// Where restart scripts go; relative to the current directory, which is the default.
  ckptDir?: string;
  /// How the restart script runs a restart, e.g. ["/usr/bin/dmtcp", "restart"]; without it
  /// the script runs `dmtcp_restart` from PATH.
  restartCommand?: string[];
}

export interface RunningServer {
  port: number;
  /// Resolves with the exit code once the coordinator decides to exit (after its last
  /// replies are flushed); the caller ends the process.
  exited: Promise<number>;
  /// Closes the listener and every connection at once; `exited` resolves with 0 if pending.
  stop(): void;
}

const STALE_TIMEOUT_S_DEFAULT = 8 * 60 * 60;
const TICK_MS_DEFAULT = 1000;
const HELLO_TIMEOUT_MS_DEFAULT = 1000;
/// How long an exiting coordinator waits for its last replies to reach the kernel.
const FLUSH_TIMEOUT_MS = 1000;

/// Per-socket data: Bun's `write` is unbuffered, so unsent bytes wait here for `drain`.
interface Peer {
  conn: ConnId;
  reader: FrameReader;
  outbox: Uint8Array[];
  closing: boolean;
  helloTimer?: Timer;
}

type PeerSocket = Socket<Peer>;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const server = new Server(options);
  return server.start();
}

class Server {
  private state!: State;
  private listener?: TCPSocketListener<Peer>;
  private readonly sockets = new Map<ConnId, PeerSocket>();
  private readonly queue: Event[] = [];
  private dispatching = false;
  /// Set by stop(): the sockets it tears down must not feed the state machine any more.
  private stopped = false;
  private nextConn: ConnId = 1;
  private tickTimer?: Timer;
  private resolveExit!: (code: number) => void;
  private exitCode?: number;
  private readonly exited = new Promise<number>((resolve) => (this.resolveExit = resolve));
  private readonly log: Log;

  constructor(private readonly options: ServerOptions) {
    this.log = options.log ?? (() => {});
  }

  start(): RunningServer {
    const bind = this.options.bind ?? "127.0.0.1";
    // Bun throws synchronously with `code` set (EADDRINUSE, EACCES), which the caller reports.
    this.listener = Bun.listen<Peer>({
      hostname: bind,
      port: this.options.port,
      // Without exclusive, Bun may share the port with another listener instead of failing.
      exclusive: true,
      socket: {
        open: (socket) => this.onOpen(socket),
        data: (socket, data) => this.onData(socket, data),
        drain: (socket) => this.flush(socket),
        close: (socket) => this.onClose(socket),
        error: (socket, error) => this.log("warn", `connection error: ${error.message}`),
      },
    });
    this.state = initialState(this.config(bind, this.listener.port));
    const tickMs = this.options.tickMs ?? TICK_MS_DEFAULT;
    this.tickTimer = setInterval(() => this.dispatch({ type: "tick", nowMs: Date.now() }), tickMs);
    return { port: this.listener.port, exited: this.exited, stop: () => this.stop() };
  }

  private config(bind: string, port: number): State["config"] {
    const options = this.options;
    return {
      token: options.token,
      exitOnLast: options.exitOnLast ?? false,
      killAfterCheckpoint: options.killAfterCheckpoint ?? false,
      intervalS: options.intervalS ?? 0,
      staleTimeoutS: options.staleTimeoutS ?? STALE_TIMEOUT_S_DEFAULT,
      timeoutS: options.timeoutS,
      host: options.host ?? bind,
      port,
      startMs: Date.now(),
      ckptDir: resolve(options.ckptDir ?? "."),
    };
  }

  private onOpen(socket: PeerSocket): void {
    // Barriers are round trips of small messages; Nagle would delay each by up to 40 ms.
    socket.setNoDelay(true);
    const conn = this.nextConn++;
    const helloTimeoutMs = this.options.helloTimeoutMs ?? HELLO_TIMEOUT_MS_DEFAULT;
    const helloTimer = setTimeout(() => this.dispatch({ type: "hello_timeout", conn }),
      helloTimeoutMs);
    socket.data = { conn, reader: new FrameReader(), outbox: [], closing: false, helloTimer };
    this.sockets.set(conn, socket);
    const address = socket.remoteAddress;
    const remote = address.includes(":")
      ? `[${address}]:${socket.remotePort}`
      : `${address}:${socket.remotePort}`;
    this.dispatch({ type: "connected", conn, remote });
  }

  private onData(socket: PeerSocket, data: Uint8Array): void {
    const peer = socket.data;
    if (peer.closing) return;
    let frames: Frame[];
    try {
      frames = peer.reader.push(data);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.dispatch({ type: "bad_frame", conn: peer.conn, reason: error.message });
      return;
    }
    if (frames.length > 0) clearTimeout(peer.helloTimer);
    for (const frame of frames) {
      this.dispatch({ type: "message", conn: peer.conn, ...frame });
    }
  }

  private onClose(socket: PeerSocket): void {
    const peer = socket.data;
    clearTimeout(peer.helloTimer);
    if (!this.sockets.delete(peer.conn)) return;
    this.dispatch({ type: "closed", conn: peer.conn });
    if (this.exitCode !== undefined && this.sockets.size === 0) this.resolveExit(this.exitCode);
  }

  /// Events raised while actions run (a close calls back into onClose) wait their turn, so
  /// each step sees the state the previous one left.
  private dispatch(event: Event): void {
    if (this.stopped) return;
    this.queue.push(event);
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
        const result = step(this.state, next);
        this.state = result.state;
        for (const action of result.actions) this.execute(action);
      }
    } finally {
      this.dispatching = false;
    }
  }

  private execute(action: Action): void {
    switch (action.type) {
      case "send":
        this.send(action.conn, encode(action.header, action.payload));
        break;
      case "close":
        this.closeWhenFlushed(action.conn);
        break;
      case "exit":
        this.finish(action.code);
        break;
      case "log":
        this.log(action.level, action.message);
        break;
      case "write_restart_script":
        this.writeRestartScript(action.script);
        break;
    }
  }

  /// Replaces the script and its link by rename, so a reader never sees a partial file.
  /// Failure costs only the script, not the checkpoint: the images are already written.
  private writeRestartScript(script: RestartScript): void {
    const name = restartScriptName(script.computationId);
    const path = join(script.ckptDir, name);
    const temporary = join(script.ckptDir, `.${name}.${process.pid}.tmp`);
    const link = join(script.ckptDir, SCRIPT_LINK_NAME);
    const temporaryLink = join(script.ckptDir, `.${SCRIPT_LINK_NAME}.${process.pid}.tmp`);
    try {
      mkdirSync(script.ckptDir, { recursive: true });
      writeFileSync(temporary, restartScriptText(script, this.options.restartCommand), {
        mode: 0o700,
      });
      // The mode given to writeFileSync passes through the umask; the script must run.
      chmodSync(temporary, 0o700);
      renameSync(temporary, path);
      rmSync(temporaryLink, { force: true });
      // A relative target keeps the link right when the directory is moved with its images.
      symlinkSync(name, temporaryLink);
      renameSync(temporaryLink, link);
    } catch (error) {
      rmSync(temporary, { force: true });
      rmSync(temporaryLink, { force: true });
      this.log("error", `could not write the restart script ${path}: ${(error as Error).message}`);
    }
  }

  private send(conn: ConnId, bytes: Uint8Array): void {
    const socket = this.sockets.get(conn);
    if (socket === undefined || socket.data.closing) return;
    socket.data.outbox.push(bytes);
    this.flush(socket);
  }

  /// Writes what the kernel takes; `drain` calls back for the rest.
  private flush(socket: PeerSocket): void {
    const peer = socket.data;
    while (peer.outbox.length > 0) {
      const bytes = peer.outbox[0]!;
      const written = socket.write(bytes);
      if (written < 0) {
        peer.outbox.length = 0;
        break;
      }
      if (written < bytes.length) {
        peer.outbox[0] = bytes.subarray(written);
        return;
      }
      peer.outbox.shift();
    }
    if (peer.closing) socket.end();
  }

  private closeWhenFlushed(conn: ConnId): void {
    const socket = this.sockets.get(conn);
    if (socket === undefined) return;
    socket.data.closing = true;
    this.flush(socket);
  }

  /// Stops listening and closes every connection once its last message is out, bounded by
  /// FLUSH_TIMEOUT_MS so a peer that never reads cannot keep the coordinator alive.
  private finish(code: number): void {
    this.exitCode = code;
    clearInterval(this.tickTimer);
    this.listener?.stop(false);
    for (const conn of [...this.sockets.keys()]) this.closeWhenFlushed(conn);
    if (this.sockets.size === 0) this.resolveExit(code);
    setTimeout(() => this.stop(), FLUSH_TIMEOUT_MS).unref();
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.tickTimer);
    this.listener?.stop(true);
    for (const socket of [...this.sockets.values()]) socket.terminate();
    this.resolveExit(this.exitCode ?? 0);
  }
}
