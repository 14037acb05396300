// The `$PLATFORM` links that choose the runtime by word size (src/native/cache.ts).
import { describe, expect, test } from "bun:test";
import { PLATFORMS, platformLinks } from "../../src/native/cache";
import type { ArchName } from "../../src/native/elf";

const ALL: ArchName[] = ["x86_64", "i386", "aarch64", "armv7"];

describe("$PLATFORM links", () => {
  test("every name of the table names one architecture only", () => {
    const seen = new Map<string, ArchName>();
    for (const arch of ALL) {
      for (const platform of PLATFORMS[arch]) {
        expect({ platform, other: seen.get(platform) }).toEqual({ platform, other: undefined });
        seen.set(platform, arch);
      }
    }
    expect(platformLinks(ALL, {})).toEqual(seen);
  });

  test("a name a loader here reports but the table lacks links to that loader's library", () => {
    const links = platformLinks(["x86_64", "i386"], { x86_64: "x86-64-v9", i386: "i686" });
    expect(links.get("x86-64-v9")).toBe("x86_64");
    expect(links.get("i686")).toBe("i386");
    expect(links.has("aarch64")).toBe(false);
  });

  test("a reported name another architecture claims, or one that is a path, is not taken", () => {
    const links = platformLinks(["x86_64", "i386"], { x86_64: "i686", i386: "../x" });
    expect(links.get("i686")).toBe("i386");
    expect(links.has("../x")).toBe(false);
  });
});
