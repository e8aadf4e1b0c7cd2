import { describe, expect, it } from "vitest";
import {
  decodeInt8Channel,
  fp8BlockToBf16,
  INT8_CHANNEL_EPS,
  int8ChannelScale,
  quantizeInt8Channel,
} from "../../src/quant/int8-channel.js";
import { bf16, refBand, refDequant } from "../convert/ascend-reference.js";
import { mulberry32 } from "../safetensors/helpers.js";

// The reference: an independent, deliberately plain transcription of msModelSlim's steps
// (../shared/docs/ASCEND.md §5, §7) in test/convert/ascend-reference.ts, sharing nothing with the
// library's codec or kernels.

/** Bit patterns, so that -0/+0 and NaN compare exactly. */
const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const f32Bits = (a: number[]) => bitsOf(Float32Array.from(a));

/** A small deterministic generator (mulberry32, the test helpers' one). */
const rng = mulberry32;

function expectMatchesReference(x: Float32Array, rows: number, cols: number) {
  const got = quantizeInt8Channel(x, rows, cols);
  const want = refBand(x, rows, cols);
  expect(Array.from(got.codes)).toEqual(Array.from(want.codes));
  expect(bitsOf(got.scales)).toEqual(bitsOf(want.scales));
  return got;
}

describe("W8A8_DYNAMIC per-channel INT8 (msModelSlim min-max)", () => {
  it("a hand-computed row", () => {
    // amax 3: 3/127 = 0.0236220... -> BF16 1.515625 * 2^-6 = 97/4096.
    // 1.5/s = 63.34 -> BF16 63.25 -> 63; -3/s = -126.68 -> BF16 -126.5 -> tie, even -126;
    // -1/s = -42.23 -> -42.25 -> -42; 0.75/s = 31.67 -> BF16 31.625 -> 32.
    const got = quantizeInt8Channel(Float32Array.from([1.5, -3, -1, 0.75]), 1, 4);
    expect(got.scales[0]).toBe(97 / 4096);
    expect(Array.from(got.codes)).toEqual([63, -126, -42, 32]);
    expect(got.nonFiniteRows).toBe(0);
    expect(int8ChannelScale(3)).toBe(97 / 4096);
    expect(int8ChannelScale(-3)).toBe(97 / 4096);
  });

  it("random rows of many magnitudes, with a partial width", () => {
    const next = rng(12);
    const rows = 41;
    const cols = 301;
    const x = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const mag = 2 ** Math.floor(next() * 60 - 40);
      for (let c = 0; c < cols; c++) x[r * cols + c] = bf16((next() * 2 - 1) * mag);
    }
    expectMatchesReference(x, rows, cols);
    // Values that are not BF16 are taken as BF16 first (`.to(bfloat16)`).
    const raw = new Float32Array(rows * cols);
    for (let i = 0; i < raw.length; i++) raw[i] = (next() * 2 - 1) * 3.7;
    expectMatchesReference(raw, rows, cols);
  });

  it("zero and tiny rows get the 2^-23 floor", () => {
    const x = Float32Array.from([0, 0, -0, 0, 1e-6, -5e-7, 2e-7, 0]);
    const got = expectMatchesReference(x, 2, 4);
    expect(Array.from(got.scales)).toEqual([2 ** -23, 2 ** -23]);
    expect(INT8_CHANNEL_EPS).toBe(2 ** -23);
    // 1e-6 -> BF16 9.98e-7; / 2^-23 = 8.37 -> 8.375 -> 8.
    expect(Array.from(got.codes)).toEqual([0, 0, 0, 0, 8, -4, 2, 0]);
  });

  it("ties after the division round half to even", () => {
    // amax 127/16 makes s = 1/16 exactly, so w = (k + 0.5)/16 divides to an exact tie.
    const x = Float32Array.from([
      127 / 16,
      2.5 / 16,
      3.5 / 16,
      -0.5 / 16,
      -1.5 / 16,
      100.5 / 16,
      -126.5 / 16,
    ]);
    const got = expectMatchesReference(x, 1, x.length);
    expect(got.scales[0]).toBe(1 / 16);
    expect(Array.from(got.codes)).toEqual([127, 2, 4, 0, -2, 100, -126]);
  });

  it("codes clamp to 127 and reach -128", () => {
    // amax 5.3125: s = bf16(0.041830) = 0.041748046875 (below amax/127), amax/s = 127.25 -> BF16 127.5,
    // which rounds to 128: +amax clamps to 127, -amax gives -128.
    const x = Float32Array.from([5.3125, 1, -5.3125, 1]);
    const got = expectMatchesReference(x, 2, 2);
    expect(Array.from(got.scales)).toEqual([0.041748046875, 0.041748046875]);
    expect(Array.from(got.codes)).toEqual([127, 24, -128, 24]);
  });

  it("NaN and Inf rows: NaN/Inf scale, codes 0, counted; other rows untouched", () => {
    const x = Float32Array.from([
      1,
      Number.NaN,
      2,
      1,
      2,
      3,
      Number.POSITIVE_INFINITY,
      1,
      0,
      -1,
      Number.NEGATIVE_INFINITY,
      4,
    ]);
    const got = expectMatchesReference(x, 4, 3);
    expect(got.nonFiniteRows).toBe(3);
    expect(Number.isNaN(got.scales[0])).toBe(true);
    expect(got.scales[2]).toBe(Number.POSITIVE_INFINITY);
    expect(got.scales[3]).toBe(Number.POSITIVE_INFINITY);
    expect(Array.from(got.codes)).toEqual([0, 0, 0, 42, 84, 126, 0, 0, 0, 0, 0, 0]);
    const y = decodeInt8Channel(got.codes, got.scales, 4, 3);
    expect(Array.from(y.slice(0, 3)).every(Number.isNaN)).toBe(true);
  });

  it("decode is fl32(q * s)", () => {
    const next = rng(5);
    const rows = 9;
    const cols = 70;
    const x = new Float32Array(rows * cols);
    for (let i = 0; i < x.length; i++) x[i] = bf16((next() * 2 - 1) * 0.02);
    const got = quantizeInt8Channel(x, rows, cols);
    const y = decodeInt8Channel(got.codes, got.scales, rows, cols);
    const want: number[] = [];
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) want.push(Math.fround(got.codes[r * cols + c] * got.scales[r]));
    expect(bitsOf(y)).toEqual(f32Bits(want));
    // Per-channel symmetric INT8: every element within half a step (plus the BF16 division) of its source.
    for (let i = 0; i < x.length; i++)
      expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(got.scales[Math.floor(i / cols)]);
  });

  it("rejects bands whose sizes do not match", () => {
    expect(() => quantizeInt8Channel(new Float32Array(5), 2, 3, "w")).toThrow(/tensor "w".*2 x 3/);
    expect(() => decodeInt8Channel(new Int8Array(6), new Float32Array(3), 2, 3)).toThrow(
      /3 scales for 2 rows/,
    );
    expect(() => fp8BlockToBf16(new Uint8Array(6), new Float32Array(2), 2, 3, "w")).toThrow(
      /weight_scale_inv/,
    );
  });
});

