// Mirror of core/format/image.zig: reads and validates checkpoint images for `dmtcp restart`
// (which refuses a bad image before any process is replaced) and `dmtcp inspect`.
// test/unit/format-mirror.test.ts checks the layouts against `zig build format-manifest`.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { ImageInvalid } from "../errors";

export const IMAGE_MAGIC = 0x474d495043544d44n;
export const IMAGE_VERSION = 1;
export const HEADER_SIZE = 4096;
export const RECORD_HEADER_SIZE = 32;
export const BODY_SIZE_MAX = 64 * 1024;
export const DATA_SIZE_MAX = 64 * 1024 * 1024;

export const RecordTag = {
  process: 1, region: 2, thread: 3, descriptor: 4, signal_action: 5, pending_signal: 6, timer: 7,
  process_tree: 10, pipe: 11, socket: 12, file_description: 13, terminal: 14,
  pty: 15, event: 16, epoll: 17,
} as const;
export const TimerKind = { itimer_real: 1, itimer_virtual: 2, itimer_prof: 3, posix: 4 } as const;
export const Backing = {
  anonymous: 1, heap: 2, stack: 3, file: 4, vdso: 5, vvar: 6, vvar_vclock: 7,
} as const;
export const DescriptorKind = {
  regular: 1, directory: 2, dev_null: 3, inherit: 4, unsupported: 5, pipe: 6, socket: 7, pty: 8,
  device: 9, event: 10, epoll: 11,
} as const;
export const EventKind = { eventfd: 1, signalfd: 2, timerfd: 3 } as const;
export const PtyRole = { master: 1, slave: 2 } as const;
export const PipeEnd = { read: 1, write: 2 } as const;
export const SocketState = { connected: 1, listening: 2, other: 3 } as const;
export const ThreadRole = { main: 1, checkpoint: 2, other: 3 } as const;
export const RegionFlags = { shared: 0, contents_skipped: 1, deleted: 2 } as const;
export const ARCH_NAMES: Record<number, string> = {
  1: "x86_64",
  2: "i386",
  3: "aarch64",
  4: "armv7",
};

type FieldType = "u8" | "u16" | "u32" | "i32" | "u64" | `bytes${number}`;
type Layout = ReadonlyArray<readonly [string, number, FieldType]>;

