import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import {
  restartScriptName, restartScriptText, shellQuote, type RestartScript,
} from "../../src/coordinator/script";

/// Found once: a test below runs the script with an empty PATH.
const BASH = Bun.which("bash") ?? "/bin/bash";
const scratch = mkdtempSync(join(tmpdir(), "dmtcp-script-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/// Stands in for `dmtcp restart`: prints each argument it got on its own line.
const FAKE_RESTART = join(scratch, "fake dmtcp");
writeFileSync(FAKE_RESTART, '#!/bin/sh\nfor arg in "$@"; do echo "$arg"; done\n');
chmodSync(FAKE_RESTART, 0o755);

function script(overrides: Partial<RestartScript> = {}): RestartScript {
  return {
    ckptDir: scratch,
    computationId: "5a3c0012345",
    generation: 2,
    coordHost: "node1",
    coordPort: 7779,
    intervalS: 0,
    hosts: [{ host: "node1", images: ["/ckpt/ckpt_a.dmtcp", "/ckpt/it's b.dmtcp"] }],
    ...overrides,
  };
}

/// Writes the script, runs it with bash, and returns what the fake restart printed.
function run(text: string, args: string[] = [], env: Record<string, string> = {}) {
  const path = join(scratch, "restart.sh");
  writeFileSync(path, text, { mode: 0o700 });
  const result = Bun.spawnSync([BASH, path, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
  });
  return {
    code: result.exitCode,
    lines: result.stdout.toString().split("\n").slice(0, -1),
    stderr: result.stderr.toString(),
  };
}

describe("coordinator restart script", () => {
  test("its name carries the computation id", () => {
    expect(restartScriptName("abc")).toBe("dmtcp_restart_script_abc.sh");
  });

  test("single quotes survive quoting", () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  test("it holds DMTCP's overridable defaults and no token", () => {
    const text = restartScriptText(script({ intervalS: 30 }), [FAKE_RESTART, "restart"]);
    expect(text.startsWith("#!/bin/bash\n")).toBe(true);
    expect(text).toContain("coord_host=${DMTCP_COORD_HOST:-'node1'}\n");
    expect(text).toContain("coord_port=${DMTCP_COORD_PORT:-7779}\n");
    expect(text).toContain("checkpoint_interval=${DMTCP_CHECKPOINT_INTERVAL:-30}\n");
    expect(text).toContain(`dmt_rstr_cmd=(${shellQuote(FAKE_RESTART)} 'restart')\n`);
    expect(text.toLowerCase()).not.toContain("token=");
  });

  test("a single host execs the restart command with every image", () => {
    const text = restartScriptText(script(), [FAKE_RESTART, "restart"]);
    const { code, lines } = run(text);
    expect(code).toBe(0);
    expect(lines).toEqual([
      "restart", "--coord-host", "node1", "--coord-port", "7779", "--interval", "0",
      "/ckpt/ckpt_a.dmtcp", "/ckpt/it's b.dmtcp",
    ]);
  });

  test("options and environment override the defaults; --restartdir moves the images", () => {
    const text = restartScriptText(script(), [FAKE_RESTART, "restart"]);
    const { lines } = run(text, ["-p", "8000", "--interval", "5", "-d", "/moved"], {
      DMTCP_COORD_HOST: "elsewhere",
    });
    expect(lines).toEqual([
      "restart", "--coord-host", "elsewhere", "--coord-port", "8000", "--interval", "5",
      "/moved/ckpt_a.dmtcp", "/moved/it's b.dmtcp",
    ]);
  });

  test("--help prints the usage; a bad option or a missing value fails", () => {
    const text = restartScriptText(script(), [FAKE_RESTART, "restart"]);
    const help = run(text, ["--help"]);
    expect([help.code, help.lines[0]]).toEqual([0, "Usage: dmtcp_restart_script.sh [OPTIONS]"]);
    expect(run(text, ["--bogus"]).code).toBe(1);
    const missing = run(text, ["--coord-port"]);
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining("needs a value")]);
  });

  test("without a usable restart command it falls back to dmtcp_restart on PATH", () => {
    const text = restartScriptText(script(), [join(scratch, "missing"), "restart"]);
    const { code, stderr } = run(text, [], { PATH: "/nonexistent" });
    expect(code).toBe(1);
    expect(stderr).toContain("no dmtcp_restart on PATH");
  });

  test("images of this host under several names are restarted locally, joining", () => {
    const hosts = [
      { host: "localhost", images: ["/a.dmtcp"] },
      { host: hostname(), images: ["/b.dmtcp"] },
    ];
    const text = restartScriptText(script({ hosts }), [FAKE_RESTART]);
    expect(text).toContain("# Number of hosts in the computation = 2\n");
    const { code, lines } = run(text);
    expect(code).toBe(0);
    expect(lines).toEqual([
      "--coord-host", "node1", "--coord-port", "7779", "--join-coordinator", "--interval", "0",
      "/a.dmtcp", "/b.dmtcp",
    ]);
  });

  test("another host's images go to ssh, in the background", () => {
    const hosts = [
      { host: "localhost", images: ["/a.dmtcp"] },
      { host: "far-away", images: ["/c d.dmtcp"] },
    ];
    const text = restartScriptText(script({ hosts }), [FAKE_RESTART, "restart"]);
    expect(text).toContain("restart_host 'far-away' '/c d.dmtcp'\n");
    expect(text).toContain('ssh "$host" "$remote" &\n');
  });
});
