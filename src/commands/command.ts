// dmtcp command [options] COMMAND...: talk to a running coordinator, as dmtcp_command does:
// the same words (s, l, c, bc, kc, i N, k, q, with or without dashes), texts and exit codes
// (0 success, 1 usage, 2 coordinator errors), and --json with DMTCP's schema.
import { defineCommand } from "citty";
import { CoordinatorError, DmtcpError, UsageError } from "../errors";
import { Command, Status } from "../format/protocol";
import type { ParsedArgv } from "../args";
import * as options from "../options";
import { readToken } from "../coordinator/token";
import {
  CoordinatorRefused, CoordinatorUnreachable, requestCoordinator,
} from "../coordinator/client";
import { renderJson, renderReply, type CoordinatorAddress } from "../coordinator/render";

export default defineCommand({
  meta: { name: "command", description: "Send a command to a running coordinator" },
  args: {
    "coord-host": { type: "string", alias: ["h", "host"], description: "Coordinator host" },
    "coord-port": { type: "string", alias: ["p", "port"], description: "Coordinator port" },
    json: { type: "boolean", description: "Print the reply as one JSON object" },
    status: { type: "boolean", alias: "s", description: "Print the computation's status" },
    list: { type: "boolean", alias: "l", description: "List the workers" },
    checkpoint: { type: "boolean", alias: "c", description: "Checkpoint now, return at once" },
    bcheckpoint: { type: "boolean", description: "Checkpoint now, return when done (bc)" },
    kcheckpoint: { type: "boolean", description: "Checkpoint, then end the workers (kc)" },
    interval: { type: "string", alias: "i", description: "Set the checkpoint interval (s)" },
    kill: { type: "boolean", alias: "k", description: "End every worker" },
    quit: { type: "boolean", alias: "q", description: "End every worker and the coordinator" },
    help: { type: "boolean", description: "Show this help" },
    version: { type: "boolean", description: "Show the version" },
  },
  async run({ args }) {
    return await runCommand(args as unknown as ParsedArgv, process.env);
  },
});

const WORDS: Record<string, number> = {
  s: Command.status, status: Command.status,
  l: Command.list, t: Command.list, list: Command.list,
  c: Command.checkpoint, checkpoint: Command.checkpoint,
  bc: Command.blocking_checkpoint, bcheckpoint: Command.blocking_checkpoint,
  kc: Command.kill_after_checkpoint, ck: Command.kill_after_checkpoint,
  K: Command.kill_after_checkpoint, Kc: Command.kill_after_checkpoint,
  kcheckpoint: Command.kill_after_checkpoint,
  i: Command.interval, interval: Command.interval,
  k: Command.kill, kill: Command.kill,
  q: Command.quit, quit: Command.quit,
};

interface Request {
  command: number;
  intervalS: number | undefined;
}

/// DMTCP's word-by-word parse: options with values, then command words with dashes stripped.
export function parse(argv: string[]): ParsedArgv & { requests: Request[] } {
  const parsed = {
    values: {} as ParsedArgv["values"], counts: {}, positionals: [], requests: [] as Request[],
  };
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index]!;
    const option = /^(?:-h|--coord-host|--host|-p|--coord-port|--port)(?:=(.*))?$/.exec(word);
    const compactPort = /^-p(\d+)$/.exec(word);
    const last = index === argv.length - 1;
    if (word === "--json") parsed.values.json = true;
    else if (["--help", "h", "help", "?", "-?"].includes(word) || (word === "-h" && last)) {
      parsed.values.help = true;
    } else if (word === "--version") parsed.values.version = true;
    else if (compactPort) parsed.values["coord-port"] = compactPort[1]!;
    else if (option) {
      const key = /p/.test(word.split("=")[0]!) && !/host/.test(word) ? "coord-port" : "coord-host";
      const value = option[1] ?? argv[++index];
      if (value === undefined) throw new UsageError(`option '${word}' needs a value`);
      parsed.values[key] = value;
    } else index = takeCommand(argv, index, parsed.requests);
  }
  return parsed;
}

function takeCommand(argv: string[], index: number, requests: Request[]): number {
  const word = argv[index]!.replace(/^-+/, "");
  const compact = /^i(\d+)$/.exec(word);
  if (compact) {
    requests.push({ command: Command.interval, intervalS: checkInterval(compact[1]!) });
    return index;
  }
  const command = WORDS[word];
  if (command === undefined) {
    throw new UsageError(`unknown command '${argv[index]}'`, "Try 'dmtcp command --help'.");
  }
  if (command !== Command.interval) {
    requests.push({ command, intervalS: undefined });
    return index;
  }
  const value = argv[index + 1];
  if (value === undefined) throw new UsageError("--interval needs a number of seconds");
  requests.push({ command, intervalS: checkInterval(value) });
  return index + 1;
}

function checkInterval(text: string): number {
  return options.check(options.schemas.intervalS, text, "--interval");
}

/// A failed request: exit 2 (coordinator), 1 (usage), as dmtcp_command.
export function failureCode(error: unknown): number {
  return error instanceof UsageError ? 1 : 2;
}

const NOT_RUNNING_TEXT =
  "Error, computation not in running state.  Either a checkpoint is\n" +
  " currently happening or there are no connected processes.";

async function runCommand(parsed: ParsedArgv & { requests?: Request[] }, env: options.Env) {
  const json = parsed.values.json === true;
  const hostGiven = options.pick(parsed, "coord-host", env, ["DMTCP_COORD_HOST", "DMTCP_HOST"]);
  const target = options.coordinatorTarget(parsed, env);
  const address: CoordinatorAddress = {
    host: hostGiven?.value ?? "localhost",
    port: target.port,
    portIsDefault: !target.portGiven,
  };
  const requests = parsed.requests ?? [];
  if (requests.length === 0) {
    throw new UsageError("no command given", "Try 'dmtcp command --status' or --help.");
  }
  for (const request of requests) {
    const code = await perform(request, target.host, address, json, env);
    if (code !== 0) return code;
  }
  return 0;
}

async function perform(
  request: Request,
  host: string,
  address: CoordinatorAddress,
  json: boolean,
  env: options.Env,
): Promise<number> {
  try {
    const token = readToken(env, host, address.port) ?? new Uint8Array(16);
    const reply = await requestCoordinator({
      host, port: address.port, token, command: request.command, intervalS: request.intervalS,
    });
    process.stdout.write(renderReply(reply, { ...address, json }));
    if (reply.status === Status.success) return 0;
    if (!json) {
      if (reply.status === Status.not_running) process.stderr.write(`${NOT_RUNNING_TEXT}\n`);
      else if (reply.status === Status.checkpoint_failed) {
        process.stderr.write(`checkpoint failed: ${reply.detail ?? "see the workers' messages"}\n`);
      } else process.stderr.write(`Coordinator refused the command (status ${reply.status}).\n`);
    }
    return 2;
  } catch (error) {
    if (json && (error instanceof CoordinatorUnreachable || error instanceof CoordinatorRefused)) {
      const reply = { command: request.command, status: "not_found" as const };
      process.stdout.write(`${renderJson(reply, address)}\n`);
      return 2;
    }
    if (error instanceof CoordinatorUnreachable) {
      const portSet = env.DMTCP_COORD_PORT !== undefined;
      throw new CoordinatorError(
        portSet
          ? "Coordinator not found. Please check port and host."
          : "Coordinator not found. Try specifying port with '--port'.",
      );
    }
    if (error instanceof DmtcpError) throw error;
    throw new CoordinatorError((error as Error).message);
  }
}