/// Field offsets of each struct, as in the Zig extern structs (checked by the mirror test).
export const LAYOUTS: Record<string, Layout> = {
  Header: [
    ["magic", 0, "u64"], ["version", 8, "u16"], ["arch", 10, "u16"], ["elf_class", 12, "u8"],
    ["reserved0", 13, "bytes3"], ["page_size", 16, "u32"], ["header_size", 20, "u32"],
    ["record_count", 24, "u32"], ["worker_id", 28, "u32"], ["creation_time_ns", 32, "u64"],
    ["computation_id", 40, "u64"], ["generation", 48, "u32"], ["peer_count", 52, "u32"],
    ["real_pid", 56, "u32"], ["reserved2", 60, "u32"], ["image_size", 64, "u64"],
    ["records_checksum", 72, "u64"], ["restart_entry", 80, "u64"],
    ["restart_thread_pointer", 88, "u64"], ["program_name", 96, "bytes256"],
    ["kernel_release", 352, "bytes65"], ["reserved1", 417, "bytes3671"],
    ["header_checksum", 4088, "u64"],
  ],
  RecordHeader: [
    ["tag", 0, "u16"], ["layout", 2, "u16"], ["body_size", 4, "u32"], ["data_size", 8, "u64"],
    ["body_checksum", 16, "u64"], ["data_checksum", 24, "u64"],
  ],
  Process: [
    ["umask", 0, "u32"], ["checkpoint_signal", 4, "u32"], ["start_code", 8, "u64"],
    ["end_code", 16, "u64"], ["start_data", 24, "u64"], ["end_data", 32, "u64"],
    ["start_brk", 40, "u64"], ["brk", 48, "u64"], ["start_stack", 56, "u64"],
    ["arg_start", 64, "u64"], ["arg_end", 72, "u64"], ["env_start", 80, "u64"],
    ["env_end", 88, "u64"], ["comm", 96, "bytes16"], ["cwd_size", 112, "u32"],
    ["reserved", 116, "u32"],
  ],
  Region: [
    ["start", 0, "u64"], ["end", 8, "u64"], ["file_offset", 16, "u64"], ["page_count", 24, "u64"],
    ["protection", 32, "u32"], ["flags", 36, "u32"], ["backing", 40, "u16"],
    ["reserved", 42, "u16"], ["path_size", 44, "u32"], ["run_count", 48, "u32"],
    ["inode", 52, "u32"],
  ],
  Run: [["page_index", 0, "u64"], ["page_count", 8, "u64"]],
  Thread: [
    ["tid", 0, "u32"], ["role", 4, "u16"], ["reserved", 6, "u16"], ["thread_pointer", 8, "u64"],
    ["stack_pointer", 16, "u64"], ["instruction_pointer", 24, "u64"],
  ],
  Descriptor: [
    ["fd", 0, "i32"], ["kind", 4, "u16"], ["reserved", 6, "u16"], ["open_flags", 8, "u32"],
    ["fd_flags", 12, "u32"], ["offset", 16, "u64"], ["path_size", 24, "u32"],
    ["reserved1", 28, "u32"],
  ],
  SignalAction: [
    ["signal", 0, "u32"], ["reserved", 4, "u32"], ["handler", 8, "u64"], ["flags", 16, "u64"],
    ["restorer", 24, "u64"], ["mask", 32, "u64"],
  ],
  ProcessTree: [
    ["virtual_pid", 0, "u32"], ["virtual_ppid", 4, "u32"], ["virtual_pgid", 8, "u32"],
    ["virtual_sid", 12, "u32"], ["real_pid", 16, "u32"], ["zombie_count", 20, "u32"],
  ],
  Zombie: [["virtual_pid", 0, "u32"], ["wait_status", 4, "u32"]],
  Pipe: [
    ["fd", 0, "i32"], ["end", 4, "u16"], ["reserved", 6, "u16"], ["open_flags", 8, "u32"],
    ["fd_flags", 12, "u32"], ["inode", 16, "u64"], ["capacity", 24, "u32"],
    ["byte_count", 28, "u32"], ["path_size", 32, "u32"], ["reserved1", 36, "u32"],
  ],
  Socket: [
    ["fd", 0, "i32"], ["domain", 4, "u16"], ["type", 6, "u16"], ["open_flags", 8, "u32"],
    ["fd_flags", 12, "u32"], ["inode", 16, "u64"], ["peer_inode", 24, "u64"], ["state", 32, "u16"],
    ["reserved", 34, "u16"], ["backlog", 36, "u32"], ["byte_count", 40, "u32"],
    ["message_count", 44, "u32"], ["path_size", 48, "u32"], ["reserved1", 52, "u32"],
  ],
  FileDescription: [
    ["fd", 0, "i32"], ["owner_pid", 4, "u32"], ["owner_fd", 8, "i32"], ["open_flags", 12, "u32"],
    ["offset", 16, "u64"], ["path_size", 24, "u32"], ["reserved", 28, "u32"],
  ],
  Terminal: [
    ["fd", 0, "i32"], ["foreground", 4, "u32"], ["termios", 8, "bytes36"], ["rows", 44, "u16"],
    ["columns", 46, "u16"], ["x_pixels", 48, "u16"], ["y_pixels", 50, "u16"],
    ["pty", 52, "u32"],
  ],
  Pty: [
    ["fd", 0, "i32"], ["role", 4, "u16"], ["reserved", 6, "u16"], ["index", 8, "u32"],
    ["open_flags", 12, "u32"], ["fd_flags", 16, "u32"], ["output_size", 20, "u32"],
    ["termios", 24, "bytes36"], ["rows", 60, "u16"], ["columns", 62, "u16"],
    ["x_pixels", 64, "u16"], ["y_pixels", 66, "u16"], ["input_size", 68, "u32"],
  ],
  Event: [
    ["fd", 0, "i32"], ["kind", 4, "u16"], ["reserved", 6, "u16"], ["open_flags", 8, "u32"],
    ["fd_flags", 12, "u32"], ["value", 16, "u64"], ["detail", 24, "i32"], ["reserved1", 28, "u32"],
    ["remaining_ns", 32, "u64"], ["interval_ns", 40, "u64"],
  ],
  Epoll: [
    ["fd", 0, "i32"], ["entry_count", 4, "u32"], ["open_flags", 8, "u32"], ["fd_flags", 12, "u32"],
  ],
  EpollEntry: [["fd", 0, "i32"], ["events", 4, "u32"], ["data", 8, "u64"]],
  PendingSignal: [["tid", 0, "u32"], ["signal", 4, "u32"], ["info", 8, "bytes128"]],
  Timer: [
    ["kind", 0, "u16"], ["reserved", 2, "u16"], ["id", 4, "i32"], ["clock", 8, "i32"],
    ["notify", 12, "i32"], ["signal", 16, "u32"], ["tid", 20, "u32"], ["value", 24, "u64"],
    ["interval_ns", 32, "u64"], ["remaining_ns", 40, "u64"],
  ],
};

