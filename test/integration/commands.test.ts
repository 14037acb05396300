// The ways to ask for a checkpoint: --checkpoint (returns at once), --bcheckpoint (returns when
// the images are on disk), --kcheckpoint (then the workers end), and interval checkpoints set
// by launch -i, coordinator -i, command --interval and DMTCP_CHECKPOINT_INTERVAL.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { DMTCP, findImage, numbers, program, Sandbox, until } from "./harness";

let sandbox: Sandbox;
let ckptDir: string;
beforeEach(() => {
  sandbox = new Sandbox();
  ckptDir = sandbox.path("ckpt");
  mkdirSync(ckptDir);
});
afterEach(() => sandbox.cleanup());

const imageTime = () => {
  const image = findImage(ckptDir, "counter");
  return image ? statSync(image).mtimeMs : 0;
};

async function restartAndCheck(port: string, atLeast: number): Promise<void> {
  const image = findImage(ckptDir, "counter")!;
  await until(() => sandbox.status(Number(port)).peers === 0, { what: "the workers to be gone" });
  const restarted = sandbox.spawn([DMTCP, "restart", "-p", port, image]);
  await until(() => numbers(restarted).length >= 2, { what: "the restarted counter" });
  expect(numbers(restarted)[0]!).toBeGreaterThan(atLeast);
  restarted.child.kill("SIGKILL");
  await restarted.exited();
}

describe("checkpoint commands", () => {
  test("--checkpoint returns at once and the image appears; the program goes on", async () => {
    const { port } = await sandbox.coordinator(["-c", ckptDir]);
    const counter = sandbox.spawn(
      [DMTCP, "launch", "-p", String(port), "-c", ckptDir, program("counter"), "10"],
    );
    await until(() => numbers(counter).length >= 3);
    for (let round = 1; round <= 2; round++) {
      const before = imageTime();
      const result = sandbox.run(["command", "-p", String(port), "--checkpoint"]);
      expect(result.code).toBe(0);
      await until(() => imageTime() > before && sandbox.status(port).running, {
        what: `image ${round} and the resumed worker`,
      });
      const seen = numbers(counter).length;
      await until(() => numbers(counter).length > seen + 2, { what: "the program to go on" });
    }
    const atKill = numbers(counter).at(-1)!;
    counter.child.kill("SIGKILL");
    await counter.exited();
    await restartAndCheck(String(port), 2);
    expect(atKill).toBeGreaterThan(2);
  });

  test("--kcheckpoint writes the images, then ends the workers; they restart", async () => {
    const { port } = await sandbox.coordinator(["-c", ckptDir]);
    let counter = sandbox.spawn(
      [DMTCP, "launch", "-p", String(port), "-c", ckptDir, program("counter"), "10"],
    );
    for (let round = 0; round < 2; round++) {
      await until(() => numbers(counter).length >= 3);
      const result = sandbox.run(["command", "-p", String(port), "--kcheckpoint"]);
      expect(result.code).toBe(0);
      expect(await counter.exited()).toBe(0);
      const last = numbers(counter).at(-1)!;
      await until(() => sandbox.status(port).peers === 0);
      counter = sandbox.spawn(
        [DMTCP, "restart", "-p", String(port), findImage(ckptDir, "counter")!],
      );
      await until(() => numbers(counter).length >= 1);
      expect(numbers(counter)[0]!).toBeLessThanOrEqual(last + 1);
      expect(numbers(counter)[0]!).toBeGreaterThan(1);
    }
  });

  test("--checkpoint with no workers is refused as DMTCP refuses it", async () => {
    const { port } = await sandbox.coordinator();
    const result = sandbox.run(["command", "-p", String(port), "--checkpoint"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Error, computation not in running state.");
    const json = sandbox.run(["command", "-p", String(port), "--json", "--checkpoint"]);
    expect(JSON.parse(json.stdout).command_status).toBe("DMT_COORD_NOT_RUNNING");
  });
});

describe("interval checkpoints", () => {
  async function expectIntervalImages(port: number, counterArgs: string[] = [], env = {}) {
    const counter = sandbox.spawn(
      [
        DMTCP, "launch", "-p", String(port), "-c", ckptDir,
        ...counterArgs, program("counter"), "10",
      ],
      { env },
    );
    await until(() => imageTime() > 0, { timeoutMs: 8000, what: "the first interval image" });
    const first = imageTime();
    await until(() => imageTime() > first, { timeoutMs: 8000, what: "the second interval image" });
    const atKill = numbers(counter).at(-1)!;
    counter.child.kill("SIGKILL");
    await counter.exited();
    expect(atKill).toBeGreaterThan(10);
    await restartAndCheck(String(port), 2);
  }

  test("set by dmtcp launch -i", async () => {
    const { port } = await sandbox.coordinator(["-c", ckptDir]);
    await expectIntervalImages(port, ["-i", "1"]);
  });

  test("set by DMTCP_CHECKPOINT_INTERVAL", async () => {
    const { port } = await sandbox.coordinator(["-c", ckptDir]);
    await expectIntervalImages(port, [], { DMTCP_CHECKPOINT_INTERVAL: "1" });
  });

  test("set by dmtcp coordinator -i", async () => {
    const { port } = await sandbox.coordinator(["-c", ckptDir, "-i", "1"]);
    expect(sandbox.run(["command", "-p", String(port), "-s"]).stdout).toContain("CKPT_INTERVAL=1");
    await expectIntervalImages(port);
  });

  test("set by dmtcp command --interval", async () => {
    const { port } = await sandbox.coordinator(["-c", ckptDir]);
    expect(sandbox.run(["command", "-p", String(port), "--interval", "1"]).code).toBe(0);
    await expectIntervalImages(port);
    expect(existsSync(`${ckptDir}/dmtcp_restart_script.sh`)).toBe(true);
  });
});
