// Every failure a user can cause has a class here; src/cli.ts maps each to one message that
// names the problem and what to do, and to its exit code. A stack trace is for debug level only.

export class DmtcpError extends Error {
  /// What the user can do about it, printed after the message.
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = new.target.name;
    this.hint = hint;
  }
}

/// Bad command line or environment: unknown option, missing or malformed value.
export class UsageError extends DmtcpError {}

/// The program to launch cannot be run under dmtcp (missing, static, setuid, foreign).
export class ProgramError extends DmtcpError {}

/// No coordinator answers at the address, or it refused us.
export class CoordinatorError extends DmtcpError {}

/// A file we must write or read (cache, port file, image) cannot be used.
export class FileError extends DmtcpError {}

/// DMTCP's DMTCP_FAIL_RC: the failure exit code, 99 unless the variable sets a non-zero one.
export function failCode(env: Record<string, string | undefined>): number {
  const text = env.DMTCP_FAIL_RC;
  if (text === undefined || !/^\d+$/.test(text)) return 99;
  const code = Number(text);
  return code > 0 && code < 256 ? code : 99;
}

export function describe(error: unknown): string {
  if (error instanceof DmtcpError) {
    return error.hint ? `${error.message}\n  ${error.hint}` : error.message;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

/// An image that restart or inspect must refuse: missing, truncated, corrupt or foreign.
export class ImageInvalid extends DmtcpError {}
