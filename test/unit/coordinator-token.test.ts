import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import {
  canonicalHost, newToken, readToken, removeToken, TokenDirectoryUnsafe, TokenInvalid,
  tokenDirectory, tokenPath, writeToken,
} from "../../src/coordinator/token";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "dmtcp-token-test-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("coordinator token", () => {
  test("the directory is $XDG_RUNTIME_DIR/dmtcp, else one per user and host, mode 700", () => {
    const xdg = tokenDirectory({ XDG_RUNTIME_DIR: root });
    expect(xdg).toBe(join(root, "dmtcp"));
    expect(statSync(xdg).mode & 0o777).toBe(0o700);
    const fallback = tokenDirectory({ DMTCP_TMPDIR: root, TMPDIR: "/nonexistent" });
    expect(fallback.startsWith(join(root, "dmtcp-"))).toBe(true);
    expect(fallback.endsWith(`@${hostname()}`)).toBe(true);
  });

  test("a directory others may enter is refused", () => {
    mkdirSync(join(root, "dmtcp"));
    chmodSync(join(root, "dmtcp"), 0o755);
    expect(() => tokenDirectory({ XDG_RUNTIME_DIR: root })).toThrow(TokenDirectoryUnsafe);
  });

  test("every name of this machine maps to the same file", () => {
    for (const host of ["localhost", "127.0.0.1", "127.1.2.3", "::1", hostname()]) {
      expect(canonicalHost(host)).toBe("localhost");
    }
    expect(canonicalHost("node7")).toBe("node7");
    const env = { XDG_RUNTIME_DIR: root };
    expect(tokenPath(env, "127.0.0.1", 7779))
      .toBe(join(root, "dmtcp", "coordinator-localhost-7779.token"));
  });

  test("a written token reads back; the file is 32 hex digits, mode 600", () => {
    const env = { XDG_RUNTIME_DIR: root };
    const token = newToken();
    const path = tokenPath(env, "localhost", 1234);
    writeToken(path, token);
    expect(readFileSync(path, "utf8")).toMatch(/^[0-9a-f]{32}$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readToken(env, "127.0.0.1", 1234)).toEqual(token);
    removeToken(path);
    removeToken(path);
    expect(readToken(env, "localhost", 1234)).toBeUndefined();
  });

  test("DMTCP_COORD_TOKEN wins over the file and must be 32 hex digits", () => {
    const env = { XDG_RUNTIME_DIR: root, DMTCP_COORD_TOKEN: "00".repeat(15) + "ff" };
    const token = readToken(env, "localhost", 1)!;
    expect(token.length).toBe(16);
    expect(token[15]).toBe(0xff);
    expect(() => readToken({ ...env, DMTCP_COORD_TOKEN: "xyz" }, "localhost", 1))
      .toThrow(TokenInvalid);
  });

  test("new tokens are 16 random bytes", () => {
    expect(newToken().length).toBe(16);
    expect(newToken()).not.toEqual(newToken());
  });
});
