// dmtcp coordinator [options] [port]: run the coordinator of a computation in the foreground,
// or in the background with --daemon. Loopback only unless --bind asks for more.
import { defineCommand } from "citty";
import { hostname } from "node:os";
import { commonArgs } from "./_shared";
import { DmtcpError, FileError, UsageError } from "../errors";
import type { ParsedArgv } from "../args";
import * as options from "../options";
import { log } from "../log";
import { startServer, type RunningServer } from "../coordinator/server";
import {
  newToken, removeToken, TokenInvalid, tokenPath, writeToken,
} from "../coordinator/token";
import { startCoordinatorProcess } from "../coordinator/start";
import { isLocalHost } from "../worker/join";
import { writePortFile } from "./launch";
import { rmSync } from "node:fs";

export const args = {
  "coord-port": {
    type: "string", alias: ["p", "port"] as string[], valueHint: "port",
    description: "Port to listen on, 0 for any free one (DMTCP_COORD_PORT; default 7779)",
  },
  "coord-host": {
    type: "string", alias: ["h", "host"] as string[], valueHint: "host",
    description: "Host name workers use to reach us; a non-local one listens on all interfaces",
  },
  bind: {
    type: "string", valueHint: "address",
    description: "Address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
  },
  "port-file": { type: "string", valueHint: "file", description: "Write the port to this file" },
  ckptdir: {
    type: "string", alias: "c", valueHint: "dir",
    description: "Where the restart script goes (DMTCP_CHECKPOINT_DIR; default: current directory)",
  },
  interval: {
    type: "string", alias: "i", valueHint: "seconds",
    description: "Checkpoint every this many seconds, 0 for never (default 0)",
  },
  daemon: { type: "boolean", description: "Run in the background" },
  "exit-on-last": { type: "boolean", description: "Exit when the last worker exits" },
  "kill-after-ckpt": { type: "boolean", description: "End the workers after each checkpoint" },
  timeout: { type: "string", valueHint: "seconds", description: "Exit after this many seconds" },
  "stale-timeout": {
    type: "string", valueHint: "seconds",
    description: "Exit after this many seconds without workers (default 28800)",
  },
  "coord-logfile": { type: "string", valueHint: "file", description: "Log file with --daemon" },
  ...commonArgs,
} as const;

export default defineCommand({
  meta: { name: "coordinator", description: "Run the coordinator of a computation" },
  args,
  async run({ args: parsed }) {
    const argv = process.argv.slice(2);
    return await runCoordinator(parsed as unknown as ParsedArgv, process.env, argv);
  },
});

interface Settings {
  port: number;
  bind: string;
  host: string;
  intervalS: number;
  timeoutS: number | undefined;
  staleTimeoutS: number;
  portFile: string | undefined;
  quiet: number;
  ckptDir: string;
}

function settings(parsed: ParsedArgv, env: options.Env): Settings {
  if (parsed.positionals.length > 1) throw new UsageError("give at most one port");
  const trailing = parsed.positionals[0];
  const port = trailing !== undefined
    ? options.check(options.schemas.port, trailing, "the port")
    : options.coordinatorTarget(parsed, env).port;
  const host = options.pick(parsed, "coord-host", env, [])?.value ?? "localhost";
  const bind = options.pick(parsed, "bind", env, [])?.value ??
    (isLocalHost(host) ? options.DEFAULT_HOST : "0.0.0.0");
  const seconds = (name: string) => {
    const given = options.pick(parsed, name, env, []);
    return given ? options.check(options.schemas.timeoutS, given.value, given.source) : undefined;
  };
  const staleTimeoutS = seconds("stale-timeout");
  return {
    port, bind, host,
    intervalS: options.intervalS(parsed, {}) ?? 0,
    timeoutS: seconds("timeout"),
    staleTimeoutS: staleTimeoutS === undefined || staleTimeoutS === 0 ? 28800 : staleTimeoutS,
    portFile: options.coordinatorTarget(parsed, env).portFile,
    quiet: options.quietLevel(parsed, env),
    ckptDir: options.directory(parsed, "ckptdir", env, ["DMTCP_CHECKPOINT_DIR"], process.cwd()),
  };
}

function tokenFromEnv(env: options.Env): Uint8Array {
  const text = env.DMTCP_COORD_TOKEN;
  if (text === undefined || text === "") return newToken();
  if (!/^[0-9a-fA-F]{32}$/.test(text)) throw new TokenInvalid("DMTCP_COORD_TOKEN");
  return new Uint8Array(Buffer.from(text, "hex"));
}

async function runCoordinator(parsed: ParsedArgv, env: options.Env, argv: string[]) {
  const chosen = settings(parsed, env);
  if (parsed.values.daemon === true) return await daemonize(argv, chosen, parsed, env);
  const token = tokenFromEnv(env);
  let server: RunningServer;
  try {
    server = await startServer({
      token, port: chosen.port, bind: chosen.bind, host: chosen.host,
      exitOnLast: parsed.values["exit-on-last"] === true,
      killAfterCheckpoint: parsed.values["kill-after-ckpt"] === true,
      intervalS: chosen.intervalS, timeoutS: chosen.timeoutS, staleTimeoutS: chosen.staleTimeoutS,
      log: (level, message) => log[level](message),
      ckptDir: chosen.ckptDir,
      // The restart script calls this same executable back.
      restartCommand: [process.execPath, "restart"],
    });
  } catch (error) {
    if ((error as { code?: string }).code === "EADDRINUSE") {
      throw new DmtcpError(
        `port ${chosen.port} is already in use`,
        "Another coordinator may be running there: join it, or choose another port (-p 0 for any).",
      );
    }
    throw error;
  }
  const tokenFile = tokenPath(env, chosen.host, server.port);
  writeToken(tokenFile, token);
  if (chosen.portFile) writePortFile(chosen.portFile, server.port);
  const cleanup = () => {
    removeToken(tokenFile);
    if (chosen.portFile) rmSync(chosen.portFile, { force: true });
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      server.stop();
      cleanup();
      process.exit(0);
    });
  }
  banner(chosen, server.port, parsed);
  const code = await server.exited;
  cleanup();
  return code;
}

function banner(chosen: Settings, port: number, parsed: ParsedArgv): void {
  if (chosen.quiet > 0) return;
  const interval = chosen.intervalS === 0
    ? "disabled (checkpoint manually instead)"
    : chosen.intervalS;
  process.stderr.write(
    "dmtcp coordinator starting...\n" +
      `    Host: ${hostname()} (${chosen.bind})\n` +
      `    Port: ${port}\n` +
      `    Checkpoint Interval: ${interval}\n` +
      `    Exit on last client: ${parsed.values["exit-on-last"] === true ? 1 : 0}\n`,
  );
}

/// --daemon: start a copy of ourselves in the background, wait until it listens, then return.
async function daemonize(argv: string[], chosen: Settings, parsed: ParsedArgv, env: options.Env) {
  const forwarded = argv.filter((word) => word !== "--daemon" && word !== "coordinator");
  const logFile = options.pick(parsed, "coord-logfile", env, ["DMTCP_COORD_LOG_FILENAME"])?.value;
  try {
    const port = await startCoordinatorProcess(forwarded, env, logFile);
    if (chosen.portFile) writePortFile(chosen.portFile, port);
    if (chosen.quiet === 0) {
      process.stderr.write(`dmtcp coordinator listening on port ${port} (in the background)\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof DmtcpError) throw error;
    const reason = (error as Error).message;
    throw new FileError(`cannot start the coordinator in the background: ${reason}`);
  }
}
