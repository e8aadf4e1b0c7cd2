/**
 * The WebAssembly loops of the BF16 -> block E4M3 UE8M0 kernel (src/quant/kernels/quant-bf16-wasm.ts)
 * against the TypeScript loops of `quantBf16Band`, the specification (itself checked against
 * decode-then-encode by test/quant/kernels/fast-paths.test.ts): the same band with each backend
 * forced must give byte-identical codes and scale bytes (F32 and F8_E8M0), the same count,
 * nonfinite, saturated, flushed and max |e|, and xx/ee/xy/yy within 1e-9 relative (the WebAssembly
 * path sums each scale's histogram once instead of each block's: the same non-negative terms in
 * another order). Bands: every BF16 pattern (NaN, Inf, subnormals, -0 included) under every block
 * scale a block can get (amax at every exponent, zero, subnormal, the largest finite, Inf, NaN),
 * random bands with partial right and bottom blocks, odd column counts, blocks not a multiple of
 * eight wide, views at odd byte offsets, bands of several internal chunks and block rows bigger
 * than one, more distinct scales than histogram slots; the element loop alone at every k in
 * -127..126 (the scales the amax floor never gives included) against the TypeScript loop's code
 * of each pattern, and its histogram; and the block amax loop against `bandAmaxBits`.
 */
import { afterEach, describe, expect, it } from "vitest";
import { hasSimd } from "../../src/formats/wasm/asm.js";
import { setKernelBackend } from "../../src/formats/wasm/kernel-backend.js";
import { bandAmaxBits, inputView } from "../../src/quant/block-amax.js";
import { pow2CodeTable } from "../../src/quant/fast-tables.js";
import type { EncodedBand } from "../../src/quant/kernels/encode-band.js";
import { quantBf16Band } from "../../src/quant/kernels/fast-quant-bf16.js";
import { QuantBf16Kernel, quantBf16Module, SLOTS } from "../../src/quant/kernels/quant-bf16-wasm.js";
import { E4M3_MAX } from "../../src/quant/kernels/tables.js";
import type { BandSpec } from "../../src/quant/kernels/types.js";
import { withBackend } from "../formats/helpers.js";
import { mulberry32 } from "../safetensors/helpers.js";

afterEach(() => setKernelBackend("auto"));

function spec(rows: number, cols: number, block: [number, number], scaleDtype: "F32" | "F8_E8M0"): BandSpec {
  return {
    source: { kind: "plain", dtype: "BF16" },
    target: { kind: "fp8-block", block, scaleFmt: "ue8m0", scaleDtype },
    rows,
    cols,
  };
}

/** The bytes of `h` as a view at byte offset `offset` of a larger buffer (an odd offset: unaligned). */
function bytesAt(h: Uint16Array, offset: number): Uint8Array {
  const buf = new Uint8Array(h.byteLength + offset + 5).fill(0xa5);
  buf.set(new Uint8Array(h.buffer, h.byteOffset, h.byteLength), offset);
  return buf.subarray(offset, offset + h.byteLength);
}

const relClose = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));

/** Both backends on the same band: identical bytes and counts, sums within 1e-9 relative. */
function expectSame(s: BandSpec, data: Uint8Array, what: string): EncodedBand {
  const ts = withBackend("ts", () => quantBf16Band(s, data));
  const wasm = withBackend("wasm", () => quantBf16Band(s, data));
  let diff = 0;
  let first = -1;
  for (let i = 0; i < ts.data.length; i++)
    if (wasm.data[i] !== ts.data[i]) {
      diff++;
      if (first < 0) first = i;
    }
  const pattern = first < 0 ? null : data[2 * first] | (data[2 * first + 1] << 8);
  expect({ diff, first, pattern, ts: ts.data[first], wasm: wasm.data[first] }, `${what}: codes`).toEqual({
    diff: 0,
    first: -1,
    pattern: null,
    ts: undefined,
    wasm: undefined,
  });
  expect(wasm.data.length, `${what}: length`).toBe(ts.data.length);
  expect(Buffer.from(wasm.scale!).equals(Buffer.from(ts.scale!)), `${what}: scale bytes`).toBe(true);
  const { xx, ee, xy, yy, ...exact } = wasm.stats;
  const { xx: xx2, ee: ee2, xy: xy2, yy: yy2, ...exact2 } = ts.stats;
  expect(exact, `${what}: counts and max |e|`).toEqual(exact2);
  expect(
    { xx: relClose(xx, xx2), ee: relClose(ee, ee2), xy: relClose(xy, xy2), yy: relClose(yy, yy2) },
    `${what}: sums ${JSON.stringify({ xx, xx2, ee, ee2, xy, xy2, yy, yy2 })}`,
  ).toEqual({ xx: true, ee: true, xy: true, yy: true });
  return ts;
}

