/**
 * Fast path: BF16 -> block FP8 with UE8M0 (power-of-two) scales, and BF16 -> MXFP8 / MXFP4 (E4M3 or
 * E2M1 in 1x32 groups with an E8M0 scale byte, every MX scale rule but triton's), bit-identical to
 * decode-then-encode. The scale is 2^-k, so `x * (1/sf)` only shifts the exponent and the element
 * code is a lookup of the shifted BF16 bits in a 65536-entry table. The TypeScript loops here are
 * the specification and the fallback; the per-element work (block amax, codes, code histogram)
 * also runs in WebAssembly SIMD (./quant-bf16-wasm.ts, `preferWasm`), with the scales and the
 * statistics still computed here, by the same code for both.
 * E2M1 codes are written one a byte, then packed two a byte (element 2i in the low nibble).
 */

import { preferWasm } from "../../formats/wasm/kernel-backend.js";
import { amaxFromBits, bandAmaxBits, inputView } from "../block-amax.js";
import { valuesOf } from "../element-codes.js";
import { type ErrorStats, emptyStats } from "../error-stats.js";
import { pow2CodeTable } from "../fast-tables.js";
import { f32Bits } from "../float32.js";
import { outBytes } from "./buffers.js";
import type { EncodedBand } from "./encode-band.js";
import { type BlockCodes, QuantBf16Kernel } from "./quant-bf16-wasm.js";
import { E2M1_VALUES, E4M3_MAX, E4M3_VALUES, e2m1Nan, e4m3Nan } from "./tables.js";
import { fp8BlockScale, fp8BlockScaleBytes, type MxElement, mxScaleByte } from "./target-scales.js";
import type { BandSpec, MxRule } from "./types.js";

/** Whether `quantBf16Band` converts `spec`. */
export function quantBf16Applies(spec: BandSpec): boolean {
  const { source: s, target: t } = spec;
  if (s.kind !== "plain" || s.dtype !== "BF16" || spec.via) return false;
  if (t.kind === "fp8-block") return t.scaleFmt === "ue8m0";
  // MX groups of 32 along whole rows (encodeMx's shape); triton's rule rounds its own way.
  return t.kind === "mx" && t.rule !== "triton" && spec.cols % 32 === 0;
}

/** What the element loops and `sumBlock` need of an element format. */
interface FastElement {
  /** The code of every BF16 pattern at scale 2^0 (the quantizer's own table: RNE, saturating). */
  readonly T: Uint8Array;
  /** The value of every code. */
  readonly values: Float32Array;
  /** BF16 bits of the largest magnitude: shifted magnitudes above it saturate. */
  readonly maxBits: number;
  /**
   * Shifted exponent fields at or below this take `zeroCode` instead of the table: they round to a
   * signed zero. For E4M3, every e2 <= 116 (at most 2^-10, half the smallest subnormal; the tie
   * goes to the even code 0), as the WebAssembly loop has it. For E2M1 only e2 <= 0, where the
   * shifted value leaves BF16's normal range: its zeros (e2 <= 124) are about half the elements of
   * real weights, a branch the CPU cannot predict, and the table codes them as signed zero anyway.
   */
  readonly zeroE2: number;
  /** The code of -0. */
  readonly negZero: number;
  /**
   * compressed-tensors' E2M1 cast (`encodeMx`): a scaled value that is exactly -0.0 (x = -0, or a
   * product that underflowed float32) gets code 0, where other tiny negatives keep -0 (`zeroCode`;
   * `T` has +0 for -0).
   */
  readonly ctZero: boolean;
  /** The code every element of a NaN-scale block becomes. */
  readonly nan: number;
  /** Two codes a byte (E2M1). */
  readonly packed: boolean;
}

const fastElements = new Map<string, FastElement>();

/** The `FastElement` of E4M3 (block FP8, MXFP8) or E2M1 (MXFP4) under an MX rule (built once). */
function fastElement(element: MxElement, rule: MxRule | null): FastElement {
  const fp4 = element === "float4_e2m1fn";
  const ctZero = fp4 && rule === "ct";
  const key = `${element} ${ctZero}`;
  let el = fastElements.get(key);
  if (el === undefined) {
    const max = fp4 ? 6 : E4M3_MAX;
    let T = pow2CodeTable("bfloat16", element, 0, max, "rne", true);
    if (ctZero) {
      // -0 (e = 0) takes the table at every k >= 1 (`zeroE2` is 0), where no other pattern shifts
      // to -0, so its entry is compressed-tensors' +0 (a copy: the cache's table is the plain
      // quantizer's).
      T = T.slice();
      T[0x8000] = 0;
    }
    el = {
      T,
      values: fp4 ? E2M1_VALUES : E4M3_VALUES,
      maxBits: f32Bits(max) >>> 16,
      zeroE2: fp4 ? 0 : 116,
      negZero: fp4 ? 0x8 : 0x80,
      ctZero,
      nan: fp4 ? e2m1Nan() : e4m3Nan(),
      packed: fp4,
    };
    fastElements.set(key, el);
  }
  return el;
}

