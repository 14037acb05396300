// A strict command-line parser driven by citty argument definitions. Strict where citty is
// lenient: an unknown option or a missing value is a UsageError, and DMTCP's forms work:
// `-p7779`, `-i5`, `--port=7779`, `--port 7779`, options ending at the first program word.
import type { ArgsDef } from "citty";
import { UsageError } from "./errors";

export interface ParsedArgv {
  values: Record<string, string | boolean>;
  /// How many times each boolean was given (`-q -q`).
  counts: Record<string, number>;
  positionals: string[];
}

export interface ParseOptions {
  /// launch and restart stop at the first word that is not an option: the rest is the program.
  stopAtPositional: boolean;
}

interface OptionSpec {
  name: string;
  type: "string" | "boolean";
}

function optionTable(definitions: ArgsDef): Map<string, OptionSpec> {
  const table = new Map<string, OptionSpec>();
  for (const [name, definition] of Object.entries(definitions)) {
    if (definition.type === "positional") continue;
    const type = definition.type === "boolean" ? "boolean" : "string";
    const alias = (definition as { alias?: string | readonly string[] }).alias;
    const aliases = alias === undefined ? [] : [alias].flat();
    for (const key of [name, ...aliases]) {
      table.set(key.length === 1 ? `-${key}` : `--${key}`, { name, type });
    }
  }
  return table;
}

export function parseArgv(argv: string[], definitions: ArgsDef, options: ParseOptions): ParsedArgv {
  const table = optionTable(definitions);
  const parsed: ParsedArgv = { values: {}, counts: {}, positionals: [] };
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index]!;
    if (word === "--") {
      parsed.positionals.push(...argv.slice(index + 1));
      break;
    }
    if (!word.startsWith("-") || word === "-") {
      if (options.stopAtPositional) {
        parsed.positionals.push(...argv.slice(index));
        break;
      }
      parsed.positionals.push(word);
      continue;
    }
    index = takeOption(argv, index, table, parsed);
  }
  return parsed;
}

/// Consumes the option at argv[index] (and its value); returns the index of the last word used.
function takeOption(
  argv: string[],
  index: number,
  table: Map<string, OptionSpec>,
  parsed: ParsedArgv,
): number {
  const word = argv[index]!;
  const [key, inline] = splitOption(word, table);
  const spec = table.get(key);
  if (spec === undefined) {
    throw new UsageError(`unknown option '${word}'`, "See --help for the options.");
  }
  if (spec.type === "boolean") {
    if (inline !== undefined) throw new UsageError(`option '${key}' takes no value`);
    parsed.values[spec.name] = true;
    parsed.counts[spec.name] = (parsed.counts[spec.name] ?? 0) + 1;
    return index;
  }
  if (inline !== undefined) {
    parsed.values[spec.name] = inline;
    return index;
  }
  const value = argv[index + 1];
  if (value === undefined) throw new UsageError(`option '${key}' needs a value`);
  parsed.values[spec.name] = value;
  return index + 1;
}

/// `--port=1` → ["--port", "1"]; `-p7779` → ["-p", "7779"] when -p takes a value.
function splitOption(word: string, table: Map<string, OptionSpec>): [string, string | undefined] {
  if (word.startsWith("--")) {
    const equals = word.indexOf("=");
    return equals < 0 ? [word, undefined] : [word.slice(0, equals), word.slice(equals + 1)];
  }
  const short = word.slice(0, 2);
  if (word.length > 2 && table.get(short)?.type === "string") return [short, word.slice(2)];
  return [word, undefined];
}
