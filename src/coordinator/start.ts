// Starts `dmtcp coordinator` as a background process (for `launch` on demand and for
// `coordinator --daemon`): Bun never forks, so we spawn ourselves, detached, and wait until the
// new coordinator has written its port file, which it does only once it listens.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoordinatorError } from "../errors";

type Env = Record<string, string | undefined>;

const START_TIMEOUT_MS = 10000;
const START_POLL_MS = 5;

export async function startCoordinatorProcess(
  args: string[],
  env: Env,
  logFile?: string,
): Promise<number> {
  const scratch = mkdtempSync(join(env.DMTCP_TMPDIR || env.TMPDIR || tmpdir(), "dmtcp-start-"));
  const portFile = join(scratch, "port");
  try {
    const output = logFile ? openSync(logFile, "a", 0o600) : "ignore";
    const child = spawn(process.execPath, ["coordinator", ...args, "--port-file", portFile], {
      detached: true,
      stdio: ["ignore", output, output],
      env: env as Record<string, string>,
    });
    let exitCode: number | null = null;
    child.on("exit", (code) => (exitCode = code ?? 1));
    child.unref();
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (existsSync(portFile)) return Number(readFileSync(portFile, "utf8"));
      if (exitCode !== null) break;
      await Bun.sleep(START_POLL_MS);
    }
    throw new CoordinatorError(
      exitCode !== null
        ? "the coordinator could not start (is the port in use?)"
        : "the coordinator did not start in time",
      "Choose another port with -p, or -p 0 for any free port.",
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