export const STRUCT_SIZES: Record<string, number> = {
  Header: 4096, RecordHeader: 32, Process: 120, Region: 56, Run: 16, Thread: 32, Descriptor: 32,
  SignalAction: 40, PendingSignal: 136, Timer: 48, ProcessTree: 24, Zombie: 8, Pipe: 40,
  Socket: 56, FileDescription: 32, Terminal: 56,
  Pty: 72, Event: 48, Epoll: 16, EpollEntry: 16,
};

export function fieldSize(type: FieldType): number {
  if (type.startsWith("bytes")) return Number(type.slice(5));
  return { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8 }[type as "u8"];
}

type Value = number | bigint | Uint8Array;

function decodeStruct(name: string, bytes: Uint8Array, at = 0): Record<string, Value> {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, STRUCT_SIZES[name]);
  const out: Record<string, Value> = {};
  for (const [field, offset, type] of LAYOUTS[name]!) {
    if (type === "u8") out[field] = view.getUint8(offset);
    else if (type === "u16") out[field] = view.getUint16(offset, true);
    else if (type === "u32") out[field] = view.getUint32(offset, true);
    else if (type === "i32") out[field] = view.getInt32(offset, true);
    else if (type === "u64") out[field] = view.getBigUint64(offset, true);
    else out[field] = bytes.subarray(at + offset, at + offset + fieldSize(type));
  }
  return out;
}

const text = (bytes: Value) => new TextDecoder().decode(bytes as Uint8Array).replace(/\0.*$/s, "");
const num = (value: Value) => Number(value as bigint | number);
const hash = (bytes: Uint8Array) => BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(bytes, 0n)));

export interface ImageHeader {
  arch: number;
  archName: string;
  elfClass: number;
  pageSize: number;
  recordCount: number;
  workerId: number;
  creationTimeNs: bigint;
  computationId: bigint;
  generation: number;
  peerCount: number;
  realPid: number;
  imageSize: number;
  programName: string;
  kernelRelease: string;
}

export interface RegionInfo {
  start: bigint;
  end: bigint;
  protection: number;
  flags: number;
  backing: number;
  fileOffset: bigint;
  path: string;
  pageCount: number;
  storedBytes: number;
}

export interface DescriptorInfo {
  fd: number;
  kind: number;
  openFlags: number;
  offset: bigint;
  path: string;
}

export interface ThreadInfo {
  tid: number;
  role: number;
  threadPointer: bigint;
  stackPointer: bigint;
  instructionPointer: bigint;
}

export interface SignalActionInfo {
  signal: number;
  handler: bigint;
  flags: bigint;
  mask: bigint;
}

