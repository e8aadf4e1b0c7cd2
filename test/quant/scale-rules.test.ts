import { describe, expect, it } from "vitest";
import {
  amaxScale,
  ceilScaleExponent,
  deepseekScaleExponent,
  evenScaleExponent,
  floorScaleExponent,
  nvfp4GlobalScale,
  nvfp4ScaleCode,
  rceilScaleExponent,
} from "../../src/quant/index.js";

/*
 * Expected exponents worked out by hand from the source definitions named on each line:
 *   floor (torchao FLOOR): k = E(amax) - 127 - emax, clamped to [-127, 127]; non-finite -> NaN.
 *   ceil  (torchao CEIL):  as floor, +1 if the mantissa field M(amax) != 0.
 *   even  (torchao EVEN):  bits += 1 << (22 - mbits); bits &= 0xFF800000; then floor.
 *   rceil (cuBLAS/TE/torchao RCEIL): d = fl32(amax * fl32(1/max)); byte = E(d) + (M(d) != 0)
 *          (subnormal d: + (M > 0x400000)); k = byte - 127; non-finite -> NaN.
 *   deepseek (DeepGEMM ceil_to_ue8m0): s = fl32(max(amax, fl32(1e-4)) / max);
 *          e = E(s) + (M(s) != 0) clamped to [1, 254]; k = e - 127.
 * E4M3: emax 8, max 448 = 1.75 * 2^8, mbits 3 (EVEN adds 1 << 19 = 0x80000).
 *   448:    E=135, M=0x600000 (0.75).      floor 0, ceil 1, even: 0x680000 no carry -> 0.
 *           rceil: 448 * fl32(1/448) = 1.0 exactly (bits 0x3F800000) -> 0. deepseek: 448/448 = 1 -> 0.
 *   449:    E=135, M=0x608000.             floor 0, ceil 1, even 0x688000 -> 0;
 *           rceil: 449 * fl32(1/448) = 0x3F804925 (> 1, M != 0) -> 1; deepseek: 449/448 > 1 -> 1.
 *   464:    1.8125 * 2^8, M=0x680000.      floor 0, ceil 1, even 0x700000 -> 0, rceil 1, deepseek 1.
 *   496:    1.9375 * 2^8, M=0x780000.      even: 0x780000 + 0x80000 = 0x800000 carries -> 1 (EVEN's tie).
 *   511.99: fl32 = 511.989990234375, M=0x7FFD71. floor 0, ceil 1, even carries -> 1, rceil 1, deepseek 1.
 *   512:    E=136, M=0.                    floor 1, ceil 1, even 1; rceil: 512 * fl32(1/448)
 *           = 0x3F924925 -> 128 -> 1; deepseek: 512/448 = 1.142857 -> 1.
 *   0:      E=0: floor 0-127-8 = -135 -> clamp -127; ceil -127; even (0 + 0x80000) & mask = 0 -> -127;
 *           rceil d = 0 -> byte 0 -> -127; deepseek: fl32(1e-4)/448 = 2.2321429e-7, between 2^-23 and
 *           2^-22 -> -22 (FORMATS §8 item 9: byte 105).
 *   1e-40:  float32 subnormal (E=0, M=0x116C2): floor -127; ceil 1-127-8 -> -127; even: M+0x80000
 *           stays below 0x800000 -> -127; rceil: d = 2.2e-43 (M <= 0x400000) -> byte 0 -> -127;
 *           deepseek: the 1e-4 floor -> -22.
 *   Inf:    floor/ceil/even/rceil NaN (torchao: non-finite amax -> 0xFF); deepseek: E=255 -> clamp 254 -> 127.
 *   NaN:    same as Inf (DeepGEMM's bits of NaN have E=255, M != 0 -> 256 -> 254).
 * E2M1: emax 2, max 6 = 1.5 * 2^2, mbits 1 (EVEN adds 1 << 21 = 0x200000).
 *   6:   E=129, M=0x400000.  floor 0, ceil 1, even 0x600000 -> 0, rceil 6 * fl32(1/6) = 1.0 -> 0, deepseek 0.
 *   7:   M=0x600000.         floor 0 (X = 1: 7 clips to 6, FORMATS §8 item 8), ceil 1,
 *        even 0x800000 carries -> 1, rceil 7 * fl32(1/6) = 0x3F955556 -> 1, deepseek 7/6 -> 1.
 *   7.5: M=0x700000.         floor 0, ceil 1, even 1, rceil 0x3FA00000 -> 1, deepseek 1.
 *   8:   E=130, M=0.         floor 1, ceil 1, even 1, rceil 8 * fl32(1/6) = 0x3FAAAAAB -> 1, deepseek 1.
 *   0:   floor 0-127-2 -> -127; rceil -127; deepseek fl32(1e-4)/6 = 1.6667e-5 in (2^-16, 2^-15] -> -15.
 */