/**
 * Every BF16 pattern whose magnitude is at most that of `amax` (every pattern for a NaN amax),
 * both signs, in 128x128 blocks that each start with `amax`: all of them under that block scale.
 */
function everyPatternUnder(amax: number): { data: Uint8Array; rows: number } {
  const mag = amax & 0x7fff;
  const list: number[] = [];
  for (let p = 0; p < 65536; p++) if ((p & 0x7fff) <= mag || mag > 0x7f80) list.push(p);
  const per = 128 * 128 - 1;
  const blocks = Math.ceil(list.length / per);
  const h = new Uint16Array(blocks * 128 * 128); // zeros after the list: never above any amax
  for (let b = 0; b < blocks; b++) {
    h[b * 128 * 128] = amax;
    h.set(list.slice(b * per, (b + 1) * per), b * 128 * 128 + 1);
  }
  return { data: new Uint8Array(h.buffer), rows: blocks * 128 };
}

/**
 * `rows x cols` BF16 codes like a weight: each 16x16 tile at its own magnitude (2^-30 .. 2^20),
 * a few outliers, zeros, -0, subnormals, and (when `specials`) NaN/Inf.
 */
function randomBand(seed: number, rows: number, cols: number, specials = true): Uint16Array {
  const rnd = mulberry32(seed);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const tileScale = new Map<number, number>();
  const h = new Uint16Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const t = (r >> 4) * 65536 + (c >> 4);
      let s = tileScale.get(t);
      if (s === undefined) {
        s = 2 ** Math.floor(rnd() * 50 - 30);
        tileScale.set(t, s);
      }
      const q = rnd();
      f[0] = (rnd() + rnd() + rnd() - 1.5) * s * (q < 0.002 ? 40 : 1);
      // BF16 RNE of the float32
      let b = (u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16;
      if (q > 0.995) b = [0, 0x8000, 0x0001, 0x807f, 0x0040][Math.floor(rnd() * 5)];
      if (specials && q > 0.9993) b = [0x7f80, 0xff80, 0x7fc0, 0xffff, 0x7f81][Math.floor(rnd() * 5)];
      h[r * cols + c] = b;
    }
  return h;
}

