// dmtcp install-links DIR: make dmtcp_launch, dmtcp_command, ... links to this executable, so
// scripts written for DMTCP find its tools by their usual names.
import { defineCommand } from "citty";
import { existsSync, lstatSync, mkdirSync, symlinkSync, unlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { FileError, UsageError } from "../errors";
import { toolNames } from "./index";

export default defineCommand({
  meta: {
    name: "install-links",
    description: "Create dmtcp_launch, dmtcp_command, ... links in DIR",
  },
  args: {
    dir: { type: "positional", description: "Directory for the links", required: true },
    help: { type: "boolean", description: "Show this help" },
  },
  run({ args }) {
    const positionals = (args as unknown as { positionals: string[] }).positionals;
    if (positionals.length !== 1) throw new UsageError("give exactly one directory");
    const directory = resolve(positionals[0]!);
    try {
      mkdirSync(directory, { recursive: true });
      for (const name of Object.keys(toolNames)) {
        const link = join(directory, name);
        if (existsSync(link) || lstatSafe(link)) unlinkSync(link);
        symlinkSync(process.execPath, link);
        process.stdout.write(`${link} -> ${process.execPath}\n`);
      }
    } catch (error) {
      throw new FileError(`cannot create links in ${directory}: ${(error as Error).message}`);
    }
  },
});

function lstatSafe(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
