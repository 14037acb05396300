import { describe, expect, test } from "bun:test";
import vectors from "../vectors/protocol.json";
import {
  decode, encode, FrameReader, header, HEADER_SIZE, Kind, ProtocolError, splitStrings,
} from "../../src/format/protocol";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const unhex = (text: string) => new Uint8Array(Buffer.from(text, "hex"));

function fromVector(fields: Record<string, number | string | undefined>) {
  const { token, computation_id, ...rest } = fields;
  return header({
    ...(rest as { kind: number }),
    computation_id: BigInt(`0x${computation_id ?? "0"}`),
    token: unhex((token as string | undefined) ?? "00".repeat(16)),
  });
}

describe("protocol vectors shared with Zig", () => {
  for (const vector of vectors) {
    test(`${vector.name} encodes to the vector's bytes and decodes back`, () => {
      const payload = unhex(vector.payload);
      const message = fromVector(vector.header);
      expect(hex(encode(message, payload))).toBe(vector.bytes);
      const decoded = decode(unhex(vector.bytes));
      expect(decoded).toEqual({ ...message, payload_size: payload.length });
    });
  }
});

describe("protocol decoding", () => {
  test("a bad magic, kind or oversized payload is refused", () => {
    const bytes = encode(header({ kind: Kind.kill }));
    bytes[0]! ^= 0xff;
    expect(() => decode(bytes)).toThrow(ProtocolError);
    const badKind = encode(header({ kind: Kind.kill }));
    badKind[6] = 200;
    expect(() => decode(badKind)).toThrow("bad kind");
    const big = encode(header({ kind: Kind.kill }));
    new DataView(big.buffer).setUint32(8, (1 << 20) + 1, true);
    expect(() => decode(big)).toThrow("payload too large");
  });

  test("the frame reader reassembles frames split at any byte", () => {
    const first = encode(header({ kind: Kind.worker_info }), new TextEncoder().encode("a\0h\0"));
    const second = encode(header({ kind: Kind.kill }));
    const stream = new Uint8Array([...first, ...second]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const reader = new FrameReader();
      const frames = [...reader.push(stream.slice(0, cut)), ...reader.push(stream.slice(cut))];
      expect(frames.map((frame) => frame.header.kind)).toEqual([Kind.worker_info, Kind.kill]);
      expect(splitStrings(frames[0]!.payload)).toEqual(["a", "h"]);
    }
    expect(HEADER_SIZE).toBe(80);
  });
});
