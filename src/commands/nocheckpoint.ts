// dmtcp nocheckpoint program args...: run a program outside any computation, even from inside
// one. The runtime's library leaves LD_PRELOAD (the user's own entries stay), every DMTCP_*
// variable goes, and the coordinator connection this process inherited is closed, so neither
// the program nor anything it starts joins. Ends in execve, like launch.
import { defineCommand } from "citty";
import { basename } from "node:path";
import { ProgramError, UsageError } from "../errors";
import type { ParsedArgv } from "../args";
import type * as options from "../options";
import { findProgram } from "../native/elf";
import { closeFd, execve } from "../native/libc";

/// Options end at the program: `dmtcp nocheckpoint prog -h` gives -h to prog.
export const stopAtPositional = true;

export default defineCommand({
  meta: { name: "nocheckpoint", description: "Run a program outside checkpoint control" },
  args: {},
  async run({ args: parsed }) {
    nocheckpoint(parsed as unknown as ParsedArgv, process.env);
  },
});

export function nocheckpoint(parsed: ParsedArgv, env: options.Env): never {
  const [command, ...programArgs] = parsed.positionals;
  if (command === undefined) {
    throw new UsageError("no program to run", "Usage: dmtcp nocheckpoint program [args...]");
  }
  const path = findProgram(command, env);
  const inherited = coordinatorFd(env.DMTCP_COORD_FD);
  if (inherited !== undefined) closeFd(inherited);
  const code = execve(path, [command, ...programArgs], plainEnv(env));
  throw new ProgramError(`cannot run '${basename(command)}': exec failed (errno ${code})`);
}

/// DMTCP_COORD_FD is "<fd>:<pid>:<worker id>", each ten digits.
function coordinatorFd(value: string | undefined): number | undefined {
  const fd = Number(value?.split(":")[0]);
  return Number.isInteger(fd) && fd > 2 ? fd : undefined;
}

/// The environment without the runtime: LD_PRELOAD as it was before launch added our library.
export function plainEnv(env: options.Env): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && !key.startsWith("DMTCP_") && key !== "LD_PRELOAD") {
      result[key] = value;
    }
  }
  const preload = (env.LD_PRELOAD ?? "").split(/[: ]/)
    .filter((entry) => entry !== "" && basename(entry) !== "libdmtcp.so");
  if (preload.length > 0) result.LD_PRELOAD = preload.join(":");
  return result;
}
