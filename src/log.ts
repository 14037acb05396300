// The only logger: tagged, on stderr, so stdout carries only data (--json, --status lines).
import { createConsola, LogLevels } from "consola";

export const log = createConsola({
  stdout: process.stderr,
  stderr: process.stderr,
  formatOptions: { date: false, compact: true },
}).withTag("dmtcp");

/// DMTCP_QUIET / -q: 1 hides notes, 2 hides warnings too; DMTCP_LOG_LEVEL=trace shows all.
export function setQuiet(quiet: number, env: Record<string, string | undefined>): void {
  if (env.DMTCP_LOG_LEVEL === "trace" || env.DMTCP_LOG_LEVEL === "3") {
    log.level = LogLevels.trace;
  } else if (quiet >= 2) {
    log.level = LogLevels.error;
  } else if (quiet === 1) {
    log.level = LogLevels.warn;
  } else {
    log.level = LogLevels.info;
  }
}
