// A checkpoint that fails (full disk, read-only directory, file-size limit) leaves the previous
// image intact and usable, tells `--bcheckpoint` it failed, and the program keeps running.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { DMTCP, findImage, program, Sandbox, until, type Running } from "./harness";

let sandbox: Sandbox;
let mounted: string | undefined;
beforeEach(() => (sandbox = new Sandbox()));
afterEach(() => {
  if (mounted) Bun.spawnSync(["umount", "-l", mounted]);
  mounted = undefined;
  sandbox.cleanup();
});

/// A small tmpfs of our own, so that "full" and "read-only" are real and harm nothing else.
function tmpfs(directory: string, sizeMiB: number): void {
  mkdirSync(directory, { recursive: true });
  const result = Bun.spawnSync(
    ["mount", "-t", "tmpfs", "-o", `size=${sizeMiB}m`, "tmpfs", directory],
  );
  if (result.exitCode !== 0) {
    throw new Error(`these tests need root to mount a tmpfs: ${result.stderr}`);
  }
  mounted = directory;
}

const rounds = (running: Running) => running.lines().filter((line) => line.startsWith("ok")).length;

async function startWithGoodImage(ckptDir: string) {
  const { port } = await sandbox.coordinator(["-c", ckptDir]);
  const running = sandbox.spawn([
    DMTCP, "launch", "-p", String(port), "-c", ckptDir, program("memory_verify"), "16", "20",
  ]);
  await until(() => rounds(running) >= 2, { what: "the program to run" });
  expect(sandbox.run(["command", "-p", String(port), "--bcheckpoint"]).code).toBe(0);
  const image = findImage(ckptDir, "memory_verify")!;
  return { port: String(port), running, image, good: readFileSync(image) };
}

async function expectFailedCheckpointKeepsEverything(
  setup: Awaited<ReturnType<typeof startWithGoodImage>>,
  ckptDir: string,
  reason: RegExp,
) {
  const failed = sandbox.run(["command", "-p", setup.port, "--bcheckpoint"]);
  expect(failed.code).not.toBe(0);
  expect(failed.stderr).toMatch(/checkpoint failed/);
  expect(failed.stderr).toMatch(reason);
  const seen = rounds(setup.running);
  await until(() => rounds(setup.running) > seen + 2, { what: "the program to keep running" });
  expect(setup.running.child.exitCode).toBeNull();
  expect(readFileSync(setup.image).equals(setup.good)).toBe(true);
  expect(readdirSync(ckptDir).filter((name) => name.endsWith(".tmp"))).toEqual([]);
  expect(sandbox.run(["inspect", setup.image]).code).toBe(0);
  // The survivor restarts.
  setup.running.child.kill("SIGKILL");
  await setup.running.exited();
  await until(() => sandbox.status(Number(setup.port)).peers === 0);
  const restarted = sandbox.spawn([DMTCP, "restart", "-p", setup.port, setup.image]);
  await until(() => rounds(restarted) >= 2, { what: "the previous image to restart" });
  expect(restarted.stdout).not.toContain("CORRUPT");
}

describe("a failed checkpoint", () => {
  test("on a full disk keeps the previous image and the program", async () => {
    const ckptDir = sandbox.path("small");
    tmpfs(ckptDir, 40);
    const setup = await startWithGoodImage(ckptDir);
    writeFileSync(`${ckptDir}/filler`, new Uint8Array(20 * 1024 * 1024));
    await expectFailedCheckpointKeepsEverything(setup, ckptDir, /No space|ENOSPC|space/i);
  });

  test("into a directory made read-only keeps the previous image and the program", async () => {
    const ckptDir = sandbox.path("readonly");
    tmpfs(ckptDir, 64);
    const setup = await startWithGoodImage(ckptDir);
    expect(Bun.spawnSync(["mount", "-o", "remount,ro", ckptDir]).exitCode).toBe(0);
    await expectFailedCheckpointKeepsEverything(setup, ckptDir, /read-only|EROFS/i);
  });

  test("past the file-size limit (ulimit -f) keeps the previous image and program", async () => {
    const ckptDir = sandbox.path("ckpt");
    mkdirSync(ckptDir);
    const setup = await startWithGoodImage(ckptDir);
    const limit = Bun.spawnSync(["prlimit", "--pid", String(setup.running.pid), "--fsize=1048576"]);
    expect(limit.exitCode).toBe(0);
    await expectFailedCheckpointKeepsEverything(setup, ckptDir, /too large|EFBIG|size limit/i);
  });
});