export interface ProcessTreeInfo {
  virtualPid: number;
  virtualPpid: number;
  virtualPgid: number;
  virtualSid: number;
  realPid: number;
  zombies: { virtualPid: number; waitStatus: number }[];
}

export interface PipeInfo {
  fd: number;
  end: number;
  inode: bigint;
  capacity: number;
  byteCount: number;
  path: string;
}

export interface SocketInfo {
  fd: number;
  domain: number;
  type: number;
  inode: bigint;
  peerInode: bigint;
  state: number;
  backlog: number;
  byteCount: number;
  messageCount: number;
  path: string;
}

export interface FileDescriptionInfo {
  fd: number;
  ownerPid: number;
  ownerFd: number;
  openFlags: number;
  offset: bigint;
  path: string;
}

export interface TerminalInfo {
  fd: number;
  foreground: boolean;
  /// c_lflag of its termios (ECHO 0o10, ICANON 0o2).
  localFlags: number;
  rows: number;
  columns: number;
}

export interface PtyInfo {
  fd: number;
  role: number;
  index: number;
  outputSize: number;
  inputSize: number;
}

export interface EventInfo {
  fd: number;
  kind: number;
  value: bigint;
  remainingNs: bigint;
  intervalNs: bigint;
}

export interface EpollInfo {
  fd: number;
  entries: { fd: number; events: number; data: bigint }[];
}

export interface PendingSignalInfo {
  /// 0: pending for the whole process.
  tid: number;
  signal: number;
  code: number;
}

export interface TimerInfo {
  kind: number;
  id: number;
  clock: number;
  signal: number;
  intervalNs: bigint;
  remainingNs: bigint;
}

export interface Image {
  path: string;
  /// Undefined in images of programs that never recorded their place in a tree.
  tree?: ProcessTreeInfo;
  pipes: PipeInfo[];
  sockets: SocketInfo[];
  fileDescriptions: FileDescriptionInfo[];
  /// Undefined when the process had no controlling terminal on 0, 1 or 2.
  terminal?: TerminalInfo;
  ptys: PtyInfo[];
  events: EventInfo[];
  epolls: EpollInfo[];
  header: ImageHeader;
  cwd: string;
  umask: number;
  regions: RegionInfo[];
  descriptors: DescriptorInfo[];
  threads: ThreadInfo[];
  signalActions: SignalActionInfo[];
  pendingSignals: PendingSignalInfo[];
  timers: TimerInfo[];
}

class Reader {
  constructor(readonly path: string, readonly fd: number, readonly size: number) {}

  bytes(offset: number, length: number, what: string): Uint8Array {
    return this.into(new Uint8Array(length), offset, what);
  }

  /// Fills `buffer` from `offset`; restart reuses one buffer for every record's pages.
  into(buffer: Uint8Array, offset: number, what: string): Uint8Array {
    const length = buffer.length;
    if (offset + length > this.size) {
      throw new ImageInvalid(
        `${this.path}: truncated: ${what} ends at byte ${offset + length} of ${this.size}`,
        "The checkpoint was cut short (full disk or a killed copy); use an earlier image.",
      );
    }
    let done = 0;
    while (done < length) {
      const got = readSync(this.fd, buffer, done, length - done, offset + done);
      if (got <= 0) throw new ImageInvalid(`${this.path}: read failed at byte ${offset + done}`);
      done += got;
    }
    return buffer;
  }
}

/// Reads and validates a whole image; throws ImageInvalid naming the file and the problem.
/// With `verifyData` every stored page is checksummed too (restart does; inspect may skip).
export function readImage(path: string, { verifyData = true } = {}): Image {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ImageInvalid(
      code === "ENOENT" ? `${path}: no such image` : `${path}: cannot open it (${code})`,
    );
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ImageInvalid(`${path}: not a regular file`);
    const reader = new Reader(path, fd, stat.size);
    const header = readHeader(reader);
    return readRecords(reader, header, verifyData);
  } finally {
    closeSync(fd);
  }
}

