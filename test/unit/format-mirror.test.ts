import { describe, expect, test } from "bun:test";
import * as protocol from "../../src/format/protocol";
import * as image from "../../src/format/image";

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

describe("the TypeScript image mirror", () => {
  const zig = manifest.image;

  test("constants match the Zig definition", () => {
    expect(image.IMAGE_MAGIC.toString(16)).toBe(zig.magic);
    expect(image.IMAGE_VERSION).toBe(zig.version);
    expect(image.HEADER_SIZE).toBe(zig.header_size);
    expect(image.RECORD_HEADER_SIZE).toBe(zig.record_header_size);
    expect(image.BODY_SIZE_MAX).toBe(zig.body_size_max);
    expect(image.DATA_SIZE_MAX).toBe(zig.data_size_max);
  });

  test("every struct has the same size and field offsets", () => {
    type Fields = Record<string, { offset: number; size: number }>;
    const structs = zig.structs as Record<string, { size: number; fields: Fields }>;
    expect(Object.keys(image.LAYOUTS).sort()).toEqual(Object.keys(structs).sort());
    for (const [name, layout] of Object.entries(image.LAYOUTS)) {
      const fields = Object.fromEntries(layout.map(([field, offset, type]) => [
        field, { offset, size: image.fieldSize(type) },
      ]));
      expect({ name, size: image.STRUCT_SIZES[name], fields }).toEqual({
        name, size: structs[name]!.size, fields: structs[name]!.fields,
      });
    }
  });

  test("every enumeration has the same names and values", () => {
    const enums = [
      "RecordTag", "Backing", "ThreadRole", "DescriptorKind", "PipeEnd", "TimerKind", "SocketState",
    ];
    for (const name of enums as Array<keyof typeof image & keyof typeof zig>) {
      expect({ name, values: image[name] }).toEqual({ name, values: zig[name] });
    }
    const { reserved: _, ...flags } = zig.RegionFlags;
    expect(image.RegionFlags).toEqual(flags);
  });
});