type Row = [amax: number, floor: number, ceil: number, even: number, rceil: number, deepseek: number];
const NaN_ = Number.NaN;
const e4m3: Row[] = [
  [448, 0, 1, 0, 0, 0],
  [449, 0, 1, 0, 1, 1],
  [464, 0, 1, 0, 1, 1],
  [480, 0, 1, 0, 1, 1],
  [496, 0, 1, 1, 1, 1],
  [511.99, 0, 1, 1, 1, 1],
  [512, 1, 1, 1, 1, 1],
  [1, -8, -8, -8, -8, -8],
  [0, -127, -127, -127, -127, -22],
  [1e-40, -127, -127, -127, -127, -22],
  [Number.POSITIVE_INFINITY, NaN_, NaN_, NaN_, NaN_, 127],
  [NaN_, NaN_, NaN_, NaN_, NaN_, 127],
];
const e2m1: Row[] = [
  [6, 0, 1, 0, 0, 0],
  [7, 0, 1, 1, 1, 1],
  [7.5, 0, 1, 1, 1, 1],
  [8, 1, 1, 1, 1, 1],
  [0, -127, -127, -127, -127, -15],
  [Number.POSITIVE_INFINITY, NaN_, NaN_, NaN_, NaN_, 127],
  [NaN_, NaN_, NaN_, NaN_, NaN_, 127],
];

describe("power-of-two scale rules", () => {
  for (const [element, rows] of [
    ["float8_e4m3fn", e4m3],
    ["float4_e2m1fn", e2m1],
  ] as const) {
    for (const [amax, floor, ceil, even, rceil, deepseek] of rows) {
      it(`${element} amax ${amax}`, () => {
        expect(floorScaleExponent(amax, element)).toBe(floor);
        expect(ceilScaleExponent(amax, element)).toBe(ceil);
        expect(evenScaleExponent(amax, element)).toBe(even);
        expect(rceilScaleExponent(amax, element)).toBe(rceil);
        expect(deepseekScaleExponent(amax, element)).toBe(deepseek);
      });
    }
  }

  it("E5M2 (emax 15, max 57344): floor/ceil/rceil at 57344 and 61440", () => {
    // 57344 = 1.75 * 2^15: floor 0, ceil 1, rceil 57344 * fl32(1/57344) = 1 -> 0.
    expect(floorScaleExponent(57344, "float8_e5m2")).toBe(0);
    expect(ceilScaleExponent(57344, "float8_e5m2")).toBe(1);
    expect(rceilScaleExponent(57344, "float8_e5m2")).toBe(0);
    // 65536 = 2^16: floor 1.
    expect(floorScaleExponent(65536, "float8_e5m2")).toBe(1);
  });

  it("clamps to E8M0's range: huge amax, and the rceil subnormal threshold", () => {
    // FLT_MAX: E=254 -> floor 254-127-8 = 119.
    expect(floorScaleExponent(3.4028234663852886e38, "float8_e4m3fn")).toBe(119);
    // EVEN rounds FLT_MAX up to Inf bits -> NaN (torchao tests finiteness after rounding).
    expect(evenScaleExponent(3.4028234663852886e38, "float8_e4m3fn")).toBeNaN();
    // rceil: descale 2^-127 exactly (subnormal, M = 0x400000) stays at byte 0; just above goes to 1.
    const amaxAt = (d: number) => d * 448; // 448 * fl32(1/448) == 1 exactly, so amax*rcp ~ d
    expect(rceilScaleExponent(amaxAt(2 ** -127), "float8_e4m3fn")).toBe(-127);
    expect(rceilScaleExponent(amaxAt(2 ** -126), "float8_e4m3fn")).toBe(-126);
  });

  it("deepseek never leaves [-126, 127] and honours a custom amax floor", () => {
    expect(deepseekScaleExponent(0, "float8_e4m3fn", 1e-30)).toBe(Math.ceil(Math.log2(1e-30 / 448)));
    expect(deepseekScaleExponent(1e-45, "float8_e4m3fn", 1e-45)).toBe(-126);
  });
});

describe("amax rule (DeepSeek-V3)", () => {
  it("divides in float32 and floors amax at fl32(1e-4)", () => {
    expect(amaxScale(448, "float8_e4m3fn")).toBe(1);
    expect(amaxScale(449, "float8_e4m3fn")).toBe(Math.fround(449 / 448));
    // All-zero block: FORMATS §8 item 9: 2.2321429e-07.
    expect(amaxScale(0, "float8_e4m3fn")).toBe(Math.fround(Math.fround(1e-4) / 448));
    expect(amaxScale(0, "float8_e4m3fn")).toBeCloseTo(2.2321429e-7, 13);
    expect(amaxScale(Number.POSITIVE_INFINITY, "float8_e4m3fn")).toBe(Number.POSITIVE_INFINITY);
    expect(amaxScale(Number.NaN, "float8_e4m3fn")).toBeNaN();
  });
});

describe("NVFP4 scale (torchao)", () => {
  it("single level: E4M3(clamp(amax/6, 2^-6, 448))", () => {
    expect(nvfp4ScaleCode(6)).toBe(0x38); // 1.0 = 0.0111.000
    expect(nvfp4ScaleCode(0)).toBe(0x08); // clamped to 2^-6 = 0.0001.000
    expect(nvfp4ScaleCode(3000)).toBe(0x7e); // 500 clamps to 448
    expect(nvfp4ScaleCode(6 * 1.0625)).toBe(0x38); // 1.0625 is the tie 1 / 1.125: even mantissa -> 1.0
    expect(nvfp4ScaleCode(6 * 1.1)).toBe(0x39); // nearer 1.125
  });
  it("two level: global = amax/2688, block = (amax/6)/global", () => {
    const g = nvfp4GlobalScale(2688);
    expect(g).toBe(1);
    expect(nvfp4ScaleCode(6, g)).toBe(0x38);
    expect(nvfp4ScaleCode(2688, g)).toBe(0x7e);
    expect(nvfp4GlobalScale(100)).toBe(Math.fround(100 / 2688));
  });
});