describe.skipIf(!hasSimd())("BF16 -> FP8 UE8M0: WebAssembly loops = TypeScript loops", () => {
  it("the module validates and the kernel instantiates", () => {
    expect(WebAssembly.validate(quantBf16Module() as BufferSource)).toBe(true);
    expect(QuantBf16Kernel.get()).not.toBeNull();
  });

  it("every BF16 pattern under every block scale (amax at each exponent, 0, subnormal, max, Inf, NaN)", () => {
    const amaxes = [
      0x0000, 0x8000, 0x0001, 0x007f, 0x7f7f, 0xff7f, 0x7f80, 0xff80, 0x7fc0, 0xffc1, 0x7f81, 0x7fff,
    ];
    // every exponent (so every k from -127 to the amax floor's), and both sides of 448 * 2^j
    for (let e = 1; e < 255; e++) {
      amaxes.push((e << 7) | 0x7f);
      if (e % 16 === 7) amaxes.push((e << 7) | 0x60, (e << 7) | 0x61);
    }
    for (const amax of amaxes) {
      const { data, rows } = everyPatternUnder(amax);
      const ts = expectSame(spec(rows, 128, [128, 128], "F32"), data, `amax 0x${amax.toString(16)}`);
      expect(ts.stats.count + ts.stats.nonfinite).toBe(rows * 128);
    }
  });

  it("every BF16 pattern in one band: one per row of 1x128 blocks, the other columns set the row's amax", () => {
    // Row r holds patterns 64r .. 64r+63 and 64 copies of an amax chosen per row (all scales).
    const rows = 1024;
    const h = new Uint16Array(rows * 128);
    const rnd = mulberry32(5);
    for (let r = 0; r < rows; r++) {
      const amax = Math.floor(rnd() * 0x10000);
      for (let c = 0; c < 64; c++) h[r * 128 + c] = r * 64 + c;
      for (let c = 64; c < 128; c++) h[r * 128 + c] = amax ^ (c & 1 ? 0x8000 : 0);
    }
    for (const scaleDtype of ["F32", "F8_E8M0"] as const)
      expectSame(spec(rows, 128, [1, 128], scaleDtype), new Uint8Array(h.buffer), `1x128 ${scaleDtype}`);
  });

  it("random bands: partial blocks, odd sizes, odd byte offsets, several chunks, both scale storages", () => {
    const shapes: [number, number][] = [
      [1, 1],
      [1, 7],
      [5, 33],
      [128, 128],
      [130, 260],
      [300, 333],
      [257, 1031],
      [1000, 300], // two chunks of six 128-row block rows, the second partial
      [129, 2100], // a block row bigger than one chunk, then a one-row block row
    ];
    const blocks: [number, number][] = [
      [128, 128],
      [1, 128],
      [3, 20], // blocks not a multiple of eight wide: every block row ends mid-step
    ];
    let seed = 1;
    for (const [rows, cols] of shapes)
      for (const block of blocks) {
        const h = randomBand(seed++, rows, cols);
        for (const scaleDtype of ["F32", "F8_E8M0"] as const)
          for (const offset of scaleDtype === "F32" ? [0, 1] : [3])
            expectSame(
              spec(rows, cols, block, scaleDtype),
              bytesAt(h, offset),
              `${rows}x${cols} block ${block} ${scaleDtype} offset ${offset}`,
            );
      }
  });

  it("blocks that are all zero, all subnormal, all NaN, hold one Inf, or hold the largest finite", () => {
    const rows = 256;
    const cols = 640;
    const h = randomBand(99, rows, cols, false);
    const fill = (bi: number, bj: number, f: (r: number, c: number) => number) => {
      for (let r = bi * 128; r < bi * 128 + 128; r++)
        for (let c = bj * 128; c < bj * 128 + 128; c++) h[r * cols + c] = f(r, c);
    };
    fill(0, 0, () => 0);
    fill(0, 1, (r, c) => ((r + c) & 0x7f) | ((r & 1) << 15)); // subnormals and +-0
    fill(0, 2, (r, c) => 0x7fc0 | ((r * c) & 0x3f) | ((c & 1) << 15));
    fill(1, 0, (r, c) => (r === 200 && c === 5 ? 0xff80 : 0x3f80 + ((r + c) & 0x7f)));
    fill(1, 1, (r, c) => (r === 130 && c === 140 ? 0x7f7f : (r * 7 + c) & 0xffff & 0xbfff));
    fill(1, 2, (r, c) => ((r ^ c) & 1 ? 0x7f80 : 0xffc0));
    for (const scaleDtype of ["F32", "F8_E8M0"] as const)
      expectSame(
        spec(rows, cols, [128, 128], scaleDtype),
        new Uint8Array(h.buffer),
        `special blocks ${scaleDtype}`,
      );
  });

  it(`more distinct block scales than the ${SLOTS} histogram slots, revisited out of order`, () => {
    const rows = 384;
    const cols = 128 * 24;
    const rnd = mulberry32(7);
    const h = new Uint16Array(rows * cols);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const blockExp = 115 + ((((r >> 7) * 24 + (c >> 7)) * 7) % 40); // 40 scales, interleaved
        h[r * cols + c] =
          (Math.floor(rnd() * 0x80) | ((blockExp + Math.floor(rnd() * 4)) << 7)) ^ (c & 1 ? 0x8000 : 0);
      }
    const ts = expectSame(spec(rows, cols, [128, 128], "F32"), new Uint8Array(h.buffer), "many scales");
    expect(new Set(new Float32Array(ts.scale!.buffer, ts.scale!.byteOffset, 72)).size).toBeGreaterThan(SLOTS);
  });

  it("a band after one that left histogram counts behind still matches", () => {
    const kern = QuantBf16Kernel.get()!;
    const h = randomBand(3, 128, 256);
    kern.reserve(128 * 256, 2);
    kern.load(new Uint8Array(h.buffer));
    kern.block(
      0,
      128,
      0,
      128,
      256,
      kern.open(3, () => {}),
    );
    // not drained, as when a band throws midway: the next band clears the slots first
    const d = randomBand(4, 200, 300);
    expectSame(spec(200, 300, [128, 128], "F32"), new Uint8Array(d.buffer), "after a dirty band");
  });

  it("the element loop at every k a scale can give (-127..126): codes of all 65536 patterns, their histogram", () => {
    // The TypeScript loop's code of pattern v at 2^-k, restated from fast-quant-bf16.ts; defined
    // where (v & 0x807f) | (e2 << 7) is a pattern, i.e. e2 <= 255 (a block's own amax keeps
    // e2 <= 136; at e2 = 255 the table reads an Inf/NaN pattern, the kernel saturates).
    const T = pow2CodeTable("bfloat16", "float8_e4m3fn", 0, E4M3_MAX, "rne", true);
    const spec = (v: number, k: number): number | null => {
      const e = (v >> 7) & 0xff;
      if (e === 0xff) return T[v];
      const e2 = e + k;
      if (e === 0 || e2 <= 116) return (v >> 8) & 0x80;
      return e2 < 255 ? T[(v & 0x807f) | (e2 << 7)] : null;
    };
    const kern = QuantBf16Kernel.get()!;
    const h = new Uint16Array(65536);
    for (let v = 0; v < 65536; v++) h[v] = v;
    kern.reserve(65536, 1);
    kern.load(new Uint8Array(h.buffer));
    const codes = new Uint8Array(65536);
    for (let k = -127; k <= 126; k++) {
      // A block of 512 rows of 119 (not a multiple of 8) with stride 128, then the 9 columns left.
      const slot = kern.open(k, () => {});
      kern.block(0, 512, 0, 119, 128, slot);
      kern.block(0, 512, 119, 128, 128, slot);
      kern.store(codes, 0, 65536);
      let bad = -1;
      for (let v = 0; v < 65536 && bad < 0; v++) {
        const want = spec(v, k);
        if (want !== null && codes[v] !== want) bad = v;
      }
      expect(bad < 0 ? null : { k, v: bad, want: spec(bad, k), got: codes[bad] }, `k ${k}`).toBeNull();
      let listed = -1;
      kern.drain((kk, hist, list, n) => {
        let ok = kk === k && n === 65536;
        for (let j = 0; j < n; j++) {
          ok &&= list[j] === j && hist[j] === 1;
          hist[list[j]] = 0;
        }
        listed = ok ? n : -1;
      });
      expect(listed, `k ${k}: histogram`).toBe(65536);
    }
  });

  it("the block amax loop = bandAmaxBits (NaN payloads above Inf, partial blocks)", () => {
    const kern = QuantBf16Kernel.get()!;
    for (const [rows, cols, bc] of [
      [7, 333, 128],
      [128, 1031, 128],
      [3, 100, 20],
      [1, 5, 128],
      [2, 64, 1],
    ]) {
      const h = randomBand(rows * cols, rows, cols);
      for (let i = 0; i < h.length; i += 97) h[i] = [0x7f81, 0xffff, 0x7fc0, 0xff80][i % 4];
      const sc = Math.ceil(cols / bc);
      const want = new Uint32Array(sc);
      bandAmaxBits(inputView({ dtype: "bfloat16", codes: h }, [rows, cols]), cols, 0, rows, bc, want);
      const got = new Uint32Array(sc);
      kern.reserve(rows * cols, sc);
      kern.load(bytesAt(h, 1));
      kern.amax(0, rows, cols, bc, got);
      expect([...got], `${rows}x${cols} bc ${bc}`).toEqual([...want]);
    }
  });
});
