/**
 * Overflow and NaN/Inf policy of the dense targets (`BandSpec.overflow`): F16 saturates to ±65504
 * by default and writes ±Inf under `nonfinite`; `saturated` counts the clamped values and
 * `nonfinite` the NaN/Inf values of the output, on the fast path and the generic path alike. F32 is
 * exact and reports its true statistics (count, xx = xy = yy, ee = 0). Expected values are worked
 * out by hand from the E4M3 and float16 bit layouts.
 */
import { describe, expect, it } from "vitest";
import { convertBand, convertBandGeneric, fastPathOf } from "../../../src/quant/kernels/convert-band.js";
import type { EncodedBand } from "../../../src/quant/kernels/encode-band.js";
import type { BandSpec } from "../../../src/quant/kernels/types.js";

/** E4M3 by its closed form (0x7F/0xFF are NaN). */
function e4m3(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const e = (code >> 3) & 15;
  const m = code & 7;
  if (e === 15 && m === 7) return Number.NaN;
  return e === 0 ? sign * (m / 8) * 2 ** -6 : sign * (1 + m / 8) * 2 ** (e - 7);
}

/** float16 bits that are NaN or ±Inf (exponent field all ones). */
const f16NonFinite = (h: number) => (h & 0x7c00) === 0x7c00;
const f16Codes = (r: EncodedBand) => new Uint16Array(r.data.buffer, r.data.byteOffset, r.data.byteLength / 2);

/** Both paths of a spec (the fast one must apply). */
function bothPaths(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): [string, EncodedBand][] {
  expect(fastPathOf(spec, scale)).not.toBeNull();
  return [
    ["fast", convertBand(spec, data, scale)],
    ["generic", convertBandGeneric(spec, data, scale)],
  ];
}

describe("F16 overflow", () => {
  // Every E4M3 code once per row, two rows; two 128x128 blocks with scale 1000: |e4m3| >= 72 gives
  // 72000 and more, beyond 65504 (the codes 0x69..0x7E of either sign, 2 x 22 per row).
  const rows = 2;
  const cols = 256;
  const data = Uint8Array.from({ length: rows * cols }, (_, i) => i & 0xff);
  const scale = new Uint8Array(Float32Array.of(1000, 1000).buffer);
  const overflows = (c: number) => (c & 0x7f) >= 0x69 && (c & 0x7f) <= 0x7e;
  const isNaNCode = (c: number) => (c & 0x7f) === 0x7f;
  const nOverflow = rows * 44;
  const nNaN = rows * 2;
  const spec = (overflow?: "saturate" | "nonfinite"): BandSpec => ({
    source: {
      kind: "block",
      element: "float8_e4m3fn",
      packed: false,
      block: [128, 128],
      scaleStorage: "f32",
    },
    target: { kind: "plain", dtype: "F16" },
    rows,
    cols,
    ...(overflow ? { overflow } : {}),
  });

  it("saturates to ±65504 by default and under `saturate`, counting the clamped values", () => {
    for (const s of [spec(), spec("saturate")])
      for (const [path, r] of bothPaths(s, data, scale)) {
        const h = f16Codes(r);
        for (let i = 0; i < h.length; i++) {
          const c = data[i];
          if (overflows(c)) expect(h[i], `${path} code ${c}`).toBe(c & 0x80 ? 0xfbff : 0x7bff);
          else if (!isNaNCode(c)) expect(f16NonFinite(h[i]), `${path} code ${c}`).toBe(false);
        }
        expect(r.stats.saturated, path).toBe(nOverflow);
        expect(r.stats.nonfinite, path).toBe(nNaN);
        expect(r.stats.nonfinite, path).toBe(h.filter(f16NonFinite).length);
        expect(Number.isFinite(r.stats.ee) && Number.isFinite(r.stats.maxAbsErr), path).toBe(true);
        // The largest error: 448000 written as 65504.
        expect(r.stats.maxAbsErr, path).toBe(448000 - 65504);
      }
  });

  it("writes ±Inf under `nonfinite`, counted as NaN/Inf values of the output (not in the sums)", () => {
    for (const [path, r] of bothPaths(spec("nonfinite"), data, scale)) {
      const h = f16Codes(r);
      for (let i = 0; i < h.length; i++)
        if (overflows(data[i]))
          expect(h[i], `${path} code ${data[i]}`).toBe(data[i] & 0x80 ? 0xfc00 : 0x7c00);
      expect(r.stats.saturated, path).toBe(0);
      expect(r.stats.nonfinite, path).toBe(nOverflow + nNaN);
      expect(r.stats.nonfinite, path).toBe(h.filter(f16NonFinite).length);
      expect(r.stats.count, path).toBe(rows * cols - nOverflow - nNaN);
      expect(Number.isFinite(r.stats.ee) && Number.isFinite(r.stats.maxAbsErr), path).toBe(true);
    }
  });

  it("F32 input at the edge: 65504 is exact, (65504, 65520) rounds to 65504, 65520 and up overflow", () => {
    // [input, bits under saturate, bits under nonfinite, clamped under saturate, under nonfinite]
    const cases: [number, number, number, boolean, boolean][] = [
      [65504, 0x7bff, 0x7bff, false, false],
      [65505, 0x7bff, 0x7bff, true, true],
      [65519.99, 0x7bff, 0x7bff, true, true],
      [65520, 0x7bff, 0x7c00, true, false],
      [-1e6, 0xfbff, 0xfc00, true, false],
      [3e38, 0x7bff, 0x7c00, true, false],
      [Number.POSITIVE_INFINITY, 0x7c00, 0x7c00, false, false],
      [Number.NEGATIVE_INFINITY, 0xfc00, 0xfc00, false, false],
      [Number.NaN, 0x7e00, 0x7e00, false, false],
    ];
    const x = Float32Array.from(cases, (c) => c[0]);
    for (const [mode, col] of [
      ["saturate", 1],
      ["nonfinite", 2],
    ] as const) {
      const r = convertBandGeneric(
        {
          source: { kind: "plain", dtype: "F32" },
          target: { kind: "plain", dtype: "F16" },
          rows: 1,
          cols: cases.length,
          overflow: mode,
        },
        new Uint8Array(x.buffer),
        null,
      );
      const h = f16Codes(r);
      cases.forEach((c, i) => {
        expect(h[i] === c[col] || (Number.isNaN(c[0]) && (h[i] & 0x7fff) > 0x7c00), `${mode} ${c[0]}`).toBe(
          true,
        );
      });
      expect(r.stats.saturated, mode).toBe(cases.filter((c) => c[col + 2]).length);
      expect(r.stats.nonfinite, mode).toBe(h.filter(f16NonFinite).length);
    }
  });
});

