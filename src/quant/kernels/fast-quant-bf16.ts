/**
 * Fast path: BF16 -> block FP8 with UE8M0 (power-of-two) scales, and BF16 -> MXFP8 (E4M3 in 1x32
 * groups with an E8M0 scale byte, every MX scale rule but triton's), bit-identical to
 * decode-then-encode. The scale is 2^-k, so `x * (1/sf)` only shifts the exponent and the E4M3
 * code is a lookup of the shifted BF16 bits in a 65536-entry table. The TypeScript loops here are
 * the specification and the fallback; the per-element work (block amax, codes, code histogram)
 * also runs in WebAssembly SIMD (./quant-bf16-wasm.ts, `preferWasm`), with the scales and the
 * statistics still computed here, by the same code for both.
 */

import { preferWasm } from "../../formats/wasm/kernel-backend.js";
import { amaxFromBits, bandAmaxBits, inputView } from "../block-amax.js";
import { valuesOf } from "../element-codes.js";
import { type ErrorStats, emptyStats } from "../error-stats.js";
import { pow2CodeTable } from "../fast-tables.js";
import { f32Bits } from "../float32.js";
import { outBytes } from "./buffers.js";
import type { EncodedBand } from "./encode-band.js";
import { QuantBf16Kernel } from "./quant-bf16-wasm.js";
import { E4M3_MAX, E4M3_VALUES, e4m3Nan } from "./tables.js";
import { fp8BlockScale, fp8BlockScaleBytes, type MxElement, mxScaleByte } from "./target-scales.js";
import type { BandSpec, MxRule } from "./types.js";

/** Whether `quantBf16Band` converts `spec`. */
export function quantBf16Applies(spec: BandSpec): boolean {
  const { source: s, target: t } = spec;
  if (s.kind !== "plain" || s.dtype !== "BF16" || spec.via) return false;
  if (t.kind === "fp8-block") return t.scaleFmt === "ue8m0";
  // MX groups of 32 along whole rows (encodeMx's shape); triton's rule rounds its own way.
  return t.kind === "mx" && t.element === "float8_e4m3fn" && t.rule !== "triton" && spec.cols % 32 === 0;
}

/**
 * The scale of block `i` (row-major over the band's blocks) from its amax, given as BF16 magnitude
 * bits (above the Inf pattern: a NaN): the power of two sf it multiplies by, recorded for the
 * stored scales. For MX, NaN means the E8M0 NaN byte: every code of the block is the NaN code
 * (encodeMx's `nanBlock`).
 */
type BlockScaleOf = (i: number, amaxBits: number) => number;

/** The TypeScript loop over one block (rows r0..r1, columns c0..c1) at scale sf. */
type TsBlock = (r0: number, r1: number, c0: number, c1: number, sf: number) => void;

/** A NaN MX block: NaN codes, and every element counts as nonfinite (its error is NaN). */
function nanBlockBf16(
  out: Uint8Array,
  cols: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
  st: ErrorStats,
): void {
  const nan = e4m3Nan();
  for (let r = r0; r < r1; r++) out.fill(nan, r * cols + c0, r * cols + c1);
  st.nonfinite += (r1 - r0) * (c1 - c0);
}

/**
 * The BF16 pattern of v * 2^k, exactly, for a finite v of exponent field e whose shifted exponent
 * e2 = e + k is above 116 (at or below it the code is a signed zero): the exponent replaced; +-Inf
 * where e2 overflows the field, which the table saturates as the quantizer saturates v * 2^k = Inf;
 * for a subnormal (or zero) v, m * 2^(k - 133) with m < 128, a BF16 value. Only MX scales reach
 * the last two: an all-subnormal group (byte 0, k = 127), a NaN group under ModelOpt's rule.
 */
function shifted(v: number, e: number, e2: number, k: number, BF: Float32Array): number {
  if (e === 0) return f32Bits(BF[v] * 2 ** k) >>> 16;
  return e2 >= 255 ? (v & 0x8000) | 0x7f80 : (v & 0x807f) | (e2 << 7);
}

/** BF16 bits of the largest E4M3 magnitude: shifted magnitudes above it saturate. */
const BF16_E4M3_MAX = f32Bits(E4M3_MAX) >>> 16;

/**
 * One block of `quantBf16Band`'s TypeScript loop (a function of its own so V8 optimizes it as a
 * whole instead of on-stack-replacing the inner loop). With the block's power-of-two scale 2^-k
 * fixed, both the E4M3 code and the error of an element depend only on its BF16 code, so the
 * element loop only encodes and counts codes (`hist`, with the codes seen listed in `seen`); the
 * error statistics are then summed by `sumBlock`.
 */
