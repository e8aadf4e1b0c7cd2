/**
 * The WebAssembly loops of the per-channel INT8/INT4 kernel (src/quant/kernels/int-channel-wasm.ts)
 * against the TypeScript loops, the specification (themselves pinned to msModelSlim's steps by
 * test/quant/int-channel-table.test.ts): the same band quantized with each backend forced must give
 * byte-identical codes, scales, packed INT4 bytes and `scale_bias`, the same count, nonfinite,
 * flushed and max |e|, and sums within 1e-9 relative (the WebAssembly loop adds in another order).
 * Bands: rows holding every BF16 value up to their amax, random rows with outliers across the
 * exponent range (subnormal and eps-floored scales), NaN/Inf rows and rows whose BF16 amax
 * overflows, zero rows, views at an offset, odd lengths (not multiples of 4 or 16), bands over
 * several chunks and rows longer than one.
 */
import { afterEach, describe, expect, it } from "vitest";
import { hasSimd } from "../../src/formats/wasm/asm.js";
import { type KernelBackend, setKernelBackend } from "../../src/formats/wasm/kernel-backend.js";
import { emptyStats } from "../../src/quant/error-stats.js";
import { encodeIntChannel, quantizeIntChannel } from "../../src/quant/kernels/encode-int-channel.js";
import { intChannelModule, quantizeRowsWasm } from "../../src/quant/kernels/int-channel-wasm.js";
import { withBackend } from "../formats/helpers.js";
import { mulberry32 } from "../safetensors/helpers.js";

afterEach(() => setKernelBackend("auto"));

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const ofBits = (b: number) => {
  u32[0] = b;
  return f32[0];
};

/** Every BF16 magnitude from 0 to pattern `top`, each with both signs. */
function everyValueUpTo(top: number): Float32Array {
  const out = new Float32Array(2 * (top + 1));
  for (let p = 0; p <= top; p++) {
    out[2 * p] = ofBits(p << 16);
    out[2 * p + 1] = -ofBits(p << 16);
  }
  return out;
}

/** `rows x cols` random values, each row at its own magnitude, with a few outliers per row. */
function randomBand(seed: number, rows: number, cols: number, wide = false): Float32Array {
  const rnd = mulberry32(seed);
  const x = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const scale = 2 ** Math.floor(wide ? rnd() * 250 - 140 : rnd() * 20 - 12);
    for (let c = 0; c < cols; c++) x[r * cols + c] = (rnd() * 2 - 1) * scale;
    for (let j = 0; j < 1 + cols / 512; j++)
      x[r * cols + Math.floor(rnd() * cols)] = (rnd() * 2 - 1) * 30 * scale;
  }
  return x;
}

const relClose = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));

/** Both backends on the same band: identical bytes and counts, sums within 1e-9 relative. */
function expectSame(x: Float32Array, rows: number, cols: number, bits: 8 | 4, what: string): void {
  const scaleBias = bits === 4 && rows % 2 === 0 && cols % 16 === 0 ? 16 : undefined;
  const run = (b: KernelBackend) =>
    withBackend(b, () => ({
      q: quantizeIntChannel(x, rows, cols, bits),
      e: bits === 8 || rows % 2 === 0 ? encodeIntChannel({ bits, scaleBias }, x, rows, cols) : null,
    }));
  const ts = run("ts");
  const wasm = run("wasm");
  expect(Buffer.from(wasm.q.scales.buffer).equals(Buffer.from(ts.q.scales.buffer)), `${what}: scales`).toBe(
    true,
  );
  let diff = 0;
  let first = -1;
  for (let i = 0; i < ts.q.codes.length; i++)
    if (wasm.q.codes[i] !== ts.q.codes[i]) {
      diff++;
      if (first < 0) first = i;
    }
  expect({ diff, first, value: first < 0 ? null : x[first] }, `${what}: codes`).toEqual({
    diff: 0,
    first: -1,
    value: null,
  });
  expect(wasm.q.nonFiniteRows, `${what}: nonFiniteRows`).toBe(ts.q.nonFiniteRows);
  if (ts.e === null || wasm.e === null) return;
  expect(Buffer.from(wasm.e.data).equals(Buffer.from(ts.e.data)), `${what}: data`).toBe(true);
  expect(Buffer.from(wasm.e.scale).equals(Buffer.from(ts.e.scale)), `${what}: scale bytes`).toBe(true);
  expect(wasm.e.aux === null ? null : Buffer.from(wasm.e.aux), `${what}: aux`).toEqual(
    ts.e.aux === null ? null : Buffer.from(ts.e.aux),
  );
  const a = wasm.e.stats;
  const b = ts.e.stats;
  const { xx, ee, xy, yy, ...exact } = a;
  const { xx: xx2, ee: ee2, xy: xy2, yy: yy2, ...exact2 } = b;
  expect(exact, `${what}: counts and max |e|`).toEqual(exact2);
  expect(
    { xx: relClose(xx, xx2), ee: relClose(ee, ee2), xy: relClose(xy, xy2), yy: relClose(yy, yy2) },
    `${what}: sums ${JSON.stringify({ xx, xx2, ee, ee2 })}`,
  ).toEqual({ xx: true, ee: true, xy: true, yy: true });
}

