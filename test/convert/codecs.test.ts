import { describe, expect, it } from "vitest";
import {
  bf16FromBits,
  bitsOf,
  e2m1FromValue,
  e4m3FromBits,
  e4m3Value,
  f16FromBits,
} from "../../src/convert/codecs.js";
import { mxScaleByte } from "../../src/convert/kernels.js";
import { decode, encode } from "../../src/formats/index.js";

function sweep(): Float32Array {
  const v: number[] = [
    0,
    -0,
    448,
    464,
    464.00003,
    480,
    1e9,
    -1e9,
    2 ** -10,
    3 * 2 ** -10,
    15 * 2 ** -10,
    0.0146484375,
    65504,
    65520,
    65519.99,
    2 ** -25,
  ];
  let s = 12345;
  for (let i = 0; i < 20000; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const e = (s % 40) - 24;
    v.push((((s >>> 8) / 2 ** 24) * 2 - 1) * 2 ** e);
  }
  return Float32Array.from(v);
}

describe("convert codecs against src/formats (ml_dtypes vectors)", () => {
  const xs = sweep();
  it("E4M3 encode is RNE and saturating", () => {
    const want = encode("float8_e4m3fn", xs, { overflow: "saturate" });
    for (let i = 0; i < xs.length; i++) expect(e4m3FromBits(bitsOf(xs[i])), `x=${xs[i]}`).toBe(want[i]);
  });
  it("E4M3 closed-form decode equals the format table", () => {
    const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const table = decode("float8_e4m3fn", codes);
    for (let c = 0; c < 256; c++)
      expect(
        Object.is(e4m3Value(c), table[c]) || (Number.isNaN(e4m3Value(c)) && Number.isNaN(table[c])),
      ).toBe(true);
  });
  it("BF16 and F16 encode are RNE", () => {
    const bf = encode("bfloat16", xs);
    const h = encode("float16", xs);
    for (let i = 0; i < xs.length; i++) {
      expect(bf16FromBits(bitsOf(xs[i])), `bf16 x=${xs[i]}`).toBe(bf[i]);
      expect(f16FromBits(bitsOf(xs[i])), `f16 x=${xs[i]}`).toBe(h[i]);
    }
  });
  it("E2M1 encode is RNE and saturating", () => {
    const small = xs.map((x) => x * 2 ** 20).filter((x) => Math.abs(x) < 100);
    const want = encode("float4_e2m1fn", small);
    for (let i = 0; i < small.length; i++) expect(e2m1FromValue(small[i]), `x=${small[i]}`).toBe(want[i]);
  });
  it("MX scale rules on the FORMATS.md edge cases", () => {
    // E4M3, emax 8: floor(log2 amax) - 8; 449 -> floor 0; ceil -> 1; even: 500 rounds to 512 -> 1
    expect(mxScaleByte("floor", bitsOf(448), "float8_e4m3fn")).toBe(127);
    expect(mxScaleByte("floor", bitsOf(511.99), "float8_e4m3fn")).toBe(127);
    expect(mxScaleByte("ceil", bitsOf(449), "float8_e4m3fn")).toBe(128);
    expect(mxScaleByte("even", bitsOf(500), "float8_e4m3fn")).toBe(128);
    expect(mxScaleByte("rceil", bitsOf(448), "float8_e4m3fn")).toBe(127);
    expect(mxScaleByte("rceil", bitsOf(449), "float8_e4m3fn")).toBe(128);
    // E2M1: amax 7 -> FLOOR X=1 (clips to 6), RCEIL X=2
    expect(mxScaleByte("floor", bitsOf(7), "float4_e2m1fn")).toBe(127);
    expect(mxScaleByte("rceil", bitsOf(7), "float4_e2m1fn")).toBe(128);
    expect(mxScaleByte("floor", bitsOf(0), "float4_e2m1fn")).toBe(0);
    expect(mxScaleByte("floor", bitsOf(Number.NaN), "float4_e2m1fn")).toBe(255);
  });
});
