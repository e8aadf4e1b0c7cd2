/**
 * Decoding the quantized sources (block scales in every storage, NVFP4 two-level scales both ways,
 * per-tensor FP8, packed FP4) against an independent reference: element and scale values from the
 * codec's `decode`, the products in float32 with Math.fround, BF16 by the codec's `encode`.
 */
import { describe, expect, it } from "vitest";
import { decode, encode, type FormatName } from "../../../src/formats/index.js";
import { seededUniform } from "../../../src/formats/prng.js";
import { convertBand } from "../../../src/quant/kernels/convert-band.js";
import type { BandSpec, SourceCodec } from "../../../src/quant/kernels/types.js";
import { firstDiff } from "../reference.js";

const rand = seededUniform(11);
const bytes = (n: number, max = 256) => Uint8Array.from({ length: n }, () => Math.floor(rand() * max));

const SCALE_FORMAT: Record<string, FormatName> = {
  ue8m0: "float8_e8m0fnu",
  e4m3: "float8_e4m3fn",
  bf16: "bfloat16",
  f16: "float16",
};

/** Float32 values of `n` stored scales. */
function scaleValues(storage: string, b: Uint8Array, n: number): Float32Array {
  if (storage === "f32") return new Float32Array(b.buffer, b.byteOffset, n);
  const f = SCALE_FORMAT[storage];
  return decode(f, storage === "bf16" || storage === "f16" ? new Uint16Array(b.buffer, b.byteOffset, n) : b);
}

/** Element codes of a band, one per element (packed: element 2i in the low nibble of byte i). */
function elementCodes(src: SourceCodec, data: Uint8Array, n: number): Uint8Array {
  if (src.kind !== "block" || !src.packed) return data.subarray(0, n);
  return Uint8Array.from({ length: n }, (_, i) => (i % 2 === 0 ? data[i >> 1] & 15 : data[i >> 1] >> 4));
}

/** The reference values: fl32(decode(code) * s_eff), s_eff = s, fl32(s * t) or fl32(s / t). */
function reference(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): Float32Array {
  const { source: src, rows, cols } = spec;
  if (src.kind === "plain" || src.kind === "int-channel") throw new Error(src.kind);
  const n = rows * cols;
  const x = decode(src.element, elementCodes(src, data, n));
  const t = Math.fround(spec.tensorScale ?? 1);
  const out = new Float32Array(n);
  if (src.kind === "tensor") {
    for (let i = 0; i < n; i++) out[i] = Math.fround(x[i] * t);
    return out;
  }
  const [br, bc] = src.block;
  const sc = Math.ceil(cols / bc);
  const s = scaleValues(src.scaleStorage, scale!, Math.ceil(rows / br) * sc);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      let sv = s[Math.floor(r / br) * sc + Math.floor(c / bc)];
      if (src.tensorScale === "multiply") sv = Math.fround(sv * t);
      if (src.tensorScale === "divide") sv = Math.fround(sv / t);
      out[r * cols + c] = Math.fround(x[r * cols + c] * sv);
    }
  return out;
}

/** Finite, positive scale bytes of a storage. */
function scaleBytes(storage: string, n: number): Uint8Array {
  switch (storage) {
    case "f32":
      return new Uint8Array(Float32Array.from({ length: n }, () => Math.fround(rand() * 0.02 + 1e-5)).buffer);
    case "ue8m0":
      return bytes(n, 40).map((b) => b + 100);
    case "e4m3":
      return bytes(n, 0x7e).map((b) => b + 1);
    default: {
      const exp = storage === "bf16" ? 119 << 7 : 7 << 10;
      return new Uint8Array(Uint16Array.from({ length: n }, () => exp | Math.floor(rand() * 0x7f)).buffer);
    }
  }
}

