/**
 * The one classification of scale values (src/quant/scale-check.ts) against closed forms worked
 * out by hand: all 256 E8M0 bytes for each element format, float32 edge values, block coordinates.
 */
import { describe, expect, it } from "vitest";
import { decode } from "../../src/formats/index.js";
import {
  blockCoordinate,
  checkScales,
  emptyScaleCheck,
  formatScale,
  type ScaleProblem,
  scaleProblem,
} from "../../src/quant/scale-check.js";

describe("checkScales", () => {
  it("every E8M0 byte: 0xFF NaN, 0 (2^-127) subnormal, 2^k overflowing once 2^k x max >= 2^128", () => {
    // 2^k x 448 = 1.75 x 2^(k+8): overflows iff k + 8 >= 128 (k >= 120, byte 247). 57344 = 1.75 x 2^15:
    // k >= 113 (byte 240). 6 = 1.5 x 2^2: k >= 126 (byte 253).
    const firstOverflow = { float8_e4m3fn: 247, float8_e5m2: 240, float4_e2m1fn: 253 } as const;
    const bytes = Uint8Array.from({ length: 256 }, (_, b) => b);
    const values = decode("float8_e8m0fnu", bytes);
    for (const [element, over] of Object.entries(firstOverflow) as [keyof typeof firstOverflow, number][]) {
      const c = checkScales(values, element);
      expect(c.problems.nan).toMatchObject({ count: 1, first: 255 });
      expect(c.problems.subnormal).toMatchObject({ count: 1, first: 0, firstValue: 2 ** -127 });
      expect(c.problems.overflow).toMatchObject({
        count: 255 - over,
        first: over,
        firstValue: 2 ** (over - 127),
      });
      for (const p of ["inf", "zero", "negative"] as const) expect(c.problems[p].count).toBe(0);
      expect(c).toMatchObject({ scales: 256, errors: 1 + 255 - over, warnings: 1 });
    }
  });

  it("float32 values: each kind, and the overflow limit of E4M3 to the last bit", () => {
    // fl32(s x 448) is finite iff s x 448 < 2^128 - 2^103 (half an ulp above float32's largest).
    const limit = (2 ** 128 - 2 ** 103) / 448;
    const below = new Float32Array([limit]);
    const bits = new Uint32Array(below.buffer);
    if (below[0] >= limit) bits[0]--;
    const above = new Float32Array([below[0]]);
    new Uint32Array(above.buffer)[0]++;
    const cases: [number, ScaleProblem | null][] = [
      [1, null],
      [2 ** -126, null],
      [below[0], null],
      [above[0], "overflow"],
      [3e38, "overflow"],
      [2 ** -127, "subnormal"],
      [2 ** -149, "subnormal"],
      [0, "zero"],
      [-0, "zero"],
      [-1e-40, "negative"],
      [-3e38, "negative"],
      [Number.NaN, "nan"],
      [Number.NEGATIVE_INFINITY, "inf"],
      [Number.POSITIVE_INFINITY, "inf"],
    ];
    for (const [v, want] of cases) {
      expect(scaleProblem(v, 448), String(v)).toBe(want);
      const c = checkScales(Float32Array.of(1, v), "float8_e4m3fn");
      expect(c.errors + c.warnings, String(v)).toBe(want === null ? 0 : 1);
      if (want) expect(c.problems[want].first).toBe(1);
    }
  });

  it("adds chunks into one check, with their offset", () => {
    const c = emptyScaleCheck();
    checkScales(Float32Array.of(1, 2), "float8_e4m3fn", c, 0);
    checkScales(Float32Array.of(3, 0, 0), "float8_e4m3fn", c, 2);
    expect(c.scales).toBe(5);
    expect(c.problems.zero).toMatchObject({ count: 2, first: 3, firstValue: 0 });
  });

  it("block coordinates and shortest float32 text", () => {
    expect(blockCoordinate(4, [2, 3])).toEqual([1, 1]);
    expect(blockCoordinate(13, [2, 2, 4])).toEqual([1, 1, 1]);
    expect(blockCoordinate(0, [])).toEqual([]);
    expect(formatScale(Math.fround(3e38))).toBe("3e+38");
    expect(formatScale(Math.fround(0.1))).toBe("0.1");
    expect(formatScale(-0)).toBe("-0");
    expect(formatScale(Number.NaN)).toBe("NaN");
  });
});
