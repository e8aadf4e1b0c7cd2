import { describe, expect, it } from "vitest";
import { convertScales, packUe8m0Sm100, unpackUe8m0Sm100 } from "../../src/quant/index.js";
import { firstDiff } from "./reference.js";

describe("scale storage conversions", () => {
  const allE8m0 = Uint8Array.from({ length: 256 }, (_, i) => i);
  it("E8M0 -> f32 -> E8M0 and E8M0 -> BF16 -> E8M0 are lossless for all 256 bytes", () => {
    const f = convertScales(allE8m0, "ue8m0", "f32");
    expect(f.scales[0]).toBe(2 ** -127);
    expect(f.scales[254]).toBe(2 ** 127);
    expect(f.scales[255]).toBeNaN();
    expect(firstDiff(convertScales(f.scales, "f32", "ue8m0").scales, allE8m0)).toBe(-1);
    const b = convertScales(allE8m0, "ue8m0", "bf16");
    expect(b.rounded).toBe(0);
    expect(firstDiff(convertScales(b.scales, "bf16", "ue8m0").scales, allE8m0)).toBe(-1);
  });
  it("E4M3 positive codes -> f32 -> E4M3 is lossless", () => {
    const codes = Uint8Array.from({ length: 0x7f }, (_, i) => i);
    const f = convertScales(codes, "e4m3", "f32");
    expect(firstDiff(convertScales(f.scales, "f32", "e4m3").scales, codes)).toBe(-1);
  });
  it("a non-power-of-two float32 scale is an error for E8M0 unless a rounding is given", () => {
    const s = new Float32Array([0.5, 3, 0.0022321429]);
    expect(() => convertScales(s, "f32", "ue8m0")).toThrow(/scale 1 = 3 .*powers of two/);
    const ceil = convertScales(s, "f32", "ue8m0", { rounding: "ceil" });
    expect(Array.from(ceil.scales)).toEqual([126, 129, 119]); // 0.5, 4, 2^-8 = 0.00390625
    expect(ceil.rounded).toBe(2);
    expect(ceil.maxRelError).toBeCloseTo(0.00390625 / 0.0022321429 - 1, 6);
    const floor = convertScales(s, "f32", "ue8m0", { rounding: "floor" });
    expect(Array.from(floor.scales)).toEqual([126, 128, 118]);
    // nearest follows ml_dtypes: 3 = 1.5 * 2 is the tie and goes up to 4.
    expect(convertScales(new Float32Array([3, 2.5]), "f32", "ue8m0", { rounding: "nearest" }).scales).toEqual(
      new Uint8Array([129, 128]),
    );
  });
  it("f32 -> BF16 is exact or needs a rounding; E4M3 out of range is an error even with rounding", () => {
    expect(() => convertScales(new Float32Array([1 / 3]), "f32", "bf16")).toThrow(/BF16/);
    const r = convertScales(new Float32Array([1 / 3]), "f32", "bf16", { rounding: "nearest" });
    expect(r.maxRelError).toBeGreaterThan(0);
    expect(r.maxRelError).toBeLessThan(2 ** -8);
    expect(() => convertScales(new Float32Array([500]), "f32", "e4m3", { rounding: "ceil" })).toThrow(/E4M3/);
    expect(convertScales(new Float32Array([500]), "f32", "e4m3", { rounding: "floor" }).scales[0]).toBe(0x7e);
  });
});

describe("DeepGEMM SM100 packing", () => {
  // Hand-built: mn = 5, k = 6 bytes b[r][c] = 100 + 10r + c. alignedMn = align(5, 4) = 8,
  // packedK = ceil(6/4) = 2; storage [2][8] int32, MN-major; word (p, r) holds bytes c = 4p..4p+3
  // of row r, first in the lowest byte; missing k and rows 5..7 are zero.
  const bytes = new Uint8Array(30);
  for (let r = 0; r < 5; r++) for (let c = 0; c < 6; c++) bytes[r * 6 + c] = 100 + 10 * r + c;
  it("packs 4 bytes per int32 along k, MN-major, padded", () => {
    const p = packUe8m0Sm100(bytes, [5, 6]);
    expect(p.shape).toEqual([5, 2]);
    expect(p.strides).toEqual([1, 8]);
    expect(p.data.length).toBe(16);
    expect(p.data[0]).toBe(0x67666564); // row 0: 100, 101, 102, 103
    expect(p.data[4]).toBe(0x8f8e8d8c | 0); // row 4: 140..143
    expect(p.data[8]).toBe(0x00006968); // row 0, p = 1: 104, 105, pad, pad
    expect(p.data[12]).toBe(0x00009190); // row 4, p = 1: 144, 145
    expect(Array.from(p.data.subarray(5, 8))).toEqual([0, 0, 0]);
    expect(Array.from(p.data.subarray(13, 16))).toEqual([0, 0, 0]);
    expect(firstDiff(unpackUe8m0Sm100(p, 6), bytes)).toBe(-1);
  });
  it("accepts float32 powers of two and rejects other float32 scales", () => {
    const f = Float32Array.from(bytes, (b) => 2 ** (b - 127));
    expect(packUe8m0Sm100(f, [1, 5, 6]).data).toEqual(packUe8m0Sm100(bytes, [5, 6]).data);
    expect(() => packUe8m0Sm100(new Float32Array([3, 1, 1, 1]), [1, 4])).toThrow(/power of two/);
  });
});