function quantBlockBf16(
  h: Uint16Array,
  out: Uint8Array,
  cols: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
  k: number,
  sf: number,
  T: Uint8Array,
  BF: Float32Array,
  st: ErrorStats,
  hist: Int32Array,
  seen: Uint16Array,
): void {
  let nSeen = 0;
  let nonfinite = 0;
  for (let r = r0; r < r1; r++) {
    const o = r * cols;
    for (let i = o + c0; i < o + c1; i++) {
      const v = h[i];
      const e = (v >> 7) & 0xff;
      if (e === 0xff) {
        out[i] = T[v];
        nonfinite++;
        continue;
      }
      const e2 = e + k;
      out[i] = e2 <= 116 ? (v >> 8) & 0x80 : T[shifted(v, e, e2, k, BF)];
      if (hist[v]++ === 0) seen[nSeen++] = v;
    }
  }
  sumBlock(k, sf, T, BF, st, hist, seen, nSeen, nonfinite);
}

/**
 * The statistics of one block from its histogram, the one place they are computed for both
 * backends: summed once per distinct BF16 code in `seen[0..nSeen)` (first-seen order), weighted by
 * its count in `hist`, into `st`, resetting the counts read. A NaN/Inf code (listed only on the
 * WebAssembly path) adds its count to `nonfinite` and nothing else, as the TypeScript loop's
 * branch does; `nonfinite` starts at the count of those the loop left out of the histogram.
 */
function sumBlock(
  k: number,
  sf: number,
  T: Uint8Array,
  BF: Float32Array,
  st: ErrorStats,
  hist: Int32Array,
  seen: Uint16Array,
  nSeen: number,
  nonfinite: number,
): void {
  const E = E4M3_VALUES;
  let xx = 0;
  let ee = 0;
  let xy = 0;
  let yy = 0;
  let maxErr = st.maxAbsErr;
  let cnt = 0;
  let sat = 0;
  let flushed = 0;
  let nf = nonfinite;
  for (let j = 0; j < nSeen; j++) {
    const v = seen[j];
    const n = hist[v];
    hist[v] = 0;
    const e = (v >> 7) & 0xff;
    if (e === 0xff) {
      nf += n;
      continue;
    }
    const e2 = e + k;
    let code: number;
    if (e2 <= 116) code = (v >> 8) & 0x80;
    else {
      const sh = shifted(v, e, e2, k, BF);
      if ((sh & 0x7fff) > BF16_E4M3_MAX) sat += n;
      code = T[sh];
    }
    const x = BF[v];
    const y = E[code] * sf;
    const d = x - y;
    cnt += n;
    xx += n * x * x;
    ee += n * d * d;
    xy += n * x * y;
    yy += n * y * y;
    const ad = d < 0 ? -d : d;
    if (ad > maxErr) maxErr = ad;
    if (y === 0 && x !== 0) flushed += n;
  }
  st.count += cnt;
  st.xx += xx;
  st.ee += ee;
  st.xy += xy;
  st.yy += yy;
  st.maxAbsErr = maxErr;
  st.saturated += sat;
  st.flushed += flushed;
  st.nonfinite += nf;
}

/** The BF16 view `amaxFromBits` reads (NaN above the Inf pattern, else the BF16 value). */
const BF16_VIEW = inputView({ dtype: "bfloat16", codes: new Uint16Array(1) }, [1]);

const mxByteTables = new Map<string, Uint8Array>();

/** The multiplier 2^(byte - 127) of each E8M0 byte, NaN for 0xff. */
const MX_SCALES = Float64Array.from({ length: 256 }, (_, b) => (b === 0xff ? Number.NaN : 2 ** (b - 127)));

/**
 * `mxScaleByte` of every BF16 amax (magnitude bits 0..0x7fff) under an MX rule: a BF16 band's group
 * amax is one of these 32768 values, so each group's byte is one lookup (built on first use, about
 * 3 ms, per thread).
 */
function mxByteTable(rule: MxRule, element: MxElement): Uint8Array {
  const key = `${rule} ${element}`;
  let t = mxByteTables.get(key);
  if (t === undefined) {
    t = new Uint8Array(0x8000);
    for (let b = 0; b < 0x8000; b++) t[b] = mxScaleByte(rule, amaxFromBits(BF16_VIEW, b), element);
    mxByteTables.set(key, t);
  }
  return t;
}

