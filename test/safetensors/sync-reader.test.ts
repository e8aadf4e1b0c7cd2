import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SafetensorsError } from "../../src/safetensors/errors.js";
import { SyncFileReader } from "../../src/safetensors/source-node.js";

const dir = mkdtempSync(join(tmpdir(), "fp8kit-sync-reader-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("SyncFileReader (workers' positional reads)", () => {
  const path = join(dir, "a.safetensors");
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);
  writeFileSync(path, bytes);

  it("reads the bytes at an offset into the caller's array", () => {
    const r = new SyncFileReader(path, "a.safetensors");
    const dst = new Uint8Array(300);
    r.readInto(650, dst);
    expect(dst).toEqual(bytes.subarray(650, 950));
    r.close();
    r.close(); // closing twice is harmless
  });

  it("a file that ends first is read-failed, naming the file and the range", () => {
    const r = new SyncFileReader(path, "a.safetensors");
    try {
      expect(() => r.readInto(900, new Uint8Array(200))).toThrow(
        new SafetensorsError("read-failed", "a.safetensors: file ended after 100 of 200 bytes at 900"),
      );
    } finally {
      r.close();
    }
    expect(() => r.readInto(0, new Uint8Array(1))).toThrow(/a\.safetensors: source is closed/);
  });

  it("a missing file is not-found, naming the file", () => {
    const e = (() => {
      try {
        new SyncFileReader(join(dir, "missing.safetensors"), "missing.safetensors");
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(SafetensorsError);
    expect((e as SafetensorsError).code).toBe("not-found");
    expect((e as Error).message).toMatch(/^missing\.safetensors: cannot open/);
  });
});