describe("FP8 block -> BF16 as msModelSlim's converter", () => {
  it("partial blocks, every code, NaN codes, a NaN scale and BF16 overflow", () => {
    const next = rng(7);
    const rows = 131;
    const cols = 300;
    const codes = new Uint8Array(rows * cols);
    for (let i = 0; i < codes.length; i++) codes[i] = i < 256 ? i : Math.floor(next() * 256);
    const s = new Float32Array(2 * 3);
    for (let i = 0; i < s.length; i++) s[i] = Math.fround(2 ** (next() * 20 - 16) * (1 + next()));
    s[4] = 1e37; // 448 * 1e37 overflows BF16 (and float32) -> Inf
    s[5] = Number.NaN;
    const got = fp8BlockToBf16(codes, s, rows, cols);
    const want = Array.from(refDequant(codes, s, rows, cols));
    // NaN payloads may differ in sign: compare NaN-ness, then the bits of everything else.
    const nanGot = Array.from(got).map(Number.isNaN);
    expect(nanGot).toEqual(want.map(Number.isNaN));
    const clean = (a: ArrayLike<number>) => f32Bits(Array.from(a).map((v) => (Number.isNaN(v) ? 0 : v)));
    expect(clean(got)).toEqual(clean(want));
    expect(Array.from(got).some((v) => v === Number.POSITIVE_INFINITY)).toBe(true);
    // The same scales as little-endian bytes.
    const bytes = new Uint8Array(s.buffer.slice(0));
    expect(bitsOf(fp8BlockToBf16(codes, bytes, rows, cols))).toEqual(bitsOf(got));
  });

  it("FP8 -> BF16 -> INT8 end to end against the reference chain", () => {
    const next = rng(99);
    const rows = 200;
    const cols = 257;
    const codes = new Uint8Array(rows * cols);
    for (let i = 0; i < codes.length; i++) {
      const c = Math.floor(next() * 256);
      codes[i] = (c & 0x7f) === 0x7f ? c - 1 : c; // no NaN codes
    }
    const s = new Float32Array(2 * 3);
    for (let i = 0; i < s.length; i++) s[i] = Math.fround(2 ** (next() * 12 - 14) * (1 + next()));
    const w = fp8BlockToBf16(codes, s, rows, cols);
    const got = quantizeInt8Channel(w, rows, cols);
    const want = refBand(refDequant(codes, s, rows, cols), rows, cols);
    expect(Array.from(got.codes)).toEqual(Array.from(want.codes));
    expect(bitsOf(got.scales)).toEqual(bitsOf(want.scales));
    expect(got.nonFiniteRows).toBe(0);
  });
});
