// Restart refuses a truncated, corrupt, foreign or missing image before touching anything:
// exit 99, one message naming the file and the problem, no coordinator started.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  copyFileSync, existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { DMTCP, findImage, numbers, program, Sandbox, until } from "./harness";

let sandbox: Sandbox;
let image: string;

beforeAll(async () => {
  sandbox = new Sandbox();
  const ckptDir = sandbox.path("ckpt");
  mkdirSync(ckptDir);
  const { port } = await sandbox.coordinator(["-c", ckptDir]);
  const counter = sandbox.spawn(
    [DMTCP, "launch", "-p", String(port), "-c", ckptDir, program("counter"), "10"],
  );
  await until(() => numbers(counter).length >= 2);
  expect(sandbox.run(["command", "-p", String(port), "--bcheckpoint"]).code).toBe(0);
  image = findImage(ckptDir, "counter")!;
  sandbox.run(["command", "-p", String(port), "--quit"]);
});
afterAll(() => sandbox.cleanup());

let copies = 0;
function copyOfImage(): string {
  const copy = sandbox.path(`copy-${copies++}.dmtcp`);
  copyFileSync(image, copy);
  return copy;
}

function refuse(path: string, message: RegExp): void {
  const portFile = sandbox.path(`refused-port-${copies}`);
  const before = existsSync(path) ? readFileSync(path) : undefined;
  const result = sandbox.run(["restart", "-p", "0", "--port-file", portFile, path]);
  expect({ path, code: result.code }).toEqual({ path, code: 99 });
  expect(result.stderr).toMatch(message);
  expect(result.stderr).toContain(path);
  expect(result.stderr).not.toContain("    at ");
  expect(existsSync(portFile)).toBe(false);
  if (before) expect(readFileSync(path).equals(before)).toBe(true);
}

describe("restart refuses bad images", () => {
  test("an image cut at any of several offsets is truncated", () => {
    const size = readFileSync(image).length;
    for (const cut of [100, 4095, 4096, 4096 + 40, Math.floor(size / 2), size - 1]) {
      const copy = copyOfImage();
      truncateSync(copy, cut);
      refuse(copy, /truncated/);
    }
  });

  test("a flipped byte in the header, a record or the memory is corrupt", () => {
    const size = readFileSync(image).length;
    for (const offset of [200, 4096 + 20, size - 100]) {
      const copy = copyOfImage();
      const bytes = readFileSync(copy);
      bytes[offset] ^= 0x40;
      writeFileSync(copy, bytes);
      refuse(copy, /corrupt/);
    }
  });

  test("an image of another architecture is refused", () => {
    const copy = copyOfImage();
    const bytes = readFileSync(copy);
    const view = new DataView(bytes.buffer, bytes.byteOffset, 4096);
    view.setUint16(10, 3, true); // aarch64
    view.setBigUint64(4088, BigInt(Bun.hash.xxHash64(bytes.subarray(0, 4088), 0n)), true);
    writeFileSync(copy, bytes);
    refuse(copy, /aarch64 process; this dmtcp restores x86_64 and i386 images/);
  });

  test("a file that is not an image, an empty file and a missing file are refused", () => {
    const text = sandbox.path("notes.dmtcp");
    writeFileSync(text, "these are not the pages you are looking for\n".repeat(200));
    refuse(text, /not a dmtcp checkpoint image/);
    const empty = sandbox.path("empty.dmtcp");
    writeFileSync(empty, "");
    refuse(empty, /empty/);
    refuse(join(sandbox.dir, "missing.dmtcp"), /no such image/);
  });

  test("inspect shows the regions and refuses the same bad images", () => {
    const result = sandbox.run(["inspect", image]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("program counter, x86_64 (64-bit)");
    expect(result.stdout).toMatch(/regions: \d+/);
    expect(result.stdout).toContain("[stack]");
    const json = JSON.parse(sandbox.run(["inspect", "--json", image]).stdout);
    expect(json.header.workerId).toBe(40000);
    const copy = copyOfImage();
    truncateSync(copy, 5000);
    const bad = sandbox.run(["inspect", copy]);
    expect(bad.code).toBe(99);
    expect(bad.stderr).toMatch(/truncated/);
  });
});
