// dmtcp inspect IMAGE [--json]: what an image holds, as CRIU's crit shows: the header, the
// region table, descriptors and threads. The same validation as restart.
import { defineCommand } from "citty";
import { UsageError } from "../errors";
import type { ParsedArgv } from "../args";
import {
  Backing,
  DescriptorKind,
  EventKind,
  ThreadRole,
  PtyRole,
  TimerKind,
  readImage,
  type Image,
} from "../format/image";
import { executableFor } from "../native/cache";
import type { ArchName } from "../native/elf";

export default defineCommand({
  meta: { name: "inspect", description: "Show what a checkpoint image holds" },
  args: {
    image: { type: "positional", description: "The image (ckpt_*.dmtcp)" },
    json: { type: "boolean", description: "Print the full decode as JSON" },
    "no-verify": { type: "boolean", description: "Skip checksumming the stored memory" },
    help: { type: "boolean", description: "Show this help" },
  },
  run({ args }) {
    const { positionals, values } = args as unknown as ParsedArgv;
    if (positionals.length !== 1) throw new UsageError("give exactly one image to inspect");
    const image = readImage(positionals[0]!, { verifyData: values["no-verify"] !== true });
    process.stdout.write(values.json === true ? toJson(image) : summary(image));
  },
});

const hex = (value: bigint | number) => `0x${value.toString(16)}`;
const nameOf = (table: Record<string, number>, value: number) =>
  Object.entries(table).find(([, v]) => v === value)?.[0] ?? String(value);

function protection(bits: number): string {
  return `${bits & 1 ? "r" : "-"}${bits & 2 ? "w" : "-"}${bits & 4 ? "x" : "-"}`;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function headerLines(image: Image): string[] {
  const h = image.header;
  const written = new Date(Number(h.creationTimeNs / 1000000n)).toISOString();
  return [
    `image: ${image.path}`,
    `  program ${h.programName}, ${h.archName} (${h.elfClass === 2 ? 64 : 32}-bit), ` +
      `page size ${h.pageSize}, restarts with ` +
      (executableFor(h.archName as ArchName) ?? "no dmtcp executable"),
    `  worker ${h.workerId} of computation ${h.computationId.toString(16)}, ` +
      `generation ${h.generation}, ${h.peerCount} peer(s)`,
    `  written ${written} by pid ${h.realPid} on kernel ${h.kernelRelease}`,
    `  cwd ${image.cwd}, umask ${image.umask.toString(8).padStart(3, "0")}`,
  ];
}

function regionLine(region: Image["regions"][number]): string {
  const range = `${hex(region.start).padStart(18)}-${hex(region.end).padEnd(18)}`;
  const sharing = region.flags & 1 ? "s" : "p";
  return `  ${range} ${protection(region.protection)} ${sharing} ` +
    `${nameOf(Backing, region.backing).padEnd(9)} ${mib(region.storedBytes).padStart(10)}  ` +
    region.path;
}

function descriptorLine(descriptor: Image["descriptors"][number]): string {
  const kind = nameOf(DescriptorKind, descriptor.kind).padEnd(11);
  return `  ${String(descriptor.fd).padStart(4)} ${kind} flags ` +
    `${hex(descriptor.openFlags).padEnd(8)} offset ${descriptor.offset}  ${descriptor.path}`;
}

function threadLine(thread: Image["threads"][number]): string {
  return `  tid ${thread.tid} ${nameOf(ThreadRole, thread.role)} ` +
    `pc ${hex(thread.instructionPointer)} sp ${hex(thread.stackPointer)} ` +
    `tp ${hex(thread.threadPointer)}`;
}

function timerLine(timer: Image["timers"][number]): string {
  const posix = timer.kind === TimerKind.posix
    ? ` id ${timer.id} clock ${timer.clock} signal ${timer.signal}`
    : "";
  return `  ${nameOf(TimerKind, timer.kind).padEnd(14)}${posix}` +
    ` next in ${timer.remainingNs} ns, every ${timer.intervalNs} ns`;
}

function terminalLine(terminal: Image["terminal"]): string {
  if (!terminal) return "terminal: none";
  // c_lflag bits ECHO and ICANON.
  const echo = terminal.localFlags & 0o10 ? "echo" : "no echo";
  const canonical = terminal.localFlags & 0o2 ? "canonical" : "raw";
  const place = terminal.foreground ? "foreground" : "background";
  return `terminal: on fd ${terminal.fd}, ${place}, ${echo}, ${canonical}, ` +
    `${terminal.columns}x${terminal.rows}`;
}

function summary(image: Image): string {
  const stored = image.regions.reduce((sum, region) => sum + region.storedBytes, 0);
  const mapped = image.regions.reduce((sum, region) => sum + Number(region.end - region.start), 0);
  const lines = [
    ...headerLines(image),
    `regions: ${image.regions.length}, ${mib(mapped)} mapped, ${mib(stored)} stored`,
    ...image.regions.map(regionLine),
    `descriptors: ${image.descriptors.length}`,
    ...image.descriptors.map(descriptorLine),
    `threads: ${image.threads.length}`,
    ...image.threads.map(threadLine),
    `pending signals: ${image.pendingSignals.length}`,
    ...image.pendingSignals.map((pending) =>
      `  signal ${pending.signal} code ${pending.code} ` +
      (pending.tid === 0 ? "for the process" : `for thread ${pending.tid}`)),
    `timers: ${image.timers.length}`,
    ...image.timers.map(timerLine),
    terminalLine(image.terminal),
    `pseudo-terminals: ${image.ptys.length}`,
    ...image.ptys.map((pty) =>
      `  ${String(pty.fd).padStart(4)} ${nameOf(PtyRole, pty.role)} of pts ${pty.index}, ` +
      `${pty.outputSize} bytes to read on the master, ${pty.inputSize} on the slave`),
    `event descriptors: ${image.events.length + image.epolls.length}`,
    ...image.events.map((event) =>
      `  ${String(event.fd).padStart(4)} ${nameOf(EventKind, event.kind)} value ${event.value}` +
      (event.kind === EventKind.timerfd
        ? `, next in ${event.remainingNs} ns, every ${event.intervalNs} ns`
        : "")),
    ...image.epolls.map((epoll) =>
      `  ${String(epoll.fd).padStart(4)} epoll watching ` +
      (epoll.entries.map((entry) => entry.fd).join(", ") || "nothing")),
  ];
  return `${lines.join("\n")}\n`;
}

function toJson(image: Image): string {
  return `${JSON.stringify(image, (_key, value) =>
    typeof value === "bigint" ? `0x${value.toString(16)}` : value, 2)}\n`;
}