function readHeader(reader: Reader): ImageHeader {
  const path = reader.path;
  if (reader.size === 0) throw new ImageInvalid(`${path}: empty file, not an image`);
  const head = reader.bytes(0, Math.min(reader.size, HEADER_SIZE), "the header");
  if (head.length < 8 || decodeMagic(head) !== IMAGE_MAGIC) {
    const dmtcp = new TextDecoder().decode(head.subarray(0, 23)) === "DMTCP_CHECKPOINT_IMAGE_";
    const gzip = head[0] === 0x1f && head[1] === 0x8b;
    throw new ImageInvalid(
      dmtcp || gzip
        ? `${path}: this looks like an image of the original DMTCP, whose format we do not read`
        : `${path}: not a dmtcp checkpoint image`,
    );
  }
  const { header, version, checksumOk } = decodeHeader(reader.bytes(0, HEADER_SIZE, "the header"));
  if (version !== IMAGE_VERSION) {
    throw new ImageInvalid(
      `${path}: image format version ${version}; this dmtcp reads ${IMAGE_VERSION}`,
    );
  }
  if (!checksumOk) throw new ImageInvalid(`${path}: corrupt: the header's checksum does not match`);
  if (reader.size < header.imageSize) {
    throw new ImageInvalid(
      `${path}: truncated: ${reader.size} of ${header.imageSize} bytes`,
      "The checkpoint was cut short (full disk or a killed copy); use an earlier image.",
    );
  }
  if (reader.size > header.imageSize) {
    throw new ImageInvalid(
      `${path}: corrupt: ${reader.size} bytes where ${header.imageSize} were written`,
    );
  }
  return header;
}

/// Decodes a 4096-byte header; the caller decides what a bad version or checksum means.
export function decodeHeader(bytes: Uint8Array) {
  const raw = decodeStruct("Header", bytes);
  const header: ImageHeader = {
    arch: num(raw.arch!), archName: ARCH_NAMES[num(raw.arch!)] ?? `unknown(${num(raw.arch!)})`,
    elfClass: num(raw.elf_class!), pageSize: num(raw.page_size!),
    recordCount: num(raw.record_count!), workerId: num(raw.worker_id!),
    creationTimeNs: raw.creation_time_ns as bigint, computationId: raw.computation_id as bigint,
    generation: num(raw.generation!), peerCount: num(raw.peer_count!), realPid: num(raw.real_pid!),
    imageSize: num(raw.image_size!), programName: text(raw.program_name!),
    kernelRelease: text(raw.kernel_release!),
  };
  const checksumOk = hash(bytes.subarray(0, HEADER_SIZE - 8)) === raw.header_checksum;
  return { header, version: num(raw.version!), checksumOk };
}

function decodeMagic(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
}