/**
 * The code of a finite BF16 pattern v (exponent field e) whose shifted exponent e2 = e + k is at or
 * below `zeroE2`: a signed zero. Under compressed-tensors' E2M1 rule a negative v whose product
 * v * 2^k rounds to -0.0 in float32 is +0 instead: only -0 itself, subnormal v, or e2 so low that the
 * product is below 2^-149 (e2 <= -23) can; those few are checked by doing the product.
 */
function zeroCode(v: number, e: number, e2: number, k: number, el: FastElement, BF: Float32Array): number {
  if (v < 0x8000) return 0;
  return el.ctZero && (e === 0 || e2 < -21) && Math.fround(BF[v] * 2 ** k) === 0 ? 0 : el.negZero;
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
  nan: number,
  st: ErrorStats,
): void {
  for (let r = r0; r < r1; r++) out.fill(nan, r * cols + c0, r * cols + c1);
  st.nonfinite += (r1 - r0) * (c1 - c0);
}

/**
 * The BF16 pattern of v * 2^k, exactly, for a finite v of exponent field e whose shifted exponent
 * e2 = e + k is above `zeroE2` (at or below it the code is a signed zero): the exponent replaced;
 * +-Inf where e2 overflows the field, which the table saturates as the quantizer saturates
 * v * 2^k = Inf;
 * for a subnormal (or zero) v, m * 2^(k - 133) with m < 128, a BF16 value for every k >= 1. Only
 * MX scales reach the last two: for E4M3 an all-subnormal group (byte 0, k = 127), a NaN group
 * under ModelOpt's rule; for E2M1 (`zeroE2` 0) any subnormal or zero v at k >= 1.
 */
function shifted(v: number, e: number, e2: number, k: number, BF: Float32Array): number {
  if (e === 0) return f32Bits(BF[v] * 2 ** k) >>> 16;
  return e2 >= 255 ? (v & 0x8000) | 0x7f80 : (v & 0x807f) | (e2 << 7);
}

/**
 * The BF16 patterns coded at one shift k, counted across the blocks of that k (`hist`, the patterns
 * seen listed in `seen[0..n)`) until `sumBlock` reduces them: once per band and k rather than per
 * block, which for MX's 32-element groups costs as much as coding them.
 */
interface KHist {
  k: number;
  readonly hist: Int32Array;
  readonly seen: Uint16Array;
  n: number;
}

/** Histograms the TypeScript loop keeps at once; a new k past them reduces one (round-robin). */
const TS_SLOTS = 8;
/** This thread's histograms, made on first use; each band leaves them zeroed. */
const kHists: KHist[] = [];

/**
 * One block of `quantBf16Band`'s TypeScript loop (a function of its own so V8 optimizes it as a
 * whole instead of on-stack-replacing the inner loop). With the block's power-of-two scale 2^-k
 * fixed, both the element code and the error of an element depend only on its BF16 code, so the
 * element loop only encodes and counts codes (into `kh`, the histogram of k); the error statistics
 * are summed later by `sumBlock`. Writes one code a byte, E2M1 too (packed at the end of the band).
 */
function quantBlockBf16(
  h: Uint16Array,
  out: Uint8Array,
  cols: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
  el: FastElement,
  BF: Float32Array,
  st: ErrorStats,
  kh: KHist,
): void {
  const { T, zeroE2 } = el;
  const { k, hist, seen } = kh;
  let nSeen = kh.n;
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
      out[i] = e2 <= zeroE2 ? zeroCode(v, e, e2, k, el, BF) : T[shifted(v, e, e2, k, BF)];
      if (hist[v]++ === 0) seen[nSeen++] = v;
    }
  }
  kh.n = nSeen;
  st.nonfinite += nonfinite;
}

/**
 * The statistics of the elements coded at one shift k, from their histogram, the one place they
 * are computed for both backends: summed once per distinct BF16 code in `seen[0..nSeen)`, weighted
 * by its count in `hist`, into `st`, resetting the counts read. A NaN/Inf code (listed only on the
 * WebAssembly path; the TypeScript loop counts those itself) adds its count to `nonfinite` and
 * nothing else.
 */