/** The exponent shift k of a block scale sf = 2^-k: `x * (1/sf) = x * 2^k`. */
const shiftOf = (sf: number): number => 127 - ((f32Bits(sf) >>> 23) & 0xff);

/** Below this many elements "auto" keeps the TypeScript loops (instance, copies and calls). */
const MIN_AUTO = 1024;
/** Elements per chunk copied into the WebAssembly memory (at least one block row). */
const CHUNK = 1 << 18;

/**
 * The WebAssembly loops (./quant-bf16-wasm.ts) over the band: chunks of whole block rows are
 * copied in (from any byte offset), their block amax computed, the scales derived here as in the
 * TypeScript loop, then each block's codes. The codes are counted per scale rather than per block
 * (an element's code and error depend only on its BF16 pattern and the block's k), and `sumBlock`
 * reduces each scale's histogram once (patterns in ascending order): the same terms as the
 * TypeScript loop's, each an exact product, added in another order (every term of xx, ee, xy, yy
 * is >= 0, so the sums differ by rounding only; the counts and max |e| are exact). Returns false
 * (nothing done) where the kernel is unavailable or its memory cannot grow to the chunk.
 */
function quantBf16Wasm(
  data: Uint8Array,
  rows: number,
  cols: number,
  br: number,
  bc: number,
  out: Uint8Array,
  scaleOf: BlockScaleOf,
  nanBlocks: boolean,
  tsBlock: TsBlock,
  st: ErrorStats,
  T: Uint8Array,
  BF: Float32Array,
): boolean {
  const kern = QuantBf16Kernel.get();
  if (kern === null) return false;
  kern.clear();
  const reduce = (k: number, hist: Int32Array, list: Uint16Array, n: number) =>
    sumBlock(k, 2 ** -k, T, BF, st, hist, list, n, 0);
  const bh = Math.min(br, rows);
  const bw = Math.min(bc, cols);
  const sc = Math.ceil(cols / bw);
  const chunkRows = Math.min(rows, bh * Math.max(1, Math.floor(CHUNK / (bh * cols))));
  try {
    kern.reserve(chunkRows * cols, sc);
  } catch {
    return false; // memory.grow refused: the TypeScript loops need no more than the band
  }
  const amaxBits = new Uint32Array(sc);
  const off = data.byteOffset;
  // Blocks left to the TypeScript loop, run over the chunk's codes once they are stored: NaN MX
  // blocks, and scales that shift subnormal inputs into E4M3's range (k > 116: MX groups of tiny
  // amax), which the SIMD loop flushes to zero.
  const later: number[] = [];
  for (let g0 = 0; g0 < rows; g0 += chunkRows) {
    const g1 = Math.min(rows, g0 + chunkRows);
    kern.load(new Uint8Array(data.buffer, off + g0 * cols * 2, (g1 - g0) * cols * 2));
    for (let r0 = g0; r0 < g1; r0 += bh) {
      const r1 = Math.min(g1, r0 + bh);
      const bi = r0 / bh;
      kern.amax(r0 - g0, r1 - g0, cols, bw, amaxBits);
      // The block row's columns are planned, then coded in one call (or more: a slot about to
      // be reduced first gets the blocks planned into it).
      let j0 = 0;
      let bj = 0;
      const flush = () => {
        kern.groups(r0 - g0, r1 - g0, cols, bw, j0, bj);
        j0 = bj;
      };
      for (; bj < sc; bj++) {
        const sf = scaleOf(bi * sc + bj, amaxBits[bj]);
        const k = shiftOf(sf);
        if ((nanBlocks && Number.isNaN(sf)) || k > 116) {
          later.push(r0, r1, bj * bw, Math.min(cols, (bj + 1) * bw), sf);
          kern.plan(bj, -1);
        } else kern.plan(bj, kern.open(k, reduce, flush));
      }
      flush();
    }
    kern.store(out, g0 * cols, (g1 - g0) * cols);
    for (let i = 0; i < later.length; i += 5)
      tsBlock(later[i], later[i + 1], later[i + 2], later[i + 3], later[i + 4]);
    later.length = 0;
  }
  kern.drain(reduce);
  return true;
}

