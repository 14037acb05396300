import { describe, expect, test } from "bun:test";
import vectors from "../vectors/image-header.json";
import { decodeHeader, IMAGE_VERSION } from "../../src/format/image";

const unhex = (text: string) => new Uint8Array(Buffer.from(text, "hex"));

describe("image header vectors shared with Zig", () => {
  for (const vector of vectors) {
    test(`${vector.name} decodes to the vector's fields and checksum`, () => {
      const bytes = unhex(vector.bytes);
      const { header, version, checksumOk } = decodeHeader(bytes);
      const expected = vector.header;
      expect(version).toBe(IMAGE_VERSION);
      expect(checksumOk).toBe(true);
      expect(header.arch).toBe(expected.arch);
      expect(header.elfClass).toBe(expected.elf_class);
      expect(header.pageSize).toBe(expected.page_size);
      expect(header.recordCount).toBe(expected.record_count);
      expect(header.workerId).toBe(expected.worker_id);
      expect(header.creationTimeNs).toBe(BigInt(expected.creation_time_ns));
      expect(header.computationId).toBe(BigInt(`0x${expected.computation_id}`));
      expect(header.generation).toBe(expected.generation);
      expect(header.peerCount).toBe(expected.peer_count);
      expect(header.realPid).toBe(expected.real_pid);
      expect(header.imageSize).toBe(Number(expected.image_size));
      expect(header.programName).toBe(expected.program_name);
      expect(header.kernelRelease).toBe(expected.kernel_release);
    });

    test(`${vector.name} with one byte changed fails its checksum`, () => {
      const bytes = unhex(vector.bytes);
      bytes[100] ^= 1;
      expect(decodeHeader(bytes).checksumOk).toBe(false);
    });
  }
});
