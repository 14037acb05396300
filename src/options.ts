// Arguments and environment are validated here, once, by valibot schemas that turn strings into
// typed values. Each function returns plain options or throws a UsageError naming the value.
import { isAbsolute, resolve } from "node:path";
import * as v from "valibot";
import type { ParsedArgv } from "./args";
import { UsageError } from "./errors";

export type Env = Record<string, string | undefined>;

export const DEFAULT_PORT = 7779;
export const DEFAULT_HOST = "127.0.0.1";
const SIGNAL_MAX = 64;
/// SIGKILL and SIGSTOP cannot be caught; glibc keeps 32 and 33 for thread cancellation and setxid.
const UNCATCHABLE_SIGNALS = new Map([
  [9, "SIGKILL cannot be caught"],
  [19, "SIGSTOP cannot be caught"],
  [32, "glibc reserves signal 32 for itself"],
  [33, "glibc reserves signal 33 for itself"],
]);

const integer = (what: string, min: number, max: number) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(/^-?\d+$/, `${what} must be a whole number`),
    v.transform(Number),
    v.minValue(min, `${what} must be at least ${min}`),
    v.maxValue(max, `${what} must be at most ${max}`),
  );

export const schemas = {
  port: integer("a port", 0, 65535),
  intervalS: integer("an interval in seconds", 0, 2 ** 31 - 1),
  timeoutS: integer("a timeout in seconds", 0, 2 ** 31 - 1),
  signal: v.pipe(
    integer("a signal number", 1, SIGNAL_MAX),
    v.check(
      (n) => !UNCATCHABLE_SIGNALS.has(n),
      (issue) =>
        `${UNCATCHABLE_SIGNALS.get(issue.input as number)}; choose another, such as 12 (SIGUSR2)`,
    ),
  ),
  quiet: integer("DMTCP_QUIET", 0, 2),
  boolean01: v.picklist(["0", "1"], "must be 0 or 1"),
  host: v.pipe(v.string(), v.trim(), v.nonEmpty("a host name cannot be empty")),
  path: v.pipe(v.string(), v.nonEmpty("a path cannot be empty")),
};

/// Validates `value` (from `source`, an option or variable name) or throws a UsageError.
export function check<T>(
  schema: v.GenericSchema<string, T>,
  value: string,
  source: string,
): T {
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  const reason = result.issues[0]?.message ?? "invalid value";
  throw new UsageError(`invalid value '${value}' for ${source}: ${reason}`);
}

/// The option's value, else the first environment variable set, else undefined.
export function pick(
  parsed: ParsedArgv,
  name: string,
  env: Env,
  variables: string[],
): { value: string; source: string } | undefined {
  const given = parsed.values[name];
  if (typeof given === "string") return { value: given, source: `--${name}` };
  for (const variable of variables) {
    const value = env[variable];
    if (value !== undefined && value !== "") return { value, source: variable };
  }
  return undefined;
}

export interface CoordinatorTarget {
  host: string;
  port: number;
  /// True when the user chose the port (option or variable), as DMTCP distinguishes.
  portGiven: boolean;
  mode: "any" | "join" | "new";
  portFile: string | undefined;
}

export function coordinatorTarget(parsed: ParsedArgv, env: Env): CoordinatorTarget {
  const host = pick(parsed, "coord-host", env, ["DMTCP_COORD_HOST", "DMTCP_HOST"]);
  const port = pick(parsed, "coord-port", env, ["DMTCP_COORD_PORT", "DMTCP_PORT"]);
  const modes = (["join-coordinator", "new-coordinator", "any-coordinator"] as const).filter(
    (name) => parsed.values[name] === true,
  );
  if (modes.length > 1) {
    throw new UsageError(`choose one of --${modes.join(", --")}`);
  }
  const mode =
    modes[0] === "join-coordinator" ? "join" : modes[0] === "new-coordinator" ? "new" : "any";
  const portFile = pick(parsed, "port-file", env, []);
  return {
    host: host ? check(schemas.host, host.value, host.source) : DEFAULT_HOST,
    port: port ? check(schemas.port, port.value, port.source) : DEFAULT_PORT,
    portGiven: port !== undefined,
    mode,
    portFile: portFile ? resolve(portFile.value) : undefined,
  };
}

export function intervalS(parsed: ParsedArgv, env: Env): number | undefined {
  const interval = pick(parsed, "interval", env, ["DMTCP_CHECKPOINT_INTERVAL"]);
  return interval ? check(schemas.intervalS, interval.value, interval.source) : undefined;
}

/// -q counts up from DMTCP_QUIET, as DMTCP increments the variable's digit.
export function quietLevel(parsed: ParsedArgv, env: Env): number {
  const base = env.DMTCP_QUIET ? check(schemas.quiet, env.DMTCP_QUIET, "DMTCP_QUIET") : 0;
  return Math.min(2, base + (parsed.counts.quiet ?? 0));
}

export function directory(
  parsed: ParsedArgv,
  name: string,
  env: Env,
  variables: string[],
  fallback: string,
): string {
  const chosen = pick(parsed, name, env, variables);
  const value = chosen ? check(schemas.path, chosen.value, chosen.source) : fallback;
  return isAbsolute(value) ? value : resolve(value);
}

export function tmpDir(parsed: ParsedArgv, env: Env): string {
  return directory(parsed, "tmpdir", env, ["DMTCP_TMPDIR", "TMPDIR"], "/tmp");
}

export function ckptSignal(parsed: ParsedArgv, env: Env): number | undefined {
  const signal = pick(parsed, "ckpt-signal", env, ["DMTCP_SIGCKPT"]);
  return signal ? check(schemas.signal, signal.value, signal.source) : undefined;
}

/// --gzip/--no-gzip over DMTCP_GZIP (0 or 1); images are written uncompressed unless asked.
export function gzip(parsed: ParsedArgv, env: Env): boolean {
  if (parsed.values.gzip === true && parsed.values["no-gzip"] === true) {
    throw new UsageError("choose one of --gzip and --no-gzip");
  }
  if (parsed.values.gzip === true) return true;
  if (parsed.values["no-gzip"] === true) return false;
  if (env.DMTCP_GZIP) return check(schemas.boolean01, env.DMTCP_GZIP, "DMTCP_GZIP") === "1";
  return false;
}
