// Each subcommand lives in its own file and loads only when chosen.
import type { CommandDef } from "citty";
import type { ParsedArgv } from "../args";

export interface CommandModule {
  default: CommandDef<any>;
  /// Tools whose words are not plain options (dmtcp command) parse for themselves.
  parse?: (argv: string[]) => ParsedArgv;
  /// Exit code for a failure; DMTCP's dmtcp_command uses 1 and 2 rather than 99.
  failureCode?: (error: unknown) => number | undefined;
  /// Options end at the first program word (launch, nocheckpoint).
  stopAtPositional?: boolean;
}

export const commands: Record<string, () => Promise<CommandModule>> = {
  launch: () => import("./launch"),
  restart: () => import("./restart"),
  command: () => import("./command"),
  coordinator: () => import("./coordinator"),
  inspect: () => import("./inspect"),
  nocheckpoint: () => import("./nocheckpoint"),
  "install-links": () => import("./install-links"),
};

/// The classic tool names: invoked through a link with one of these names, the executable
/// acts as that tool.
export const toolNames: Record<string, string> = {
  dmtcp_launch: "launch",
  dmtcp_restart: "restart",
  dmtcp_command: "command",
  dmtcp_coordinator: "coordinator",
};