function alignForward(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/// One buffer for the pages of every record of every image read (a restart reads many).
let sharedPages: Uint8Array | undefined;

function readRecords(reader: Reader, header: ImageHeader, verifyData: boolean): Image {
  const image: Image = {
    path: reader.path, header, cwd: "", umask: 0, regions: [], descriptors: [], threads: [],
    signalActions: [], pipes: [], sockets: [], fileDescriptions: [], pendingSignals: [],
    timers: [], ptys: [], events: [], epolls: [],
  };
  const folded: Uint8Array[] = [];
  let offset = HEADER_SIZE;
  for (let index = 0; index < header.recordCount; index++) {
    const what = `record ${index + 1} of ${header.recordCount}`;
    const record = decodeStruct("RecordHeader", reader.bytes(offset, RECORD_HEADER_SIZE, what));
    const bodySize = num(record.body_size!);
    const dataSize = num(record.data_size!);
    if (bodySize > BODY_SIZE_MAX || dataSize > DATA_SIZE_MAX) {
      throw new ImageInvalid(`${reader.path}: corrupt: ${what} is too large`);
    }
    const recordBytes = reader.bytes(offset, RECORD_HEADER_SIZE + bodySize, what);
    const body = recordBytes.subarray(RECORD_HEADER_SIZE);
    const checked = new Uint8Array(16 + bodySize);
    checked.set(recordBytes.subarray(0, 16));
    checked.set(body, 16);
    if (hash(checked) !== record.body_checksum) {
      throw new ImageInvalid(`${reader.path}: corrupt: ${what} fails its checksum`);
    }
    const bodyEnd = alignForward(offset + RECORD_HEADER_SIZE + bodySize, 8);
    const dataOffset = dataSize === 0 ? bodyEnd : alignForward(bodyEnd, header.pageSize);
    if (dataSize > 0 && verifyData) {
      sharedPages ??= new Uint8Array(DATA_SIZE_MAX);
      const data = reader.into(sharedPages.subarray(0, dataSize), dataOffset, `${what}'s memory`);
      if (hash(data) !== record.data_checksum) {
        throw new ImageInvalid(`${reader.path}: corrupt: the memory of ${what} fails its checksum`);
      }
    } else if (dataOffset + dataSize > reader.size) {
      reader.bytes(dataOffset, dataSize, `${what}'s memory`);
    }
    folded.push(checksumPair(record));
    addRecord(image, num(record.tag!), body, dataSize, reader.path, what);
    offset = dataOffset + dataSize;
  }
  checkFold(reader, header, folded, offset);
  return image;
}

function checksumPair(record: Record<string, Value>): Uint8Array {
  const pair = new Uint8Array(16);
  const view = new DataView(pair.buffer);
  view.setBigUint64(0, record.body_checksum as bigint, true);
  view.setBigUint64(8, record.data_checksum as bigint, true);
  return pair;
}

function checkFold(reader: Reader, header: ImageHeader, pairs: Uint8Array[], end: number): void {
  const all = new Uint8Array(pairs.length * 16);
  pairs.forEach((pair, index) => all.set(pair, index * 16));
  const bytes = reader.bytes(0, HEADER_SIZE, "the header");
  const expected = decodeStruct("Header", bytes).records_checksum as bigint;
  if (hash(all) !== expected) {
    throw new ImageInvalid(`${reader.path}: corrupt: its records do not match the header`);
  }
  if (end !== header.imageSize) {
    throw new ImageInvalid(
      `${reader.path}: corrupt: records end at ${end}, not ${header.imageSize}`,
    );
  }
}

function addRecord(
  image: Image,
  tag: number,
  body: Uint8Array,
  dataSize: number,
  path: string,
  what: string,
) {
  const bad = () => new ImageInvalid(`${path}: corrupt: ${what} is malformed`);
  const after = (size: number, length: number) => text(body.subarray(size, size + length)) ;
  if (tag === RecordTag.process) {
    if (body.length < STRUCT_SIZES.Process!) throw bad();
    const process = decodeStruct("Process", body);
    image.cwd = new TextDecoder().decode(body.subarray(120, 120 + num(process.cwd_size!)));
    image.umask = num(process.umask!);
  } else if (tag === RecordTag.region) {
    if (body.length < STRUCT_SIZES.Region!) throw bad();
    const region = decodeStruct("Region", body);
    image.regions.push({
      start: region.start as bigint, end: region.end as bigint,
      protection: num(region.protection!), flags: num(region.flags!), backing: num(region.backing!),
      fileOffset: region.file_offset as bigint, path: after(56, num(region.path_size!)),
      pageCount: num(region.page_count!), storedBytes: dataSize,
    });
  } else if (tag === RecordTag.thread) {
    if (body.length !== STRUCT_SIZES.Thread!) throw bad();
    const thread = decodeStruct("Thread", body);
    image.threads.push({
      tid: num(thread.tid!), role: num(thread.role!),
      threadPointer: thread.thread_pointer as bigint,
      stackPointer: thread.stack_pointer as bigint,
      instructionPointer: thread.instruction_pointer as bigint,
    });
  } else if (tag === RecordTag.descriptor) {
    if (body.length < STRUCT_SIZES.Descriptor!) throw bad();
    const descriptor = decodeStruct("Descriptor", body);
    image.descriptors.push({
      fd: num(descriptor.fd!), kind: num(descriptor.kind!), openFlags: num(descriptor.open_flags!),
      offset: descriptor.offset as bigint, path: after(32, num(descriptor.path_size!)),
    });
  } else if (tag === RecordTag.signal_action) {
    if (body.length !== STRUCT_SIZES.SignalAction!) throw bad();
    const action = decodeStruct("SignalAction", body);
    image.signalActions.push({
      signal: num(action.signal!), handler: action.handler as bigint,
      flags: action.flags as bigint, mask: action.mask as bigint,
    });
  } else if (tag === RecordTag.process_tree) {
    image.tree = decodeTree(body, bad);
  } else if (tag === RecordTag.pipe) {
    if (body.length < STRUCT_SIZES.Pipe!) throw bad();
    const pipe = decodeStruct("Pipe", body);
    const byteCount = num(pipe.byte_count!);
    if (body.length !== STRUCT_SIZES.Pipe! + num(pipe.path_size!)) throw bad();
    if (dataSize !== alignForward(byteCount, 8)) throw bad();
    image.pipes.push({
      fd: num(pipe.fd!), end: num(pipe.end!), inode: pipe.inode as bigint,
      capacity: num(pipe.capacity!), byteCount, path: after(40, num(pipe.path_size!)),
    });
  } else if (tag === RecordTag.socket) {
    image.sockets.push(decodeSocket(body, dataSize, bad));
  } else if (tag === RecordTag.file_description) {
    if (body.length < STRUCT_SIZES.FileDescription!) throw bad();
    const shared = decodeStruct("FileDescription", body);
    if (body.length !== STRUCT_SIZES.FileDescription! + num(shared.path_size!)) throw bad();
    if (dataSize !== 0) throw bad();
    image.fileDescriptions.push({
      fd: num(shared.fd!), ownerPid: num(shared.owner_pid!), ownerFd: num(shared.owner_fd!),
      openFlags: num(shared.open_flags!), offset: shared.offset as bigint,
      path: text(body.subarray(32, 32 + num(shared.path_size!))),
    });
  } else if (tag === RecordTag.terminal) {
    if (body.length !== STRUCT_SIZES.Terminal! || dataSize !== 0) throw bad();
    const terminal = decodeStruct("Terminal", body);
    const fd = num(terminal.fd!);
    const foreground = num(terminal.foreground!);
    if (fd < 0 || fd > 2 || foreground > 1) throw bad();
    const termios = terminal.termios as Uint8Array;
    const view = new DataView(termios.buffer, termios.byteOffset, termios.byteLength);
    image.terminal = {
      fd, foreground: foreground === 1, localFlags: view.getUint32(12, true),
      rows: num(terminal.rows!), columns: num(terminal.columns!),
    };
  } else if (tag === RecordTag.event) {
    if (body.length !== STRUCT_SIZES.Event! || dataSize !== 0) throw bad();
    const event = decodeStruct("Event", body);
    const known = Object.values(EventKind).includes(num(event.kind!) as 1);
    if (num(event.fd!) < 0 || !known) throw bad();
    image.events.push({
      fd: num(event.fd!), kind: num(event.kind!), value: event.value as bigint,
      remainingNs: event.remaining_ns as bigint, intervalNs: event.interval_ns as bigint,
    });
  } else if (tag === RecordTag.epoll) {
    if (body.length < STRUCT_SIZES.Epoll! || dataSize !== 0) throw bad();
    const epoll = decodeStruct("Epoll", body);
    const count = num(epoll.entry_count!);
    const size = STRUCT_SIZES.EpollEntry!;
    if (num(epoll.fd!) < 0 || body.length !== STRUCT_SIZES.Epoll! + count * size) throw bad();
    const entries = [];
    for (let index = 0; index < count; index++) {
      const entry = decodeStruct("EpollEntry", body, STRUCT_SIZES.Epoll! + index * size);
      entries.push({ fd: num(entry.fd!), events: num(entry.events!), data: entry.data as bigint });
    }
    image.epolls.push({ fd: num(epoll.fd!), entries });
  } else if (tag === RecordTag.pty) {
    if (body.length !== STRUCT_SIZES.Pty!) throw bad();
    const pty = decodeStruct("Pty", body);
    const role = num(pty.role!);
    const outputSize = num(pty.output_size!);
    const inputSize = num(pty.input_size!);
    if (num(pty.fd!) < 0 || num(pty.index!) >= 2 ** 20) throw bad();
    if (!Object.values(PtyRole).includes(role as 1)) throw bad();
    if (dataSize !== alignForward(outputSize + inputSize, 8)) throw bad();
    image.ptys.push({ fd: num(pty.fd!), role, index: num(pty.index!), outputSize, inputSize });
  } else if (tag === RecordTag.pending_signal) {
    if (body.length !== STRUCT_SIZES.PendingSignal!) throw bad();
    const pending = decodeStruct("PendingSignal", body);
    const info = pending.info as Uint8Array;
    // siginfo: si_signo, si_errno, si_code (three ints).
    const code = new DataView(info.buffer, info.byteOffset, info.byteLength).getInt32(8, true);
    image.pendingSignals.push({ tid: num(pending.tid!), signal: num(pending.signal!), code });
  } else if (tag === RecordTag.timer) {
    if (body.length !== STRUCT_SIZES.Timer!) throw bad();
    const timer = decodeStruct("Timer", body);
    if (!Object.values(TimerKind).includes(num(timer.kind!) as 1)) throw bad();
    image.timers.push({
      kind: num(timer.kind!), id: num(timer.id!), clock: num(timer.clock!),
      signal: num(timer.signal!), intervalNs: timer.interval_ns as bigint,
      remainingNs: timer.remaining_ns as bigint,
    });
  } else {
    throw new ImageInvalid(`${path}: corrupt: ${what} has unknown tag ${tag}`);
  }
}

function decodeSocket(body: Uint8Array, dataSize: number, bad: () => ImageInvalid): SocketInfo {
  if (body.length < STRUCT_SIZES.Socket!) throw bad();
  const socket = decodeStruct("Socket", body);
  const byteCount = num(socket.byte_count!);
  const pathSize = num(socket.path_size!);
  if (body.length !== STRUCT_SIZES.Socket! + pathSize) throw bad();
  if (dataSize !== alignForward(byteCount, 8)) throw bad();
  if (!Object.values(SocketState).includes(num(socket.state!) as 1)) throw bad();
  return {
    fd: num(socket.fd!), domain: num(socket.domain!), type: num(socket.type!),
    inode: socket.inode as bigint, peerInode: socket.peer_inode as bigint,
    state: num(socket.state!), backlog: num(socket.backlog!), byteCount,
    messageCount: num(socket.message_count!),
    path: text(body.subarray(STRUCT_SIZES.Socket!, STRUCT_SIZES.Socket! + pathSize)),
  };
}

function decodeTree(body: Uint8Array, bad: () => ImageInvalid): ProcessTreeInfo {
  if (body.length < STRUCT_SIZES.ProcessTree!) throw bad();
  const tree = decodeStruct("ProcessTree", body);
  const count = num(tree.zombie_count!);
  if (body.length !== STRUCT_SIZES.ProcessTree! + count * STRUCT_SIZES.Zombie!) throw bad();
  const zombies = [];
  for (let index = 0; index < count; index++) {
    const zombie = decodeStruct("Zombie", body, STRUCT_SIZES.ProcessTree! + index * 8);
    zombies.push({ virtualPid: num(zombie.virtual_pid!), waitStatus: num(zombie.wait_status!) });
  }
  return {
    virtualPid: num(tree.virtual_pid!), virtualPpid: num(tree.virtual_ppid!),
    virtualPgid: num(tree.virtual_pgid!), virtualSid: num(tree.virtual_sid!),
    realPid: num(tree.real_pid!), zombies,
  };
}