describe("BF16 overflow", () => {
  it("rounds beyond-range values to ±Inf, counted as NaN/Inf of the output", () => {
    // 3.4e38 rounds up past the largest BF16 (0x7F7F); 3.39e38 rounds down to it.
    const x = Float32Array.of(3.4e38, -3.4e38, 3.39e38, 1);
    const r = convertBandGeneric(
      { source: { kind: "plain", dtype: "F32" }, target: { kind: "plain", dtype: "BF16" }, rows: 1, cols: 4 },
      new Uint8Array(x.buffer),
      null,
    );
    expect([...new Uint16Array(r.data.buffer, r.data.byteOffset, 4)]).toEqual([
      0x7f80, 0xff80, 0x7f7f, 0x3f80,
    ]);
    expect(r.stats).toMatchObject({ nonfinite: 2, count: 2, saturated: 0 });
    expect(Number.isFinite(r.stats.ee)).toBe(true);
  });
});

describe("F32 statistics", () => {
  it("are the true ones: count of finite values, xx = xy = yy = sum x^2, ee = 0", () => {
    const rows = 130;
    const cols = 260;
    const data = Uint8Array.from({ length: rows * cols }, (_, i) => (i * 37) & 0xff);
    const scales = Float32Array.of(0.5, 3, 0.01, 7, 1e-3, 2);
    const spec: BandSpec = {
      source: {
        kind: "block",
        element: "float8_e4m3fn",
        packed: false,
        block: [128, 128],
        scaleStorage: "f32",
      },
      target: { kind: "plain", dtype: "F32" },
      rows,
      cols,
    };
    let count = 0;
    let xx = 0;
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const v = Math.fround(
          e4m3(data[r * cols + c]) * scales[Math.floor(r / 128) * 3 + Math.floor(c / 128)],
        );
        if (Number.isNaN(v)) continue;
        count++;
        xx += v * v;
      }
    for (const [path, res] of bothPaths(spec, data, new Uint8Array(scales.buffer))) {
      const s = res.stats;
      expect(s.count, path).toBe(count);
      expect(s.nonfinite, path).toBe(rows * cols - count);
      for (const k of ["xx", "xy", "yy"] as const) expect(s[k] / xx, `${path} ${k}`).toBeCloseTo(1, 12);
      expect(s.ee, path).toBe(0);
      expect(s.maxAbsErr, path).toBe(0);
    }
  });
});
