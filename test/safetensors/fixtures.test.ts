import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { openCheckpoint } from "../../src/safetensors/checkpoint-node.js";
import { SafetensorsError } from "../../src/safetensors/errors.js";
import { SafetensorsFile } from "../../src/safetensors/reader.js";
import { BlobSource } from "../../src/safetensors/source.js";
import { NodeFileSource } from "../../src/safetensors/source-node.js";
import { f16ToNumber, fixture, fixtureSource } from "./helpers.js";

const RANGE = [-3, -2, -1, 0, 1, 2];

describe("hf-safetensors-samples-pr84 (numpy writer, unpadded headers)", () => {
  const files: [string, string, number[]][] = [
    ["B", "U8", [253, 254, 255, 0, 1, 2]],
    ["H", "U16", [65533, 65534, 65535, 0, 1, 2]],
    ["I", "U32", [4294967293, 4294967294, 4294967295, 0, 1, 2]],
    ["b", "I8", RANGE],
    ["h", "I16", RANGE],
    ["i", "I32", RANGE],
    ["f", "F32", RANGE],
    ["d", "F64", RANGE],
  ];
  for (const [code, dtype, want] of files) {
    it(`${code}.safetensors decodes ${dtype} range(-3,3)`, async () => {
      const f = await SafetensorsFile.open(
        fixtureSource("hf-safetensors-samples-pr84", `${code}.safetensors`),
      );
      expect(f.metadata).toEqual({ test: "a" });
      expect(f.dataStart % 8).not.toBe(0);
      const t = await f.readTyped(code);
      expect(t.info.dtype).toBe(dtype);
      expect(t.info.shape).toEqual([6]);
      expect(Array.from(t.data as ArrayLike<number>)).toEqual(want);
    });
  }
  it("e.safetensors decodes F16 codes to range(-3,3)", async () => {
    const f = await SafetensorsFile.open(fixtureSource("hf-safetensors-samples-pr84", "e.safetensors"));
    const t = await f.readTyped("e");
    expect(t.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(t.data as Uint16Array, f16ToNumber)).toEqual(RANGE);
  });
  it("overall.safetensors holds all 9 tensors", async () => {
    const f = await SafetensorsFile.open(fixtureSource("hf-safetensors-samples-pr84", "overall.safetensors"));
    expect(f.tensors.map((t) => t.name).sort()).toEqual(["B", "H", "I", "b", "d", "e", "f", "h", "i"]);
    expect(Array.from((await f.readTyped("d")).data as Float64Array)).toEqual(RANGE);
    expect(Array.from((await f.readTyped("I")).data as Uint32Array)).toEqual([
      4294967293, 4294967294, 4294967295, 0, 1, 2,
    ]);
  });
});

describe("safetensors-jl-dtypes-sharded", () => {
  it("model.numpy.safetensors holds arange values", async () => {
    const f = await SafetensorsFile.open(
      fixtureSource("safetensors-jl-dtypes-sharded", "non_sharded", "model.numpy.safetensors"),
    );
    expect(f.tensors).toHaveLength(27);
    for (const t of f.tensors) {
      const { data } = await f.readTyped(t.name);
      const got = Array.from(data as ArrayLike<number | bigint>, (v) =>
        t.dtype === "F16" ? f16ToNumber(v as number) : Number(v),
      );
      const want = Array.from({ length: t.numel }, (_, i) =>
        t.dtype === "BOOL" ? i % 2 : t.dtype === "I8" || t.dtype === "U8" ? i % 256 : i,
      );
      if (t.dtype === "I8") for (let i = 0; i < want.length; i++) want[i] = ((want[i] + 128) % 256) - 128;
      expect(got, t.name).toEqual(want);
    }
  });
  it("torch files hold FP8/BF16 tensors as byte/u16 codes", async () => {
    const f = await SafetensorsFile.open(
      fixtureSource("safetensors-jl-dtypes-sharded", "non_sharded", "model.with_metadata.safetensors"),
    );
    expect(f.metadata).toEqual({ test: "metadata", version: "2.2" });
    expect(f.tensors).toHaveLength(36);
    const e4 = await f.readTyped("float8_e4m3fn_357");
    expect(e4.info.dtype).toBe("F8_E4M3");
    expect(e4.data).toBeInstanceOf(Uint8Array);
    expect(e4.data.length).toBe(105);
    // No NaN codes (0x7f / 0xff) in E4M3FN, per PROVENANCE.md.
    expect(Array.from(e4.data as Uint8Array).some((c) => (c & 0x7f) === 0x7f)).toBe(false);
    const bf = await f.readTyped("bfloat16_35");
    expect(bf.data).toBeInstanceOf(Uint16Array);
    const f16 = await f.readTyped("float16_35");
    expect(f16ToNumber((f16.data as Uint16Array)[0])).toBeCloseTo(-0.153, 3);
  });
  it("the sharded set equals the non-sharded torch file tensor by tensor; total_size 4305", async () => {
    const ck = await openCheckpoint(fixture("safetensors-jl-dtypes-sharded", "sharded"));
    const whole = await SafetensorsFile.open(
      fixtureSource("safetensors-jl-dtypes-sharded", "non_sharded", "model.safetensors"),
    );
    try {
      expect(ck.shards).toHaveLength(6);
      expect(ck.index?.totalSize).toBe(4305);
      expect(ck.totalSize).toBe(4305);
      expect(ck.tensors).toHaveLength(36);
      expect(ck.tensors.filter((t) => t.shard === "model-00001-of-00006.safetensors")).toHaveLength(19);
      for (const t of whole.tensors) {
        const c = ck.get(t.name);
        expect(c.dtype).toBe(t.dtype);
        expect(c.shape).toEqual(t.shape);
        expect(await ck.readBytes(t.name)).toEqual(await whole.readBytes(t.name));
      }
      expect(ck.shardMetadata("model-00002-of-00006.safetensors")).toEqual({ format: "pt" });
    } finally {
      await ck.close();
    }
  });
});