export function quantBf16Band(spec: BandSpec, data: Uint8Array): EncodedBand {
  const t = spec.target as Extract<BandSpec["target"], { kind: "fp8-block" | "mx" }>;
  const { rows, cols } = spec;
  const [br, bc] = t.kind === "mx" ? [1, 32] : t.block;
  const sr = Math.ceil(rows / br);
  const sc = Math.ceil(cols / bc);
  const n = rows * cols;
  // The E4M3 code of every BF16 pattern at scale 2^0 (the quantizer's own table: RNE, saturating).
  const T = pow2CodeTable("bfloat16", "float8_e4m3fn", 0, E4M3_MAX, "rne", true);
  const BF = valuesOf("bfloat16");
  const out = outBytes(n);
  const st = emptyStats();
  // Block scales: DeepSeek's UE8M0 rule as float32 powers of two, or MX scale bytes by the rule.
  const sfs = new Float32Array(t.kind === "mx" ? 0 : sr * sc);
  const mxBytes = new Uint8Array(t.kind === "mx" ? sr * sc : 0);
  const mxTable = t.kind === "mx" ? mxByteTable(t.rule, t.element) : null;
  const scaleOf: BlockScaleOf =
    t.kind === "mx"
      ? (i, bits) => {
          const byte = mxTable![bits & 0x7fff];
          mxBytes[i] = byte;
          return MX_SCALES[byte];
        }
      : (i, bits) => {
          sfs[i] = fp8BlockScale("ue8m0", amaxFromBits(BF16_VIEW, bits));
          return sfs[i];
        };
  const nanBlocks = t.kind === "mx";
  // The TypeScript loop's state, made on first use (the WebAssembly path may never need it).
  let h: Uint16Array | null = null;
  let hist: Int32Array | null = null;
  let seen: Uint16Array | null = null;
  const codes = (): Uint16Array => {
    if (h === null) {
      const b = data.byteOffset % 2 === 0 ? data : data.slice();
      h = new Uint16Array(b.buffer, b.byteOffset, n);
      hist = new Int32Array(65536);
      seen = new Uint16Array(65536);
    }
    return h;
  };
  const tsBlock: TsBlock = (r0, r1, c0, c1, sf) => {
    if (nanBlocks && Number.isNaN(sf)) return nanBlockBf16(out, cols, r0, r1, c0, c1, st);
    quantBlockBf16(codes(), out, cols, r0, r1, c0, c1, shiftOf(sf), sf, T, BF, st, hist!, seen!);
  };
  if (
    !(
      n > 0 &&
      preferWasm(n, MIN_AUTO) &&
      quantBf16Wasm(data, rows, cols, br, bc, out, scaleOf, nanBlocks, tsBlock, st, T, BF)
    )
  ) {
    const view = inputView({ dtype: "bfloat16", codes: codes() }, [rows, cols]);
    const amaxBits = new Uint32Array(sc);
    for (let bi = 0; bi < sr; bi++) {
      const r0 = bi * br;
      const r1 = Math.min(rows, r0 + br);
      bandAmaxBits(view, cols, r0, r1, bc, amaxBits);
      for (let bj = 0; bj < sc; bj++) {
        const c0 = bj * bc;
        tsBlock(r0, r1, c0, Math.min(cols, c0 + bc), scaleOf(bi * sc + bj, amaxBits[bj]));
      }
    }
  }
  // MX scale bytes; F32 powers of two as stored, or their E8M0 bytes (the quantization layer
  // checks they are powers of two).
  const scale = t.kind === "mx" ? mxBytes : fp8BlockScaleBytes(t, sfs);
  return { data: out, scale, stats: st };
}

/**
 * Largest finite |value| of BF16 codes, as BF16 magnitude bits: finite magnitudes order as their
 * bits (0..0x7f7f), Inf is 0x7f80 and NaNs lie above it. The same maximum as decoding them, without
 * the decode. NVFP4's per-tensor amax (convert's pre-pass); in WebAssembly SIMD where the backend
 * switch picks it.
 */
export function finiteAmaxBitsBf16(data: Uint8Array, m: number): number {
  if (preferWasm(data.length >> 1, MIN_AUTO)) {
    const kern = QuantBf16Kernel.get();
    if (kern !== null) return kern.finiteMax(data, m);
  }
  const b = data.byteOffset % 2 === 0 ? data : data.slice();
  const h = new Uint16Array(b.buffer, b.byteOffset, b.length >> 1);
  let best = m;
  for (let i = 0; i < h.length; i++) {
    const a = h[i] & 0x7fff;
    if (a > best && a < 0x7f80) best = a;
  }
  return best;
}
