import { describe, expect, it } from "vitest";
import { DTYPES, dtypeBits } from "../../src/safetensors/dtypes.js";
import { SafetensorsError } from "../../src/safetensors/errors.js";
import { MAX_HEADER_SIZE } from "../../src/safetensors/limits.js";
import { SafetensorsFile } from "../../src/safetensors/reader.js";
import { BlobSource, BufferSource } from "../../src/safetensors/source.js";
import { viewAs } from "../../src/safetensors/views.js";
import { rawFile } from "./helpers.js";

async function open(bytes: Uint8Array, name = "t.safetensors") {
  return SafetensorsFile.open(new BufferSource(bytes, name));
}

async function code(bytes: Uint8Array): Promise<string> {
  try {
    await open(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    expect((e as Error).message.startsWith("t.safetensors: ")).toBe(true);
    return (e as SafetensorsError).code;
  }
  return "ok";
}

const t = (name: string, dtype: string, shape: unknown, offsets: unknown) =>
  `${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: offsets })}`;

describe("header validation (the reference's error list)", () => {
  const cases: [string, Uint8Array, string][] = [
    ["file shorter than 8 bytes", new Uint8Array(5), "header-too-small"],
    ["empty file", new Uint8Array(0), "header-too-small"],
    [
      "header length over the limit",
      (() => {
        const b = new Uint8Array(16);
        new DataView(b.buffer).setBigUint64(0, BigInt(MAX_HEADER_SIZE + 1), true);
        return b;
      })(),
      "header-too-large",
    ],
    [
      "header length u64 with high bits",
      (() => {
        const b = new Uint8Array(16);
        new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true);
        return b;
      })(),
      "header-too-large",
    ],
    ["header length past the end", rawFile("{}").subarray(0, 9), "invalid-header-length"],
    ["invalid UTF-8", rawFile('{"\xff":1}'.replace("\xff", "")).fill(0xff, 10, 11), "invalid-utf8"],
    ["invalid JSON", rawFile("{not json}"), "invalid-json"],
    [
      "header not starting with {",
      rawFile(' {"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1),
      "invalid-header-start",
    ],
    ["header is an array", rawFile("[1]"), "invalid-header-start"],
    ["unknown dtype", rawFile(`{${t("a", "F8", [1], [0, 1])}}`, 1), "unknown-dtype"],
    ["lowercase dtype", rawFile(`{${t("a", "f32", [1], [0, 4])}}`, 4), "unknown-dtype"],
    [
      "non-string metadata value",
      rawFile(`{"__metadata__":{"a":1},${t("x", "U8", [1], [0, 1])}}`, 1),
      "invalid-metadata",
    ],
    ["metadata not an object", rawFile(`{"__metadata__":"x"}`), "invalid-metadata"],
    [
      "duplicate tensor names",
      rawFile(`{${t("a", "U8", [1], [0, 1])},${t("a", "U8", [1], [1, 2])}}`, 2),
      "duplicate-key",
    ],
    [
      "duplicate via escapes",
      rawFile(`{${t("a", "U8", [1], [0, 1])},"\\u0061":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2),
      "duplicate-key",
    ],
    [
      "duplicate key inside an entry",
      rawFile(`{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1),
      "duplicate-key",
    ],
    ["duplicate metadata key", rawFile(`{"__metadata__":{"k":"1","k":"2"}}`), "duplicate-key"],
    [
      "overlapping offsets",
      rawFile(`{${t("a", "U8", [2], [0, 2])},${t("b", "U8", [2], [1, 3])}}`, 3),
      "invalid-offset",
    ],
    [
      "gap between tensors",
      rawFile(`{${t("a", "U8", [1], [0, 1])},${t("b", "U8", [1], [2, 3])}}`, 3),
      "invalid-offset",
    ],
    ["not starting at 0", rawFile(`{${t("a", "U8", [1], [1, 2])}}`, 2), "invalid-offset"],
    ["end before begin", rawFile(`{${t("a", "U8", [0], [1, 0])}}`, 1), "invalid-offset"],
    ["offsets not two numbers", rawFile(`{${t("a", "U8", [1], [0])}}`, 1), "invalid-offset"],
    ["trailing bytes after the data", rawFile(`{${t("a", "U8", [1], [0, 1])}}`, 2), "incomplete-buffer"],
    ["data shorter than the offsets", rawFile(`{${t("a", "U8", [4], [0, 4])}}`, 2), "incomplete-buffer"],
    ["byte length not elements x size", rawFile(`{${t("a", "F32", [2], [0, 4])}}`, 4), "invalid-tensor-info"],
    ["odd F4 element count", rawFile(`{${t("a", "F4", [3], [0, 2])}}`, 2), "misaligned-slice"],
    ["F6 count not whole bytes", rawFile(`{${t("a", "F6_E2M3", [3], [0, 3])}}`, 3), "misaligned-slice"],
    ["negative dim", rawFile(`{${t("a", "U8", [-1], [0, 0])}}`), "invalid-json"],
    ["float dim", rawFile(`{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}`, 1), "invalid-json"],
    ["exponent dim", rawFile(`{"a":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}`, 1), "invalid-json"],
    ["huge dim", rawFile(`{${t("a", "U8", [2 ** 60], [0, 1])}}`, 1), "invalid-shape"],
    [
      "overflowing product",
      rawFile(`{${t("a", "U8", [2 ** 40, 2 ** 40, 0], [0, 0])}}`),
      "validation-overflow",
    ],
    ["string dim", rawFile(`{${t("a", "U8", ["1"], [0, 1])}}`, 1), "invalid-shape"],
    ["shape not an array", rawFile(`{${t("a", "U8", 1, [0, 1])}}`, 1), "invalid-shape"],
    [
      "extra key in a tensor entry",
      rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`, 1),
      "invalid-tensor-entry",
    ],
    ["missing key", rawFile(`{"a":{"dtype":"U8","shape":[1]}}`, 1), "invalid-tensor-entry"],
    ["entry not an object", rawFile(`{"a":[1]}`), "invalid-tensor-entry"],
  ];
  for (const [what, bytes, want] of cases) {
    it(`${what} -> ${want}`, async () => {
      expect(await code(bytes)).toBe(want);
    });
  }
});

describe("accepts what real writers produce", () => {
  it("unpadded, space-padded, with and without __metadata__", async () => {
    for (const meta of ["", `"__metadata__":{"format":"pt"},`, `"__metadata__":null,`]) {
      for (const pad of ["", "  ", "     "]) {
        const f = await open(rawFile(`{${meta}${t("w", "U8", [2], [0, 2])}}${pad}`, new Uint8Array([7, 9])));
        expect(Array.from(await f.readBytes("w"))).toEqual([7, 9]);
      }
    }
  });
  it("empty tensors, rank-0 scalars, an empty file body", async () => {
    const f = await open(rawFile(`{${t("e", "F32", [0, 4], [0, 0])},${t("s", "F64", [], [0, 8])}}`, 8));
    expect(f.get("e").numel).toBe(0);
    expect((await f.readTyped("e")).data.length).toBe(0);
    expect(f.get("s").numel).toBe(1);
    expect((await f.readTyped("s")).data).toBeInstanceOf(Float64Array);
    const empty = await open(rawFile("{}"));
    expect(empty.tensors).toEqual([]);
    expect(empty.metadata).toBeNull();
  });
  it("every dtype of the reference, with bits per element", async () => {
    expect(DTYPES).toHaveLength(22);
    let off = 0;
    const parts: string[] = [];
    for (const d of DTYPES) {
      const n = (4 * 8) / dtypeBits(d) === Math.floor((4 * 8) / dtypeBits(d)) ? (4 * 8) / dtypeBits(d) : 4;
      const bytes = (n * dtypeBits(d)) / 8;
      parts.push(t(`x.${d}`, d, [n], [off, off + bytes]));
      off += bytes;
    }
    const f = await open(rawFile(`{${parts.join(",")}}`, off));
    expect(f.tensors).toHaveLength(22);
    expect((await f.readTyped("x.I64")).data).toBeInstanceOf(BigInt64Array);
    expect((await f.readTyped("x.U64")).data).toBeInstanceOf(BigUint64Array);
    expect((await f.readTyped("x.BF16")).data).toBeInstanceOf(Uint16Array);
    expect((await f.readTyped("x.F8_E8M0")).data).toBeInstanceOf(Uint8Array);
    expect((await f.readTyped("x.F4")).data.length).toBe(4);
    expect((await f.readTyped("x.C64")).data).toBeInstanceOf(Float32Array);
  });
  it("reads only the header and the tensor asked for", async () => {
    const bytes = rawFile(`{${t("a", "U8", [1000], [0, 1000])},${t("b", "U8", [10], [1000, 1010])}}`, 1010);
    const src = new BufferSource(bytes, "t.safetensors");
    let touched = 0;
    const counting = {
      size: src.size,
      name: src.name,
      read: (o: number, n: number) => {
        touched += n;
        return src.read(o, n);
      },
    };
    const f = await SafetensorsFile.open(counting);
    expect(touched).toBe(f.dataStart);
    await f.readBytes("b");
    expect(touched).toBe(f.dataStart + 10);
  });
  it("readBytes into a reused buffer (Buffer, Blob and file sources)", async () => {
    const bytes = rawFile(
      `{${t("a", "U8", [3], [0, 3])},${t("b", "U8", [2], [3, 5])}}`,
      new Uint8Array([1, 2, 3, 4, 5]),
    );
    const into = new Uint8Array(8);
    for (const src of [
      new BufferSource(bytes, "t.safetensors"),
      new BlobSource(new Blob([bytes]), "t.safetensors"),
    ]) {
      const f = await SafetensorsFile.open(src);
      const got = await f.readBytes("b", into);
      expect(got.buffer).toBe(into.buffer);
      expect(Array.from(got)).toEqual([4, 5]);
      await expect(f.readBytes("a", new Uint8Array(2))).rejects.toThrow(
        /tensor "a": buffer of 2 bytes is smaller than the 3 to read/,
      );
    }
  });
  it("tensor-not-found names the file and tensor", async () => {
    const f = await open(rawFile("{}"));
    expect(() => f.get("nope")).toThrow(/^t\.safetensors: no tensor named "nope"/);
  });
});

describe("typed views", () => {
  it("zero-copy when aligned, copy when not", () => {
    const buf = new Uint8Array(17);
    new Float32Array(buf.buffer, 0, 4).set([1, 2, 3, 4]);
    const aligned = viewAs("F32", buf.subarray(0, 16));
    expect(aligned.buffer).toBe(buf.buffer);
    buf.copyWithin(1, 0, 16);
    const odd = viewAs("F32", buf.subarray(1, 17));
    expect(odd.buffer).not.toBe(buf.buffer);
    expect(Array.from(odd)).toEqual([1, 2, 3, 4]);
  });
});
