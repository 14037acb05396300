// The restart script the coordinator leaves next to a complete checkpoint (reference 2.10),
// simplified to our CLI: one bash file that runs `dmtcp restart` on every image, over ssh for
// images of other hosts. Pure text here; server.ts writes the file.
//
// The token is deliberately absent: a script is often copied around or kept with the images,
// and `dmtcp restart` finds the token of the coordinator it joins in its token file.

/// The images one host wrote, in the order its workers joined.
export interface HostImages {
  host: string;
  /// Absolute paths.
  images: string[];
}

/// What the script needs; carried by the state machine's `write_restart_script` action.
export interface RestartScript {
  /// The coordinator's checkpoint directory, where the script goes (absolute).
  ckptDir: string;
  /// Lower-case hexadecimal, as in the script's name.
  computationId: string;
  generation: number;
  coordHost: string;
  coordPort: number;
  intervalS: number;
  /// Hosts in the order their first worker joined.
  hosts: HostImages[];
}

/// DMTCP's names: the script proper, and the link that always points at the newest one.
export const SCRIPT_LINK_NAME = "dmtcp_restart_script.sh";

export function restartScriptName(computationId: string): string {
  return `dmtcp_restart_script_${computationId}.sh`;
}

/// Single quotes keep every byte of a path or host name literal in bash.
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/// The whole script. `restartCommand` is how this coordinator's own executable restarts
/// (e.g. ["/usr/bin/dmtcp", "restart"]); without it the script relies on PATH.
export function restartScriptText(script: RestartScript, restartCommand?: string[]): string {
  const imageCount = script.hosts.reduce((sum, host) => sum + host.images.length, 0);
  const body = script.hosts.length === 1
    ? singleHostBody(script.hosts[0]!)
    : multiHostBody(script.hosts);
  return [
    header(script),
    usage(script),
    settings(script),
    OPTION_PARSER,
    commandLookup(restartCommand),
    RELOCATE,
    `# Number of hosts in the computation = ${script.hosts.length}`,
    `# Number of processes in the computation = ${imageCount}`,
    "",
    body,
  ].join("\n");
}

function header(script: RestartScript): string {
  return [
    "#!/bin/bash",
    `# Restarts computation ${script.computationId} from checkpoint ${script.generation}.`,
    "# Written by the dmtcp coordinator. Edit the defaults below, or override them with the",
    "# options (--help) or with DMTCP_COORD_HOST, DMTCP_COORD_PORT, DMTCP_CHECKPOINT_INTERVAL",
    "# and DMTCP_RESTART_DIR.",
    "",
    "# Job control puts the ssh restarts of other hosts in their own process groups.",
    "set -m",
    "",
  ].join("\n");
}

function usage(script: RestartScript): string {
  const text = [
    `Usage: ${SCRIPT_LINK_NAME} [OPTIONS]`,
    "",
    "Options:",
    `  --coord-host, -h HOST   Coordinator host (default ${script.coordHost})`,
    `  --coord-port, -p PORT   Coordinator port (default ${script.coordPort})`,
    `  --interval, -i SECONDS  Checkpoint interval, 0 for none (default ${script.intervalS})`,
    "  --restartdir, -d DIR    Take the images from DIR instead of where they were written",
    "  --help                  Print this help and exit",
  ].join("\n");
  return `usage_str=${shellQuote(text)}\n`;
}

function settings(script: RestartScript): string {
  return [
    `coord_host=\${DMTCP_COORD_HOST:-${shellQuote(script.coordHost)}}`,
    `coord_port=\${DMTCP_COORD_PORT:-${script.coordPort}}`,
    `checkpoint_interval=\${DMTCP_CHECKPOINT_INTERVAL:-${script.intervalS}}`,
    "restart_dir=${DMTCP_RESTART_DIR:-}",
    "",
  ].join("\n");
}