const cases: { name: string; source: SourceCodec; tensorScale?: number }[] = [
  {
    name: "NVFP4, ModelOpt weight_scale_2",
    source: {
      kind: "block",
      element: "float4_e2m1fn",
      packed: true,
      block: [1, 16],
      scaleStorage: "e4m3",
      tensorScale: "multiply",
    },
    tensorScale: 0.0021,
  },
  {
    name: "NVFP4, compressed-tensors weight_global_scale",
    source: {
      kind: "block",
      element: "float4_e2m1fn",
      packed: true,
      block: [1, 16],
      scaleStorage: "e4m3",
      tensorScale: "divide",
    },
    tensorScale: 480.3,
  },
  {
    name: "MXFP4",
    source: { kind: "block", element: "float4_e2m1fn", packed: true, block: [1, 32], scaleStorage: "ue8m0" },
  },
  {
    name: "E5M2 blocks, float32 scales",
    source: { kind: "block", element: "float8_e5m2", packed: false, block: [128, 128], scaleStorage: "f32" },
  },
  {
    name: "E4M3 blocks, F16 scales",
    source: { kind: "block", element: "float8_e4m3fn", packed: false, block: [1, 64], scaleStorage: "f16" },
  },
  {
    name: "E4M3 blocks, BF16 scales",
    source: { kind: "block", element: "float8_e4m3fn", packed: false, block: [32, 32], scaleStorage: "bf16" },
  },
  { name: "per-tensor E4M3", source: { kind: "tensor", element: "float8_e4m3fn" }, tensorScale: 0.0173 },
  { name: "per-tensor E5M2", source: { kind: "tensor", element: "float8_e5m2" }, tensorScale: 3.1 },
];

describe("quantized sources decode as fl32(decode(code) * s_eff)", () => {
  for (const { name, source, tensorScale } of cases) {
    it(name, () => {
      const [rows, cols] = [130, 192];
      const packed = source.kind === "block" && source.packed;
      const data = bytes(packed ? (rows * cols) / 2 : rows * cols);
      const scale =
        source.kind === "block"
          ? scaleBytes(
              source.scaleStorage,
              Math.ceil(rows / source.block[0]) * Math.ceil(cols / source.block[1]),
            )
          : null;
      const spec = (dtype: "F32" | "BF16"): BandSpec => ({
        source,
        target: { kind: "plain", dtype },
        rows,
        cols,
        tensorScale,
      });
      const want = reference(spec("F32"), data, scale);
      const f32 = convertBand(spec("F32"), data, scale);
      expect(firstDiff(new Float32Array(f32.data.buffer, f32.data.byteOffset, rows * cols), want)).toBe(-1);
      const bf16 = convertBand(spec("BF16"), data, scale);
      const wantBf16 = encode("bfloat16", want) as Uint16Array;
      expect(firstDiff(new Uint16Array(bf16.data.buffer, bf16.data.byteOffset, rows * cols), wantBf16)).toBe(
        -1,
      );
    });
  }

  it("packed FP4: element 2i is the low nibble, 2i + 1 the high nibble", () => {
    const spec: BandSpec = {
      source: { kind: "block", element: "float4_e2m1fn", packed: true, block: [1, 16], scaleStorage: "e4m3" },
      target: { kind: "plain", dtype: "F32" },
      rows: 1,
      cols: 16,
    };
    // Codes 1 (0.5) and 0xA (-1) in byte 0, 7 (6) and 2 (1) in byte 1; scale E4M3 0x38 = 1.
    const data = new Uint8Array(8);
    data[0] = 0xa1;
    data[1] = 0x27;
    const r = convertBand(spec, data, new Uint8Array([0x38]));
    expect(Array.from(new Float32Array(r.data.buffer, r.data.byteOffset, 4))).toEqual([0.5, -1, 6, 1]);
  });

  it("a source with a per-tensor scale needs its value", () => {
    const spec: BandSpec = {
      source: { kind: "tensor", element: "float8_e4m3fn" },
      target: { kind: "plain", dtype: "BF16" },
      rows: 1,
      cols: 4,
    };
    expect(() => convertBand(spec, new Uint8Array(4), null)).toThrow(/per-tensor scale/);
  });
});
