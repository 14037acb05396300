// dmtcp restart [options] IMAGE... | --restartdir DIR: restart a process from its image. Every
// image is validated completely first; then we join (or start) the coordinator as the image's
// worker and execve the restart program of the image's architecture, which becomes the process
// (with several images, forks the tree; an image of the other word size gets its own).
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
import { coordinatorEnv, joinAgain, joinComputation } from "../worker/join";
import { writePortFile } from "./launch";
import { log } from "../log";

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
    const images = names
      .filter((name) => name.endsWith(".dmtcp"))
      .map((name) => join(directory, name));
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
  const read = paths.map((path) => readImage(path));
  for (const image of read) {
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
  const images = newestCheckpoint(read);
  checkTree(images);
  const first = images[0]!;
  const target = options.coordinatorTarget(parsed, env);
  const intervalS = options.intervalS(parsed, env);
  const ckptDir = options.directory(parsed, "ckptdir", env, [], dirname(first.path));
  const natives = await nativeDirectory(env);
  const registration = (image: Image) => ({
    name: image.header.programName,
    realPid: process.pid,
    intervalS,
    arch: image.header.arch,
    restart: {
      workerId: image.header.workerId, computationId: image.header.computationId,
      generation: image.header.generation, peerCount: image.header.peerCount,
    },
  });
  // One connection per image: mtcp_restart forks the tree and hands each process its own.
  const joined = await joinComputation(target, registration(first), env,
    ["-c", ckptDir, ...(intervalS === undefined ? [] : ["-i", String(intervalS)])]);
  const connections = [
    joined,
    ...images.slice(1).map((image) => joinAgain(joined, registration(image))),
  ];
  if (target.portFile) writePortFile(target.portFile, joined.port);
  const image = first;
  const program = restartProgram(natives, image.header.archName as ArchName);
  const { DMTCP_COORD_FD: _, DMTCP_PID_MAP: __, ...coordinator } = coordinatorEnv(joined);
  const restartEnv: Record<string, string> = {
    ...coordinator,
    DMTCP_RESTART_FDS: connections.map((connection) => connection.fd).join(","),
    DMTCP_CHECKPOINT_DIR: ckptDir,
    // Where mtcp_restart finds its sibling of the other word size, for mixed trees.
    DMTCP_NATIVE_DIR: natives,
    DMTCP_TMPDIR: options.tmpDir(parsed, env),
    DMTCP_QUIET: String(options.quietLevel(parsed, env)),
    // readImage checksummed every page above: mtcp_restart checks them once more as it reads
    // them into place instead of in a second pass of its own.
    DMTCP_IMAGE_VERIFIED: "1",
    // Step times on stderr, for benchmarks (the restored runtime reads it as launch's does).
    ...(env.DMTCP_TIMINGS === undefined ? {} : { DMTCP_TIMINGS: env.DMTCP_TIMINGS }),
  };
  // Trampolines into this kernel's vDSO even when its layout matches (testing, or a kernel
  // whose vDSO moved in a way the layout check cannot see).
  if (env.DMTCP_VDSO_TRAMPOLINES === "1") restartEnv.DMTCP_VDSO_TRAMPOLINES = "1";
  for (const connection of connections) keepAcrossExec(connection.fd);
  const imageArgs = images.map((each) => each.path);
  const code = execve(program, [basename(program), ...imageArgs], restartEnv);
  throw new ProgramError(`cannot run the restart program ${program} (errno ${code})`);
}

/// A directory (or a glob) may still hold images of an earlier checkpoint: a process that
/// exited since wrote none in the newer one. When the newest checkpoint's images are all
/// there (as many as its peer count), the older ones are left out, with a warning; when
/// they are not, nothing is guessed (checkTree names the mix).
function newestCheckpoint(images: Image[]): Image[] {
  const first = images[0]!;
  const sameComputation = images.every((image) =>
    image.header.computationId === first.header.computationId);
  if (!sameComputation) return images;
  const newest = Math.max(...images.map((image) => image.header.generation));
  const current = images.filter((image) => image.header.generation === newest);
  if (current.length === images.length || current.length !== current[0]!.header.peerCount) {
    return images;
  }
  const older = images.length - current.length;
  log.warn(
    `left out ${older} image(s) of earlier checkpoints (processes that have since exited); ` +
      `restarting the ${current.length} of checkpoint ${newest}`,
  );
  return current;
}

/// The images of one restart must be one computation's processes, each once. They may mix
/// word sizes (a 64-bit parent of a 32-bit child): every architecture a computation holds is
/// carried by this executable (checked above), and mtcp_restart hands each image of the other
/// word size to the mtcp_restart of its own (core/restart/handover.zig).
function checkTree(images: Image[]): void {
  const first = images[0]!;
  const seen = new Set<number>();
  for (const image of images) {
    if (image.header.computationId !== first.header.computationId) {
      throw new UsageError(
        `${image.path} belongs to computation ${image.header.computationId.toString(16)}, ` +
          `${first.path} to ${first.header.computationId.toString(16)}`,
        "Restart the images of one computation together (its dmtcp_restart_script.sh does).",
      );
    }
    if (image.header.generation !== first.header.generation) {
      throw new UsageError(
        `${image.path} and ${first.path} come from different checkpoints ` +
          `(${image.header.generation} and ${first.header.generation})`,
        "Restart the images of one checkpoint together: its dmtcp_restart_script.sh lists them.",
      );
    }
    if (seen.has(image.header.workerId)) {
      throw new UsageError(`two images of worker ${image.header.workerId}; give each image once`);
    }
    seen.add(image.header.workerId);
  }
}
