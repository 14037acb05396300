// dmtcp restart [options] IMAGE... | --restartdir DIR: restart processes from images.
import { defineCommand } from "citty";
import { commonArgs, coordinatorArgs } from "./_shared";
import { UsageError } from "../errors";
import type { ParsedArgv } from "../args";

export const args = {
  ...coordinatorArgs,
  ckptdir: {
    type: "string",
    alias: "c",
    valueHint: "dir",
    description: "Where later images go (default: the directory of each image)",
  },
  restartdir: {
    type: "string",
    alias: "r",
    valueHint: "dir",
    description: "Restart every *.dmtcp image in this directory",
  },
  "no-strict-checking": { type: "boolean", description: "Accept images owned by another user" },
  ...commonArgs,
} as const;

export const stopAtPositional = true;

export default defineCommand({
  meta: { name: "restart", description: "Restart processes from checkpoint images" },
  args,
  run({ args: parsed }) {
    const { positionals, values } = parsed as unknown as ParsedArgv;
    if (positionals.length === 0 && values.restartdir === undefined) {
      throw new UsageError("no images to restart", "Usage: dmtcp restart [options] IMAGE...");
    }
    throw new UsageError("this build of dmtcp cannot restore images yet");
  },
});