function sumBlock(
  k: number,
  sf: number,
  el: FastElement,
  BF: Float32Array,
  st: ErrorStats,
  hist: Int32Array,
  seen: Uint16Array,
  nSeen: number,
): void {
  const { T, values: E, maxBits, zeroE2 } = el;
  let xx = 0;
  let ee = 0;
  let xy = 0;
  let yy = 0;
  let maxErr = st.maxAbsErr;
  let cnt = 0;
  let sat = 0;
  let flushed = 0;
  let nf = 0;
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
    if (e2 <= zeroE2) code = zeroCode(v, e, e2, k, el, BF);
    else {
      const sh = shifted(v, e, e2, k, BF);
      if ((sh & 0x7fff) > maxBits) sat += n;
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

let scratch: Uint8Array | null = null;

/** This thread's byte scratch of `n` codes (contents undefined), reused by the next band. */
function codeScratch(n: number): Uint8Array {
  if (scratch === null || scratch.length < n) scratch = new Uint8Array(n);
  return scratch;
}

/**
 * Codes (one a byte, each below 16) packed two a byte as encodeMx packs E2M1: element 2i in the
 * low nibble. Four codes at a time, read as a little-endian u32 and written as a u16 (as the BF16
 * input is read: little-endian); `out` is zero-offset and its length even (whole 32-groups).
 */
function packNibbles(codes: Uint8Array, out: Uint8Array): void {
  const w = new Uint32Array(codes.buffer, codes.byteOffset, out.length >> 1);
  const o = new Uint16Array(out.buffer, out.byteOffset, out.length >> 1);
  for (let j = 0; j < w.length; j++) {
    const p = w[j];
    o[j] = (p & 0xf) | ((p >> 4) & 0xf0) | ((p >> 8) & 0xf00) | ((p >> 12) & 0xf000);
  }
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
  el: FastElement,
  BF: Float32Array,
): boolean {
  const kern = QuantBf16Kernel.get();
  if (kern === null) return false;
  kern.clear();
  const reduce = (k: number, hist: Int32Array, list: Uint16Array, n: number) =>
    sumBlock(k, 2 ** -k, el, BF, st, hist, list, n);
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
  // blocks, and scales that shift subnormal inputs into the element's range (k > 116 for E4M3,
  // k > 124 for E2M1: MX groups of tiny amax), which the SIMD loop flushes to zero; for E2M1 also
  // groups holding an Inf (ModelOpt's byte 0xFE), whose lanes its loop does not code, and under
  // compressed-tensors' zeros those of k < -16 (huge amax), where more than -0 scales to -0.0.
  const codesKind: BlockCodes = !el.packed ? "e4m3" : el.ctZero ? "e2m1-ct" : "e2m1";
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
        kern.groups(r0 - g0, r1 - g0, cols, bw, j0, bj, codesKind);
        j0 = bj;
      };
      for (; bj < sc; bj++) {
        const sf = scaleOf(bi * sc + bj, amaxBits[bj]);
        const k = shiftOf(sf);
        if (
          (nanBlocks && Number.isNaN(sf)) ||
          (el.packed ? k > 124 || amaxBits[bj] >= 0x7f80 || (el.ctZero && k < -16) : k > 116)
        ) {
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
  const el = fastElement(t.kind === "mx" ? t.element : "float8_e4m3fn", t.kind === "mx" ? t.rule : null);
  const BF = valuesOf("bfloat16");
  const out = outBytes(el.packed ? n / 2 : n);
  // The loops write a code a byte: E2M1's go to this thread's scratch, packed into `out` at the end.
  const codesOut = el.packed ? codeScratch(n) : out;
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
  const codes = (): Uint16Array => {
    if (h === null) {
      const b = data.byteOffset % 2 === 0 ? data : data.slice();
      h = new Uint16Array(b.buffer, b.byteOffset, n);
    }
    return h;
  };
  // The histogram of each k in use (index k + 127 into `kHists`, -1 for none), reduced when it is
  // needed for another k and at the end. Counts left by a band that threw midway are cleared first.
  for (const kh of kHists) {
    for (let j = 0; j < kh.n; j++) kh.hist[kh.seen[j]] = 0;
    kh.n = 0;
  }
  const slotOfK = new Int8Array(256).fill(-1);
  let used = 0;
  let victim = 0;
  const reduceTs = (kh: KHist) => {
    sumBlock(kh.k, 2 ** -kh.k, el, BF, st, kh.hist, kh.seen, kh.n);
    kh.n = 0;
    slotOfK[kh.k + 127] = -1;
  };
  const histOf = (k: number): KHist => {
    let i = slotOfK[k + 127];
    if (i < 0) {
      if (used < TS_SLOTS) {
        i = used++;
        if (i === kHists.length)
          kHists.push({ k, hist: new Int32Array(65536), seen: new Uint16Array(65536), n: 0 });
      } else {
        i = victim;
        victim = (victim + 1) % TS_SLOTS;
        reduceTs(kHists[i]);
      }
      kHists[i].k = k;
      slotOfK[k + 127] = i;
    }
    return kHists[i];
  };
  const tsBlock: TsBlock = (r0, r1, c0, c1, sf) => {
    if (nanBlocks && Number.isNaN(sf)) return nanBlockBf16(codesOut, cols, r0, r1, c0, c1, el.nan, st);
    quantBlockBf16(codes(), codesOut, cols, r0, r1, c0, c1, el, BF, st, histOf(shiftOf(sf)));
  };
  if (
    !(
      n > 0 &&
      preferWasm(n, MIN_AUTO) &&
      quantBf16Wasm(data, rows, cols, br, bc, codesOut, scaleOf, nanBlocks, tsBlock, st, el, BF)
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
  for (let i = 0; i < used; i++) if (kHists[i].n > 0) reduceTs(kHists[i]);
  if (el.packed) packNibbles(codesOut, out);
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
