// dmtcp restart [options] IMAGE... | --restartdir DIR: restart a process from its image. Every
// image is validated completely first; then we join (or start) the coordinator as the image's
// worker and execve the restart program of the image's architecture, which becomes the process.
import { defineCommand } from "citty";
import { readdirSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { commonArgs, coordinatorArgs } from "./_shared";
import { ImageInvalid, ProgramError, UsageError } from "../errors";
import type { ParsedArgv } from "../args";
import * as options from "../options";
import { readImage, type Image } from "../format/image";
import { carriedArchs, executableFor, nativeDirectory, restartProgram } from "../native/cache";
import type { ArchName } from "../native/elf";
import { execve, keepAcrossExec } from "../native/libc";
import { coordinatorEnv, joinComputation } from "../worker/join";
import { writePortFile } from "./launch";

export const args = {
  ...coordinatorArgs,
  ckptdir: {
    type: "string",
    alias: "c",
    valueHint: "dir",
    description: "Where later images go (default: the directory of the image)",
  },
  restartdir: {
    type: "string",
    alias: ["r", "d"] as string[],
    valueHint: "dir",
    description: "Restart every *.dmtcp image in this directory",
  },
  "no-strict-checking": { type: "boolean", description: "Accept images owned by another user" },
  ...commonArgs,
} as const;

export const stopAtPositional = false;

export default defineCommand({
  meta: { name: "restart", description: "Restart processes from checkpoint images" },
  args,
  async run({ args: parsed }) {
    await restart(parsed as unknown as ParsedArgv, process.env);
  },
});

function imagePaths(parsed: ParsedArgv): string[] {
  const directory = parsed.values.restartdir;
  if (typeof directory === "string") {
    if (parsed.positionals.length > 0) {
      throw new UsageError("give either images or --restartdir, not both");
    }
    let names: string[];
    try {
      names = readdirSync(directory);
    } catch {
      throw new UsageError(`cannot read the restart directory '${directory}'`);
    }
    const images = names.filter((name) => name.endsWith(".dmtcp")).map((name) => join(directory, name));
    if (images.length === 0) throw new UsageError(`no *.dmtcp images in '${directory}'`);
    return images.map((path) => resolve(path));
  }
  if (parsed.positionals.length === 0) {
    throw new UsageError("no images to restart", "Usage: dmtcp restart [options] IMAGE...");
  }
  return parsed.positionals.map((path) => resolve(path));
}

function checkOwner(image: Image, strict: boolean): void {
  if (!strict) return;
  const owner = statSync(image.path).uid;
  if (owner !== process.getuid?.()) {
    throw new ImageInvalid(
      `${image.path}: owned by uid ${owner}, not you`,
      "Pass --no-strict-checking to restart another user's image.",
    );
  }
}

export async function restart(parsed: ParsedArgv, env: options.Env): Promise<never> {
  const paths = imagePaths(parsed);
  const strict = parsed.values["no-strict-checking"] !== true && !env.DMTCP_DISABLE_STRICT_CHECKING;
  // Every image is read and checked in full before anything else happens.
  const images = paths.map((path) => readImage(path));
  for (const image of images) {
    checkOwner(image, strict);
    if (!carriedArchs().includes(image.header.archName as ArchName)) {
      throw new ImageInvalid(
        `${image.path}: an image of a ${image.header.archName} process; this dmtcp restores ` +
          `${carriedArchs().join(" and ")} images`,
        `Restart it with ${executableFor(image.header.archName as ArchName)}, the dmtcp ` +
          `executable that carries ${image.header.archName}.`,
      );
    }
  }
  if (images.length > 1) {
    throw new UsageError("restarting several processes at once is not supported yet; give one image");
  }
  const image = images[0]!;
  const target = options.coordinatorTarget(parsed, env);
  const intervalS = options.intervalS(parsed, env);
  const ckptDir = options.directory(parsed, "ckptdir", env, [], dirname(image.path));
  const natives = await nativeDirectory(env);
  const joined = await joinComputation(target, {
    name: image.header.programName,
    realPid: process.pid,
    intervalS,
    arch: image.header.arch,
    restart: {
      workerId: image.header.workerId, computationId: image.header.computationId,
      generation: image.header.generation, peerCount: image.header.peerCount,
    },
  }, env, ["-c", ckptDir, ...(intervalS === undefined ? [] : ["-i", String(intervalS)])]);
  if (target.portFile) writePortFile(target.portFile, joined.port);
  const program = restartProgram(natives, image.header.archName as ArchName);
  const restartEnv: Record<string, string> = {
    ...coordinatorEnv(joined),
    DMTCP_CHECKPOINT_DIR: ckptDir,
    DMTCP_TMPDIR: options.tmpDir(parsed, env),
    DMTCP_QUIET: String(options.quietLevel(parsed, env)),
  };
  keepAcrossExec(joined.fd);
  const code = execve(program, [basename(program), image.path], restartEnv);
  throw new ProgramError(`cannot run the restart program ${program} (errno ${code})`);
}
