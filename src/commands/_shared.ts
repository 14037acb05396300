// Argument groups shared by several tools, with DMTCP's names and aliases.
import type { ArgsDef } from "citty";

export const coordinatorArgs = {
  "coord-host": {
    type: "string",
    alias: ["h", "host"],
    valueHint: "host",
    description: "Coordinator host (DMTCP_COORD_HOST; default 127.0.0.1)",
  },
  "coord-port": {
    type: "string",
    alias: ["p", "port"],
    valueHint: "port",
    description: "Coordinator port, 0 for any free one (DMTCP_COORD_PORT; default 7779)",
  },
  "port-file": {
    type: "string",
    valueHint: "file",
    description: "Write the coordinator's port to this file",
  },
  "join-coordinator": {
    type: "boolean",
    alias: ["j", "join"],
    description: "Join a running coordinator; fail if there is none",
  },
  "new-coordinator": {
    type: "boolean",
    description: "Start a new coordinator; fail if the port is in use",
  },
  "any-coordinator": {
    type: "boolean",
    description: "Join a running coordinator, else start one (the default)",
  },
  interval: {
    type: "string",
    alias: "i",
    valueHint: "seconds",
    description: "Checkpoint every this many seconds, 0 for never (DMTCP_CHECKPOINT_INTERVAL)",
  },
  "coord-logfile": {
    type: "string",
    valueHint: "file",
    description: "Log file of a coordinator started on demand",
  },
} as const satisfies ArgsDef;

export const commonArgs = {
  tmpdir: {
    type: "string",
    alias: "t",
    valueHint: "dir",
    description: "Directory for temporary files (DMTCP_TMPDIR; default $TMPDIR or /tmp)",
  },
  quiet: {
    type: "boolean",
    alias: "q",
    description: "Fewer messages; twice for errors only (DMTCP_QUIET)",
  },
  help: { type: "boolean", description: "Show this help" },
  version: { type: "boolean", description: "Show the version" },
} as const satisfies ArgsDef;
