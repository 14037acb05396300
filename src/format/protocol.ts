// Mirror of core/format/protocol.zig, the one definition of the coordinator wire protocol.
// test/unit/format-mirror.test.ts checks this file against `zig build format-manifest`, and
// test/unit/protocol.test.ts against the byte vectors in test/vectors/protocol.json.

export const MAGIC = 0x50544d44;
export const VERSION = 1;
export const HEADER_SIZE = 80;
export const TOKEN_SIZE = 16;
export const PAYLOAD_SIZE_MAX = 1 << 20;
export const WORKER_ID_FIRST = 40000;
export const WORKER_ID_STEP = 1000;
export const INTERVAL_UNCHANGED = -1;

export const Kind = {
  hello_worker: 1,
  hello_restart: 2,
  hello_command: 3,
  accept: 4,
  reject: 5,
  command_result: 6,
  worker_info: 7,
  checkpoint: 8,
  barrier: 9,
  barrier_released: 10,
  image_written: 11,
  resuming: 12,
  kill: 13,
} as const;

export const WorkerState = {
  unknown: 0,
  running: 1,
  presuspend: 2,
  suspended: 3,
  checkpointing: 4,
  checkpointed: 5,
  restarting: 6,
} as const;

export const Command = {
  none: 0,
  status: 1,
  list: 2,
  checkpoint: 3,
  blocking_checkpoint: 4,
  kill_after_checkpoint: 5,
  interval: 6,
  kill: 7,
  quit: 8,
} as const;

export const Status = {
  success: 0,
  invalid_command: -1,
  not_running: -2,
  bad_token: -4,
  wrong_computation: -5,
  bad_message: -6,
  checkpoint_failed: -7,
} as const;

export const Barrier = {
  none: 0,
  suspended: 1,
  checkpointed: 2,
  written: 3,
  restarted: 4,
} as const;

export const Arch = {
  unknown: 0,
  x86_64: 1,
  i386: 2,
  aarch64: 3,
  armv7: 4,
} as const;

export const Flags = { exit_after_checkpoint: 1, running: 2, spare: 4 } as const;

export type KindName = keyof typeof Kind;

export interface Header {
  kind: number;
  payload_size: number;
  real_pid: number;
  worker_id: number;
  generation: number;
  computation_id: bigint;
  peer_count: number;
  interval_s: number;
  state: number;
  command: number;
  status: number;
  barrier: number;
  arch: number;
  flags: number;
  token: Uint8Array;
}

type FieldType = "u16" | "i16" | "u32" | "i32" | "u64" | "token";

/// Every field with its offset, as in the Zig extern struct (checked by the mirror test).
export const FIELDS: ReadonlyArray<readonly [string, number, FieldType]> = [
  ["magic", 0, "u32"],
  ["version", 4, "u16"],
  ["kind", 6, "u16"],
  ["payload_size", 8, "u32"],
  ["real_pid", 12, "u32"],
  ["worker_id", 16, "u32"],
  ["generation", 20, "u32"],
  ["computation_id", 24, "u64"],
  ["peer_count", 32, "u32"],
  ["interval_s", 36, "i32"],
  ["state", 40, "u16"],
  ["command", 42, "u16"],
  ["status", 44, "i16"],
  ["barrier", 46, "u16"],
  ["arch", 48, "u16"],
  ["reserved0", 50, "u16"],
  ["flags", 52, "u32"],
  ["reserved1", 56, "u64"],
  ["token", 64, "token"],
];

export const FIELD_SIZES: Record<FieldType, number> = {
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  u64: 8,
  token: TOKEN_SIZE,
};

export function header(fields: Partial<Header> & { kind: number }): Header {
  return {
    payload_size: 0,
    real_pid: 0,
    worker_id: 0,
    generation: 0,
    computation_id: 0n,
    peer_count: 0,
    interval_s: INTERVAL_UNCHANGED,
    state: WorkerState.unknown,
    command: Command.none,
    status: Status.success,
    barrier: Barrier.none,
    arch: Arch.unknown,
    flags: 0,
    token: new Uint8Array(TOKEN_SIZE),
    ...fields,
  };
}