describe("other writers", () => {
  it("safetensors-cpp model.safetensors: two F64 tensors in [0,1)", async () => {
    const f = await SafetensorsFile.open(fixtureSource("safetensors-cpp-samples", "model.safetensors"));
    expect(f.tensors.map((t) => [t.name, t.shape])).toEqual([
      ["weight1", [8, 8]],
      ["weight2", [16, 16]],
    ]);
    for (const t of f.tensors) {
      for (const v of (await f.readTyped(t.name)).data as Float64Array) expect(v >= 0 && v < 1).toBe(true);
    }
  });
  it("safetensors-cpp abuse file is rejected with the header-length error", async () => {
    const err = await SafetensorsFile.open(
      fixtureSource("safetensors-cpp-samples", "safetensors_abuse_attempt_1.safetensors"),
    ).catch((e) => e);
    expect(err).toBeInstanceOf(SafetensorsError);
    expect(err.code).toBe("invalid-header-length");
    expect(err.message).toMatch(/^safetensors_abuse_attempt_1\.safetensors: header length 1000/);
  });
  it("hf2q unaligned F16 file decodes (copy path for odd offsets)", async () => {
    const src = await NodeFileSource.open(fixture("hf2q-tiny-f16-unaligned", "model.safetensors"));
    const f = await SafetensorsFile.open(src);
    try {
      expect(f.dataStart % 8).not.toBe(0);
      expect(f.tensors).toHaveLength(5);
      const t = await f.readTyped("model.embed_tokens.weight");
      const into = new Uint8Array(1024);
      expect(await f.readBytes("model.embed_tokens.weight", into)).toEqual(
        await f.readBytes("model.embed_tokens.weight"),
      );
      expect(t.data).toBeInstanceOf(Uint16Array);
      expect(t.data.length).toBe(256);
      for (const c of t.data as Uint16Array) expect(Number.isFinite(f16ToNumber(c))).toBe(true);
    } finally {
      await f.close();
    }
  });
  it("candle mel_filters: F32 [80,201] triangular filters", async () => {
    const f = await SafetensorsFile.open(fixtureSource("candle-example-tensors", "mel_filters.safetensors"));
    const t = await f.readTyped(f.tensors[0].name);
    expect(t.info.shape).toEqual([80, 201]);
    const d = t.data as Float32Array;
    for (let r = 0; r < 80; r++) {
      const row = d.subarray(r * 201, (r + 1) * 201);
      const nz = Array.from(row.keys()).filter((i) => row[i] !== 0);
      expect(row.every((v) => v >= 0)).toBe(true);
      expect(nz.length).toBeGreaterThan(0);
      expect(nz[nz.length - 1] - nz[0] + 1).toBe(nz.length); // one contiguous support
    }
  });
  it("compressed-tensors hadamards: 66 I8 ±1 matrices with H·Hᵀ = n·I", async () => {
    const bytes = new Uint8Array(
      readFileSync(fixture("compressed-tensors-hadamards", "hadamards.safetensors")),
    );
    const f = await SafetensorsFile.open(new BlobSource(new Blob([bytes]), "hadamards.safetensors"));
    expect(f.tensors).toHaveLength(66);
    expect(Object.keys(f.metadata!)).toHaveLength(66);
    expect(f.metadata!["224"]).toBe("had.224.pal");
    for (const t of f.tensors) {
      const n = Number(t.name);
      expect(t.shape).toEqual([n, n]);
      const h = (await f.readTyped(t.name)).data as Int8Array;
      expect(h.every((v) => v === 1 || v === -1)).toBe(true);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let k = 0; k < n; k++) s += h[i * n + k] * h[j * n + k];
          if (s !== (i === j ? n : 0)) throw new Error(`H${n} not orthogonal at ${i},${j}`);
        }
      }
    }
  });
});