describe.skipIf(!hasSimd())("INT8/INT4 per-channel: WebAssembly loops = TypeScript loops", () => {
  it("the module validates and the forced backend is the WebAssembly one", () => {
    expect(WebAssembly.validate(intChannelModule(-128, 127) as BufferSource)).toBe(true);
    expect(WebAssembly.validate(intChannelModule(-8, 7) as BufferSource)).toBe(true);
    const x = randomBand(1, 2, 5);
    const codes = new Int8Array(10);
    const scales = new Float32Array(2);
    const ran = (b: KernelBackend) =>
      withBackend(b, () => quantizeRowsWasm(x, 2, 5, -128, 127, () => 1, codes, scales, emptyStats()));
    expect(ran("wasm")).toBe(0);
    expect(ran("ts")).toBeNull();
    expect(ran("auto")).toBeNull(); // 10 elements: below the automatic threshold
  });

  const tops = [0x0001, 0x0040, 0x2000, 0x3380, 0x3400, 0x3c00, 0x3f80, 0x3fff, 0x4300, 0x5f00, 0x7f7f];
  for (const bits of [8, 4] as const) {
    it(`INT${bits}: rows of every BF16 value up to amax, every table entry used`, () => {
      for (const top of tops) {
        const x = everyValueUpTo(top);
        expectSame(x, 1, x.length, bits, `amax pattern 0x${top.toString(16)}`);
        // the same values as a band of 2 rows of odd length
        const cols = (Math.floor(x.length / 2) - 1) | 1;
        if (cols > 1)
          expectSame(x.subarray(0, 2 * cols), 2, cols, bits, `0x${top.toString(16)}, 2 x ${cols}`);
      }
    });

    it(`INT${bits}: random rows with outliers, odd lengths, subnormal and floored scales`, () => {
      let seed = 100 * bits;
      for (const cols of [1, 2, 3, 4, 5, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 1000, 7168, 7171]) {
        const rows = cols < 100 ? 38 : 6;
        expectSame(randomBand(seed++, rows, cols), rows, cols, bits, `${rows} x ${cols}`);
        expectSame(
          randomBand(seed++, rows, cols, true),
          rows,
          cols,
          bits,
          `${rows} x ${cols}, wide exponents`,
        );
      }
    });

    it(`INT${bits}: NaN, Inf, BF16-overflowing and zero rows keep codes 0 and the TypeScript scale`, () => {
      const rows = 10;
      const cols = 37;
      const x = randomBand(7 + bits, rows, cols);
      x[0 * cols + 3] = Number.NaN;
      x[1 * cols + 36] = Number.POSITIVE_INFINITY;
      x[2 * cols + 0] = Number.NEGATIVE_INFINITY;
      x[3 * cols + 20] = ofBits(0xffc00001); // negative NaN
      x[4 * cols + 5] = ofBits(0x7f7fffff); // rounds to BF16 Inf
      x.fill(0, 5 * cols, 6 * cols);
      x.fill(-0, 6 * cols, 7 * cols);
      x[7 * cols + 1] = Number.NaN;
      x[7 * cols + 2] = Number.POSITIVE_INFINITY;
      x.fill(ofBits(1), 8 * cols, 9 * cols); // the smallest subnormal: eps-floored scale
      expectSame(x, rows, cols, bits, "non-finite rows");
      const q = withBackend("wasm", () => quantizeIntChannel(x, rows, cols, bits));
      expect(q.nonFiniteRows).toBe(6);
      for (const r of [0, 1, 2, 3, 4, 7])
        expect(q.codes.subarray(r * cols, (r + 1) * cols).every((c) => c === 0)).toBe(true);
    });

    it(`INT${bits}: views at an offset, bands over several chunks, rows longer than a chunk`, () => {
      const big = randomBand(40 + bits, 33, 7171);
      expectSame(big.subarray(7171), 32, 7171, bits, "32 x 7171 at an offset");
      const long = randomBand(50 + bits, 2, 70001);
      expectSame(long, 2, 70001, bits, "2 x 70001");
      expectSame(randomBand(60 + bits, 4, 7), 4, 7, bits, "small band after a long one");
    });
  }
});
