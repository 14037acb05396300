// Where a coordinator's secret token lives, so that the same user's `dmtcp command`,
// `dmtcp launch --join-coordinator` and `dmtcp restart` find it by host and port alone, while
// other users on the node cannot read it (DESIGN.md, "Coordinator access").
import {
  chmodSync, closeSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync,
  writeSync,
} from "node:fs";
import { hostname, userInfo } from "node:os";
import { join } from "node:path";
import { TOKEN_SIZE } from "../format/protocol";

export type Env = Record<string, string | undefined>;

/// The token directory exists but another user could read or replace what is in it.
export class TokenDirectoryUnsafe extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`${path} is not a safe place for coordinator tokens: ${reason}`);
    this.name = "TokenDirectoryUnsafe";
  }
}

/// A token from DMTCP_COORD_TOKEN or a token file is not 32 hexadecimal digits.
export class TokenInvalid extends Error {
  constructor(readonly source: string) {
    super(`${source} does not hold a coordinator token (32 hexadecimal digits)`);
    this.name = "TokenInvalid";
  }
}

const TOKEN_HEX = /^[0-9a-fA-F]{32}$/;

/// The user's private directory for tokens, created 0700 if missing; throws
/// TokenDirectoryUnsafe when it belongs to someone else or others may enter it.
export function tokenDirectory(env: Env): string {
  const directory = tokenDirectoryPath(env);
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  checkPrivate(directory);
  return directory;
}

function tokenDirectoryPath(env: Env): string {
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, "dmtcp");
  const base = env.DMTCP_TMPDIR || env.TMPDIR || "/tmp";
  return join(base, `dmtcp-${userName(env)}@${hostname()}`);
}

function userName(env: Env): string {
  try {
    return userInfo().username;
  } catch {
    // A uid missing from the password database (containers) still needs a stable name.
    return env.USER || String(process.getuid?.() ?? "unknown");
  }
}

/// lstat, not stat: a symbolic link planted by another user must not redirect our tokens.
function checkPrivate(directory: string): void {
  const stats = lstatSync(directory);
  if (!stats.isDirectory()) throw new TokenDirectoryUnsafe(directory, "not a directory");
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid) {
    throw new TokenDirectoryUnsafe(directory, `owned by uid ${stats.uid}, not ${uid}`);
  }
  if ((stats.mode & 0o077) !== 0) {
    const mode = (stats.mode & 0o777).toString(8);
    throw new TokenDirectoryUnsafe(directory, `mode ${mode} lets others in (want 700)`);
  }
}

/// "localhost" for every name of this machine's loopback or of the machine itself, so that
/// `--coord-host 127.0.0.1` and the default "localhost" find the same file.
export function canonicalHost(host: string): string {
  const lower = host.toLowerCase();
  if (lower === "localhost" || lower === "::1" || /^127\.\d+\.\d+\.\d+$/.test(lower)) {
    return "localhost";
  }
  if (lower === hostname().toLowerCase()) return "localhost";
  return host;
}

export function tokenPath(env: Env, host: string, port: number): string {
  return join(tokenDirectory(env), `coordinator-${canonicalHost(host)}-${port}.token`);
}

export function newToken(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(TOKEN_SIZE));
}

export function tokenToHex(token: Uint8Array): string {
  return Buffer.from(token).toString("hex");
}

/// Writes to a private temporary file, then renames it over `path`, so that a reader never
/// sees half a token.
export function writeToken(path: string, token: Uint8Array): void {
  if (token.length !== TOKEN_SIZE) throw new RangeError("token must be 16 bytes");
  const temporary = `${path}.${process.pid}.tmp`;
  const fd = openSync(temporary, "w", 0o600);
  try {
    // The mode given to open is filtered by the umask; set it exactly.
    chmodSync(temporary, 0o600);
    writeSync(fd, tokenToHex(token));
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

/// DMTCP_COORD_TOKEN when set, else the token file for host and port; undefined when there
/// is neither. Throws TokenInvalid when what is there is not a token.
export function readToken(env: Env, host: string, port: number): Uint8Array | undefined {
  const fromEnv = env.DMTCP_COORD_TOKEN;
  if (fromEnv !== undefined && fromEnv !== "") return parseToken(fromEnv, "DMTCP_COORD_TOKEN");
  const path = tokenPath(env, host, port);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  return parseToken(text.trim(), path);
}

function parseToken(text: string, source: string): Uint8Array {
  if (!TOKEN_HEX.test(text)) throw new TokenInvalid(source);
  return new Uint8Array(Buffer.from(text, "hex"));
}

/// Removes a token file; one already gone is fine (two coordinators' cleanups may race).
export function removeToken(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}
