import { describe, expect, it } from "vitest";
import { decode, encode } from "../../src/index.js";
import { rng } from "./helpers.js";

/** HiF8's positive finite values built from the paper's description (not from the codec). */
function hif8Values(): number[] {
  const vals: number[] = [];
  for (let k = 1; k <= 7; k++) vals.push(2 ** (k - 23)); // denormals
  for (let e = -15; e <= 15; e++) {
    const a = Math.abs(e);
    const mb = a <= 3 ? 3 : a <= 7 ? 2 : 1;
    for (let m = 0; m < 2 ** mb; m++) {
      if (e === 15 && m === 1) continue; // the Inf pattern
      vals.push(2 ** e * (1 + m / 2 ** mb));
    }
  }
  return vals.sort((x, y) => x - y);
}

const all = Uint8Array.from({ length: 256 }, (_, i) => i);

describe("hifloat8", () => {
  it("golden values of the CANN GE reference tests (hicann/ge hif8_t unit tests)", () => {
    const cases: [number, number][] = [
      [0.783274, 0x1d],
      [0.0309791, 0x54],
      [193.076, 0x4e],
      [284.11, 0x60],
      [28901.1, 0x6e],
      [50000.4, 0x6f],
      [2.75314e-6, 0x04],
    ];
    const got = encode("hifloat8", new Float32Array(cases.map((c) => c[0])));
    expect(Array.from(got)).toEqual(cases.map((c) => c[1]));
    expect(Array.from(decode("hifloat8", new Uint8Array([0x1d, 0x54, 0x4e, 0x60, 0x6e, 0x04])))).toEqual([
      0.8125,
      0.03125,
      192,
      256,
      32768,
      2 ** -19,
    ]);
  });

  it("edge cases of CANN GE HiF8FromIeeeBits: Inf from 40960 on, 2^-23 rounds up to 2^-22", () => {
    const below = new Float32Array([2 ** -23]);
    below[0] = below[0] * (1 - 2 ** -24); // float32 just below 2^-23
    const x = new Float32Array([32768, 40959.99, 40960, -40960, 2 ** -23, below[0], Number.NaN, -0, 0]);
    expect(Array.from(encode("hifloat8", x))).toEqual([0x6e, 0x6e, 0x6f, 0xef, 0x01, 0x00, 0x80, 0x00, 0x00]);
  });

  it("has exactly the 126 positive finite values the paper describes, plus zero, NaN and +-Inf", () => {
    const v = decode("hifloat8", all);
    const pos = Array.from(v)
      .filter((x) => x > 0 && Number.isFinite(x))
      .sort((a, b) => a - b);
    expect(pos).toEqual(hif8Values());
    expect(Array.from(v).filter((x) => Number.isNaN(x)).length).toBe(1);
    expect(Number.isNaN(v[0x80])).toBe(true);
    expect(v[0x6f]).toBe(Number.POSITIVE_INFINITY);
    expect(v[0xef]).toBe(Number.NEGATIVE_INFINITY);
    for (let c = 0x81; c < 0x100; c++) if (c !== 0xef) expect(v[c]).toBe(-v[c & 0x7f]);
  });

  it("round trips all 256 codes", () => {
    const v = decode("hifloat8", all);
    const back = encode("hifloat8", v);
    for (let c = 0; c < 256; c++) expect(back[c], `code ${c}`).toBe(c);
  });

  it("rounds to nearest, ties away from zero, over random inputs (reference: scan of the value list)", () => {
    const vals = [0, ...hif8Values()];
    const r = rng(7);
    const xs = new Float32Array(20000);
    for (let i = 0; i < xs.length; i++) xs[i] = (r() < 0.5 ? -1 : 1) * 2 ** (r() * 44 - 26);
    // add exact midpoints, which exercise the tie rule
    for (let i = 0; i + 1 < vals.length && i < 2000; i++) xs[i] = (vals[i] + vals[i + 1]) / 2;
    const got = decode("hifloat8", encode("hifloat8", xs));
    for (let i = 0; i < xs.length; i++) {
      const a = Math.abs(xs[i]);
      let want: number;
      if (a >= 40960) want = Number.POSITIVE_INFINITY;
      else {
        let lo = 0;
        for (const v of vals) if (v <= a) lo = v;
        const hi = vals.find((v) => v > a) ?? Number.POSITIVE_INFINITY;
        want = a - lo < hi - a ? lo : hi; // ties (equal distance) go to hi: away from zero
      }
      expect(Math.abs(got[i]), `x=${xs[i]}`).toBe(want);
    }
  });

  it("saturate mode clamps to +-32768 instead of Inf", () => {
    const got = encode("hifloat8", new Float32Array([1e6, -1e6, Number.POSITIVE_INFINITY]), {
      overflow: "saturate",
    });
    expect(Array.from(got)).toEqual([0x6e, 0xee, 0x6e]);
  });
});