export function encode(message: Header, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (payload.length > PAYLOAD_SIZE_MAX) throw new RangeError("payload too large");
  if (message.token.length !== TOKEN_SIZE) throw new RangeError("token must be 16 bytes");
  const bytes = new Uint8Array(HEADER_SIZE + payload.length);
  const view = new DataView(bytes.buffer);
  const values: Record<string, number | bigint | Uint8Array> = {
    ...message,
    magic: MAGIC,
    version: VERSION,
    payload_size: payload.length,
    reserved0: 0,
    reserved1: 0n,
  };
  for (const [name, offset, type] of FIELDS) {
    const value = values[name]!;
    switch (type) {
      case "u16": view.setUint16(offset, value as number, true); break;
      case "i16": view.setInt16(offset, value as number, true); break;
      case "u32": view.setUint32(offset, value as number, true); break;
      case "i32": view.setInt32(offset, value as number, true); break;
      case "u64": view.setBigUint64(offset, value as bigint, true); break;
      case "token": bytes.set(value as Uint8Array, offset); break;
    }
  }
  bytes.set(payload, HEADER_SIZE);
  return bytes;
}

export class ProtocolError extends Error {}

const enumValues = (table: Record<string, number>) => new Set(Object.values(table));
const KINDS = enumValues(Kind);
const CHECKED: ReadonlyArray<readonly [keyof Header, Set<number>]> = [
  ["kind", KINDS],
  ["state", enumValues(WorkerState)],
  ["command", enumValues(Command)],
  ["status", enumValues(Status)],
  ["barrier", enumValues(Barrier)],
  ["arch", enumValues(Arch)],
];

/// Decodes and validates one header, as protocol.zig's `decode` does.
export function decode(bytes: Uint8Array): Header {
  if (bytes.length < HEADER_SIZE) throw new ProtocolError("short header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  if (view.getUint32(0, true) !== MAGIC) throw new ProtocolError("bad magic");
  if (view.getUint16(4, true) !== VERSION) throw new ProtocolError("bad version");
  const out: Record<string, number | bigint | Uint8Array> = {};
  for (const [name, offset, type] of FIELDS) {
    switch (type) {
      case "u16": out[name] = view.getUint16(offset, true); break;
      case "i16": out[name] = view.getInt16(offset, true); break;
      case "u32": out[name] = view.getUint32(offset, true); break;
      case "i32": out[name] = view.getInt32(offset, true); break;
      case "u64": out[name] = view.getBigUint64(offset, true); break;
      case "token": out[name] = bytes.slice(offset, offset + TOKEN_SIZE); break;
    }
  }
  delete out.magic;
  delete out.version;
  delete out.reserved0;
  delete out.reserved1;
  const message = out as unknown as Header;
  if (message.payload_size > PAYLOAD_SIZE_MAX) throw new ProtocolError("payload too large");
  for (const [name, allowed] of CHECKED) {
    if (!allowed.has(message[name] as number)) throw new ProtocolError(`bad ${name}`);
  }
  return message;
}

export interface Frame {
  header: Header;
  payload: Uint8Array;
}

/// Splits a byte stream into frames; throws ProtocolError on the first invalid header.
export class FrameReader {
  private buffer = new Uint8Array(0);

  push(chunk: Uint8Array): Frame[] {
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer);
    joined.set(chunk, this.buffer.length);
    this.buffer = joined;
    const frames: Frame[] = [];
    while (this.buffer.length >= HEADER_SIZE) {
      const message = decode(this.buffer);
      const total = HEADER_SIZE + message.payload_size;
      if (this.buffer.length < total) break;
      frames.push({ header: message, payload: this.buffer.slice(HEADER_SIZE, total) });
      this.buffer = this.buffer.slice(total);
    }
    return frames;
  }
}

/// "a\0b\0" → ["a", "b"]
export function splitStrings(payload: Uint8Array): string[] {
  const text = new TextDecoder().decode(payload);
  const parts = text.split("\0");
  if (parts.at(-1) === "") parts.pop();
  return parts;
}

export function joinStrings(parts: string[]): Uint8Array {
  return new TextEncoder().encode(parts.map((part) => `${part}\0`).join(""));
}

export function kindName(kind: number): KindName | undefined {
  return (Object.keys(Kind) as KindName[]).find((name) => Kind[name] === kind);
}