const OPTION_PARSER = `# Every option takes a value; a missing one fails, never defaults silently.
need_value() {
  if [ "$2" -lt 2 ]; then
    echo "$0: $1 needs a value" >&2
    exit 1
  fi
}

while [ $# -gt 0 ]; do
  case "$1" in
    --coord-host|-h) need_value "$1" $#; coord_host=$2; shift 2 ;;
    --coord-port|-p) need_value "$1" $#; coord_port=$2; shift 2 ;;
    --interval|-i) need_value "$1" $#; checkpoint_interval=$2; shift 2 ;;
    --restartdir|-d) need_value "$1" $#; restart_dir=$2; shift 2 ;;
    --help) echo "$usage_str"; exit 0 ;;
    *) echo "$0: unknown option '$1'" >&2; echo "$usage_str" >&2; exit 1 ;;
  esac
done
`;

function commandLookup(restartCommand: string[] | undefined): string {
  const fallback = `# The dmtcp that wrote this script restarts best; failing that, any on PATH.
if [ ! -x "\${dmt_rstr_cmd[0]}" ]; then
  if ! command -v dmtcp_restart >/dev/null 2>&1; then
    echo "$0: cannot run \${dmt_rstr_cmd[0]}, and no dmtcp_restart on PATH" >&2
    exit 1
  fi
  dmt_rstr_cmd=(dmtcp_restart)
fi
`;
  if (restartCommand === undefined || restartCommand.length === 0) {
    return "dmt_rstr_cmd=(dmtcp_restart)\n";
  }
  return `dmt_rstr_cmd=(${restartCommand.map(shellQuote).join(" ")})\n${fallback}`;
}

const RELOCATE = `# Sets \`relocated\` to the given images, moved into --restartdir when one is
# given, for images copied elsewhere since the checkpoint.
relocate() {
  relocated=()
  local file
  for file in "$@"; do
    if [ -n "$restart_dir" ]; then
      relocated+=("$restart_dir/\${file##*/}")
    else
      relocated+=("$file")
    fi
  done
}
`;

function imageArray(name: string, images: string[]): string {
  return `${name}=(\n${images.map((image) => `  ${shellQuote(image)}\n`).join("")})`;
}

function singleHostBody(host: HostImages): string {
  return [
    `# Every image was written on ${host.host}.`,
    imageArray("given_ckpt_files", host.images),
    'relocate "${given_ckpt_files[@]}"',
    'exec "${dmt_rstr_cmd[@]}" --coord-host "$coord_host" --coord-port "$coord_port" \\',
    '  --interval "$checkpoint_interval" "${relocated[@]}"',
    "",
  ].join("\n");
}

const MULTI_HOST_HELPERS = `# True when the host named is this one, under any of its usual names.
is_local() {
  [ "$1" = localhost ] || [ "$1" = "$(hostname)" ] || [ "$1" = "$(hostname -f 2>/dev/null)" ] ||
    [ "$1" = "$(hostname -s 2>/dev/null)" ]
}

# Restarts one host's images: this host's are collected for the final exec; every other host
# gets its own dmtcp restart over ssh, in the background, joining the same coordinator.
local_files=()
restart_host() {
  local host=$1
  shift
  relocate "$@"
  if is_local "$host"; then
    local_files+=("\${relocated[@]}")
    return
  fi
  local remote
  remote=$(printf '%q ' "\${dmt_rstr_cmd[@]}" --coord-host "$coord_host" \\
    --coord-port "$coord_port" --join-coordinator --interval "$checkpoint_interval" \\
    "\${relocated[@]}")
  ssh "$host" "$remote" &
}
`;

function multiHostBody(hosts: HostImages[]): string {
  const calls = hosts.map((host) =>
    `restart_host ${[host.host, ...host.images].map(shellQuote).join(" ")}`);
  return [
    MULTI_HOST_HELPERS,
    ...calls,
    "",
    "# Without images of its own, this host only waits for the remote restarts.",
    'if [ ${#local_files[@]} -eq 0 ]; then',
    "  wait",
    "  exit",
    "fi",
    'exec "${dmt_rstr_cmd[@]}" --coord-host "$coord_host" --coord-port "$coord_port" \\',
    '  --join-coordinator --interval "$checkpoint_interval" "${local_files[@]}"',
    "",
  ].join("\n");
}
