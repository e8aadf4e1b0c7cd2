import { describe, expect, it } from "vitest";
import { decode, encode, FORMAT_NAMES, type FormatName, formatInfo } from "../../src/index.js";

// Limits written out by hand from the format definitions (OCP OFP8 and MX as ml_dtypes' float8.h and
// mxfloat.h state them, Huawei CANN GE hif8_t.h for HiFloat8), not computed.
const LIMITS: Record<
  FormatName,
  { max: number; minNormal: number; minSubnormal: number; epsilon: number; emax: number }
> = {
  float8_e4m3fn: { max: 448, minNormal: 2 ** -6, minSubnormal: 2 ** -9, epsilon: 0.125, emax: 8 },
  float8_e5m2: { max: 57344, minNormal: 2 ** -14, minSubnormal: 2 ** -16, epsilon: 0.25, emax: 15 },
  float8_e4m3fnuz: { max: 240, minNormal: 2 ** -7, minSubnormal: 2 ** -10, epsilon: 0.125, emax: 7 },
  float8_e5m2fnuz: { max: 57344, minNormal: 2 ** -15, minSubnormal: 2 ** -17, epsilon: 0.25, emax: 15 },
  float8_e8m0fnu: { max: 2 ** 127, minNormal: 2 ** -127, minSubnormal: 2 ** -127, epsilon: 1, emax: 127 },
  float6_e2m3fn: { max: 7.5, minNormal: 1, minSubnormal: 0.125, epsilon: 0.125, emax: 2 },
  float6_e3m2fn: { max: 28, minNormal: 0.25, minSubnormal: 0.0625, epsilon: 0.25, emax: 4 },
  float4_e2m1fn: { max: 6, minNormal: 1, minSubnormal: 0.5, epsilon: 0.5, emax: 2 },
  hifloat8: { max: 32768, minNormal: 2 ** -15, minSubnormal: 2 ** -22, epsilon: 0.125, emax: 15 },
  bfloat16: {
    max: 3.3895313892515355e38,
    minNormal: 2 ** -126,
    minSubnormal: 2 ** -133,
    epsilon: 2 ** -7,
    emax: 127,
  },
  float16: { max: 65504, minNormal: 2 ** -14, minSubnormal: 2 ** -24, epsilon: 2 ** -10, emax: 15 },
};

const SPECIALS: Record<FormatName, { inf: [number, number] | null; nan: number[]; negZero: boolean }> = {
  float8_e4m3fn: { inf: null, nan: [0x7f, 0xff], negZero: true },
  float8_e5m2: { inf: [0x7c, 0xfc], nan: [0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff], negZero: true },
  float8_e4m3fnuz: { inf: null, nan: [0x80], negZero: false },
  float8_e5m2fnuz: { inf: null, nan: [0x80], negZero: false },
  float8_e8m0fnu: { inf: null, nan: [0xff], negZero: false },
  float6_e2m3fn: { inf: null, nan: [], negZero: true },
  float6_e3m2fn: { inf: null, nan: [], negZero: true },
  float4_e2m1fn: { inf: null, nan: [], negZero: true },
  hifloat8: { inf: [0x6f, 0xef], nan: [0x80], negZero: false },
  bfloat16: { inf: [0x7f80, 0xff80], nan: [], negZero: true },
  float16: { inf: [0x7c00, 0xfc00], nan: [], negZero: true },
};

describe("limits table", () => {
  it("lists every format", () => {
    expect(Object.keys(LIMITS).sort()).toEqual([...FORMAT_NAMES].sort());
  });
  for (const name of FORMAT_NAMES) {
    it(`${name}: max, min normal, min subnormal, epsilon, emax`, () => {
      const info = formatInfo(name);
      const want = LIMITS[name];
      expect(info.max).toBe(want.max);
      expect(info.minNormal).toBe(want.minNormal);
      expect(info.minSubnormal).toBe(want.minSubnormal);
      expect(info.epsilon).toBe(want.epsilon);
      expect(info.emax).toBe(want.emax);
      expect(
        decode(
          name,
          name === "bfloat16" || name === "float16"
            ? new Uint16Array([info.maxCode])
            : new Uint8Array([info.maxCode]),
        )[0],
      ).toBe(want.max);
    });
    it(`${name}: Inf, NaN and zero codes`, () => {
      const info = formatInfo(name);
      const want = SPECIALS[name];
      expect(info.infCodes).toEqual(want.inf);
      if (info.bits === 16) {
        // 2 * (2^M - 1) NaN codes; spot-check rather than list them
        expect(info.nanCodes.length).toBe(2 * (2 ** info.mantissaBits - 1));
      } else {
        expect([...info.nanCodes]).toEqual(want.nan);
      }
      expect(info.hasNegativeZero).toBe(want.negZero);
    });
  }
});

describe("exhaustive round trip of every code", () => {
  for (const name of FORMAT_NAMES) {
    const info = formatInfo(name);
    it(`${name}: encode(decode(c)) === c for every non-NaN code (${info.codeCount} codes)`, () => {
      const wide = info.bits === 16;
      const codes = wide
        ? Uint16Array.from({ length: info.codeCount }, (_, i) => i)
        : Uint8Array.from({ length: info.codeCount }, (_, i) => i);
      const values = decode(name, codes);
      const back = encode(name, values);
      const back64 = encode(name, Float64Array.from(values));
      for (let c = 0; c < info.codeCount; c++) {
        if (Number.isNaN(values[c])) {
          expect(info.nanCodes.includes(back[c]) || !info.hasNaN, `${name} NaN code ${c}`).toBe(true);
          continue;
        }
        expect(back[c], `${name} code ${c} (${values[c]})`).toBe(c);
        expect(back64[c], `${name} code ${c} via float64`).toBe(c);
      }
    });
  }
});
