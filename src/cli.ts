// The root of the `dmtcp` executable: picks the tool (by link name or first word), parses its
// options strictly, runs it, and turns every failure into one message and an exit code.
import type { CommandDef } from "citty";
import { basename } from "node:path";
import { parseArgv } from "./args";
import { commands, toolNames, type CommandModule } from "./commands/index";
import { DmtcpError, describe, failCode, UsageError } from "./errors";
import { nativeHash, setNatives, type NativeSet } from "./native/cache";
// Loaded only when needed: start-up time is part of every `dmtcp launch`.
const logger = () => import("./log");

export const VERSION = "0.1.0";

function versionText(tool: string): string {
  return `${tool} (dmtcp) ${VERSION}, natives ${nativeHash()}\n`;
}

const ROOT_HELP = `dmtcp ${VERSION}: transparent checkpoint/restart for Linux programs

Usage: dmtcp <command> [options]

Commands:
  launch        Start a program under checkpoint control
  restart       Restart processes from checkpoint images
  command       Send a command to a running coordinator (--status, --checkpoint, ...)
  coordinator   Run a coordinator for a computation
  install-links Create dmtcp_launch, dmtcp_command, ... links in a directory

Use dmtcp <command> --help for the options of each.
`;

export async function main(natives: NativeSet, argv0: string, argv: string[]): Promise<void> {
  setNatives(natives);
  const env = process.env;
  const tool = toolNames[basename(argv0)];
  const [name, rest] = tool ? [tool, argv] : [argv[0], argv.slice(1)];
  let module: CommandModule | undefined;
  try {
    if (name === undefined || name === "--help" || name === "help") {
      process.stdout.write(ROOT_HELP);
      process.exit(name === undefined ? failCode(env) : 0);
    }
    if (name === "--version" || name === "-v") {
      process.stdout.write(versionText("dmtcp"));
      process.exit(0);
    }
    const loader = commands[name];
    if (loader === undefined) {
      throw new UsageError(`unknown command '${name}'`, "Run 'dmtcp --help' for the commands.");
    }
    module = await loader();
    const code = await runTool(module, tool ? basename(argv0) : `dmtcp ${name}`, rest);
    process.exit(code);
  } catch (error) {
    process.exit(await report(error, module, env));
  }
}

async function runTool(module: CommandModule, shown: string, argv: string[]): Promise<number> {
  const command = module.default as CommandDef<any>;
  const definitions = (await resolveValue(command.args)) ?? {};
  const parsed = module.parse
    ? module.parse(argv)
    : parseArgv(argv, definitions, { stopAtPositional: module.stopAtPositional ?? false });
  const { quietLevel } = await import("./options");
  (await logger()).setQuiet(quietLevel(parsed, process.env), process.env);
  if (parsed.values.help === true) {
    const { renderUsage } = await import("citty");
    process.stdout.write(`${await renderUsage(command)}\n`);
    return 0;
  }
  if (parsed.values.version === true) {
    process.stdout.write(versionText(shown.replace(" ", "_")));
    return 0;
  }
  const result = await command.run?.({ args: parsed as any, rawArgs: argv, cmd: command });
  return typeof result === "number" ? result : 0;
}

async function resolveValue<T>(value: T | (() => T | Promise<T>) | Promise<T>): Promise<T> {
  return typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;
}

/// Errors from modules that cannot depend on errors.ts but describe the user's situation.
const USER_ERRORS = new Set([
  "TokenInvalid", "TokenDirectoryUnsafe", "CoordinatorUnreachable", "CoordinatorRefused",
  "CoordinatorNoReply",
]);

async function report(
  error: unknown,
  module: CommandModule | undefined,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const code = module?.failureCode?.(error) ?? failCode(env);
  const { log } = await logger();
  if (error instanceof DmtcpError || USER_ERRORS.has((error as Error)?.name)) {
    log.error(describe(error));
  } else {
    log.error(`internal error: ${describe(error)}`);
    if (env.DMTCP_LOG_LEVEL === "trace") log.error((error as Error)?.stack ?? "");
  }
  return code;
}
