import { describe, expect, it } from "vitest";
import { decode, encode, type FormatName, formatInfo } from "../../src/index.js";
import { rng } from "./helpers.js";

const E2M1 = new Float32Array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -1.75, 7, 100]);

describe("rounding modes (E2M1 ties: ml_dtypes RNE, microxcaling half-away, DeepGEMM toward zero)", () => {
  it("E2M1 ties under RNE (ml_dtypes)", () => {
    expect(Array.from(decode("float4_e2m1fn", encode("float4_e2m1fn", E2M1)))).toEqual([
      0, 1, 1, 2, 2, 4, 4, -0, -2, 6, 6,
    ]);
  });
  it("E2M1 ties away from zero (microxcaling 'nearest')", () => {
    const got = decode("float4_e2m1fn", encode("float4_e2m1fn", E2M1, { rounding: "ties-away" }));
    expect(Array.from(got)).toEqual([0.5, 1, 1.5, 2, 3, 4, 6, -0.5, -2, 6, 6]);
  });
  it("E2M1 toward zero", () => {
    const got = decode("float4_e2m1fn", encode("float4_e2m1fn", E2M1, { rounding: "toward-zero" }));
    expect(Array.from(got)).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, -0, -1.5, 6, 6]);
  });
  it("toward zero never overflows a finite value, even without saturation", () => {
    const x = new Float32Array([500, 1e30, -1e30, Number.POSITIVE_INFINITY]);
    expect(Array.from(encode("float8_e4m3fn", x, { rounding: "toward-zero" }))).toEqual([
      0x7e, 0x7e, 0xfe, 0x7f,
    ]);
    expect(Array.from(encode("float8_e5m2", x, { rounding: "toward-zero" }))).toEqual([
      0x5f, 0x7b, 0xfb, 0x7c,
    ]);
  });
  it("E4M3 overflow boundary (448, 464 tie, 480) in both policies", () => {
    const x = new Float32Array([448, 464, 464.00003, 480, -464.00003]);
    expect(Array.from(encode("float8_e4m3fn", x))).toEqual([0x7e, 0x7e, 0x7f, 0x7f, 0xff]);
    expect(Array.from(encode("float8_e4m3fn", x, { overflow: "saturate" }))).toEqual([
      0x7e, 0x7e, 0x7e, 0x7e, 0xfe,
    ]);
  });
  it("float64 input is rounded once (no double rounding through float32)", () => {
    // 464 + 1e-9 is above the tie: one rounding gives the NaN code; numpy (via float32) gives 448.
    expect(encode("float8_e4m3fn", new Float64Array([464 + 1e-9]))[0]).toBe(0x7f);
    expect(encode("float8_e4m3fn", new Float32Array([464 + 1e-9]))[0]).toBe(0x7e);
    expect(encode("float8_e4m3fn", [464 + 1e-9])[0]).toBe(0x7f);
  });
});

describe("stochastic rounding", () => {
  const formats: FormatName[] = ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "hifloat8", "bfloat16"];
  for (const f of formats) {
    it(`${f}: stays between the two neighbours, is unbiased and reproducible`, () => {
      const info = formatInfo(f);
      const r = rng(11);
      const n = 2000;
      const xs = new Float32Array(n);
      for (let i = 0; i < n; i++) xs[i] = (r() < 0.5 ? -1 : 1) * info.max * 2 ** (-8 * r()) * 0.9;
      // The two neighbours of each x: toward zero, and the next magnitude up (from a scan of the codes).
      const lo = Array.from(decode(f, encode(f, xs, { rounding: "toward-zero" })), Math.abs);
      const gap = lo.map((v) => ulpAbove(f, v));
      const draws = 64;
      const sums = new Float64Array(n);
      let first: Uint8Array | Uint16Array | null = null;
      for (let d = 0; d < draws; d++) {
        const codes = encode(f, xs, { rounding: "stochastic", seed: 1000 + d });
        if (d === 0) first = codes;
        const got = decode(f, codes);
        for (let i = 0; i < n; i++) {
          const a = Math.abs(got[i]);
          if (a !== lo[i] && a !== lo[i] + gap[i]) expect.fail(`${f}: ${xs[i]} -> ${got[i]}`);
          expect(Math.sign(got[i]) === Math.sign(xs[i]) || got[i] === 0).toBe(true);
          sums[i] += a;
        }
      }
      expect(Array.from(encode(f, xs, { rounding: "stochastic", seed: 1000 }))).toEqual(Array.from(first!));
      expect(Array.from(encode(f, xs, { rounding: "stochastic", seed: 1001 }))).not.toEqual(
        Array.from(first!),
      );
      // Unbiased: E[|q|] = |x|. Per element the error over one gap is Bernoulli with variance <= 1/4
      // (in units of the gap), so the mean over N = n*draws samples has sd <= 1/(2 sqrt(N)); allow 5 sd.
      let acc = 0;
      for (let i = 0; i < n; i++) acc += (sums[i] / draws - Math.abs(xs[i])) / gap[i];
      expect(Math.abs(acc / n)).toBeLessThan(5 / (2 * Math.sqrt(n * draws)));
    });
  }
});

/** Distance from |v| to the next larger representable magnitude (scan of the code table). */
function ulpAbove(f: FormatName, v: number): number {
  const info = formatInfo(f);
  const wide = info.bits === 16;
  const codes = wide
    ? Uint16Array.from({ length: 1 << 15 }, (_, i) => i)
    : Uint8Array.from({ length: info.codeCount }, (_, i) => i);
  let best = Number.POSITIVE_INFINITY;
  for (const x of decode(f, codes)) if (Number.isFinite(x) && x > v && x < best) best = x;
  return best - v;
}
