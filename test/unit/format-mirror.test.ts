import { describe, expect, test } from "bun:test";
import * as protocol from "../../src/format/protocol";

// The Zig side prints its layouts; the TypeScript mirror must agree field by field.
const manifestProcess = Bun.spawnSync(["zig", "build", "format-manifest"], {
  cwd: `${import.meta.dir}/../..`,
  env: { ...process.env, PATH: `${import.meta.dir}/../../.tools/bin:${process.env.PATH}` },
});
const manifest = JSON.parse(manifestProcess.stdout.toString());

describe("the TypeScript protocol mirror", () => {
  test("constants match the Zig definition", () => {
    const zig = manifest.protocol;
    expect(protocol.MAGIC).toBe(zig.magic);
    expect(protocol.VERSION).toBe(zig.version);
    expect(protocol.HEADER_SIZE).toBe(zig.header_size);
    expect(protocol.PAYLOAD_SIZE_MAX).toBe(zig.payload_size_max);
    expect(protocol.TOKEN_SIZE).toBe(zig.token_size);
  });

  test("every header field has the same offset and size", () => {
    const zigFields = manifest.protocol.fields as Record<string, { offset: number; size: number }>;
    const mirror = Object.fromEntries(
      protocol.FIELDS.map(([name, offset, type]) => [
        name,
        { offset, size: protocol.FIELD_SIZES[type] },
      ]),
    );
    expect(mirror).toEqual(zigFields);
  });

  test("every enumeration has the same names and values", () => {
    for (const name of ["Kind", "WorkerState", "Command", "Status", "Barrier", "Arch"] as const) {
      expect({ name, values: protocol[name] }).toEqual({ name, values: manifest.protocol[name] });
    }
  });
});
