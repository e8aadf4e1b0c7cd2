/**
 * Per-output-channel symmetric integers (Ascend W8A8_DYNAMIC and W4A8_DYNAMIC weights), computed the
 * way msModelSlim's data-free min-max path computes them for a BF16 model (../shared/docs/ASCEND.md
 * §5, §7; the steps and their sources are in ../int8-channel.ts and docs/ASCEND.md): every row gets
 * one scale from its BF16 amax and every element one integer code, all in BF16 arithmetic.
 *
 * INT8: s = max(bf16(fl32(bf16(amax) / 127)), 2^-23), q = clamp(rne(bf16(fl32(w / s))), -128, 127).
 * INT4: the same with 7 and [-8, 7] (symmetric int4, int_quantization.py:79-85,146-155), then the
 * codes packed two per byte along the output dimension and the `scale_bias` vllm-ascend's W4A8
 * kernel expects (ASCEND.md §4.2).
 */
import { type ErrorStats, emptyStats } from "../error-stats.js";
import { QuantError } from "../errors.js";
import { outBytes } from "./buffers.js";
import { type CodeBandSource, quantizeRowsWasm } from "./int-channel-wasm.js";
import { bf16Round } from "./tables.js";

/** msModelSlim's scale floor: `torch.finfo(torch.float32).eps` cast to BF16 (exact: 2^-23). */
export const INT_CHANNEL_EPS = 2 ** -23;

export type IntBits = 8 | 4;

/** The largest code (and the scale's divisor) and the smallest code of a symmetric signed integer. */
export function intRange(bits: IntBits): { qmin: number; qmax: number } {
  return bits === 8 ? { qmin: -128, qmax: 127 } : { qmin: -8, qmax: 7 };
}

/**
 * The scale of a row whose largest magnitude is `amax`: max(bf16(fl32(bf16(amax) / qmax)), 2^-23),
 * a BF16-representable value. NaN amax gives NaN (torch.maximum propagates NaN), Inf gives Inf; a
 * zero row gets the 2^-23 floor.
 */
export function intChannelScale(amax: number, bits: IntBits = 8): number {
  const s = bf16Round(Math.fround(bf16Round(Math.abs(amax)) / intRange(bits).qmax));
  return Number.isNaN(s) ? s : Math.max(s, INT_CHANNEL_EPS);
}

/** A quantized band: `rows * cols` codes (row-major, unpacked) and one float32 scale per row. */
export interface IntChannelBand {
  codes: Int8Array;
  /** Per-row scales (`weight_scale`, [out, 1] on disk), BF16-representable float32 values. */
  scales: Float32Array;
  /** Rows whose scale is NaN or Inf (a NaN or Inf weight): their codes are all 0. */
  nonFiniteRows: number;
}

/**
 * Quantizes `rows x cols` weight values to per-row symmetric integers as msModelSlim's
 * `WeightPerChannelMinmax` does for a BF16 model. Values are first rounded to BF16, as the BF16
 * model holds them. Non-finite input has no defined upstream result (torch's float -> int8 cast of
 * NaN is undefined): such a row's codes are 0, its scale is kept as computed (NaN or Inf), and it is
 * counted in `nonFiniteRows`.
 */
export function quantizeIntChannel(
  x: Float32Array,
  rows: number,
  cols: number,
  bits: IntBits = 8,
): IntChannelBand {
  return quantizeRows(x, rows, cols, bits, null);
}

/** Scratch for BF16 rounding on float32 bits. */
const f2 = new Float32Array(2);
const i2 = new Int32Array(f2.buffer);

/**
 * The code of the value whose float32 bits are `wBits` (a BF16 value) for scale `s`: rne(bf16(fl32(w /
 * s))) clamped to [qmin, qmax] (torch `round_()` is half to even). BF16 rounding is done on the
 * float32 bits (add 0x7FFF plus the kept LSB, truncate), in signed 32-bit arithmetic (V8's integer
 * fast path; finite values do not overflow).
 */
function intCodeOfBits(wBits: number, s: number, qmin: number, qmax: number): number {
  i2[0] = wBits;
  f2[1] = f2[0] / s;
  const tb = i2[1];
  i2[1] = (tb + 0x7fff + ((tb >>> 16) & 1)) & -65536;
  const t = f2[1];
  if (t >= qmax) return qmax;
  if (t <= qmin) return qmin;
  const q = Math.round(t);
  return q - t === 0.5 && (q & 1) !== 0 ? q - 1 : q;
}

/** The BF16 (RNE) bits of float32 bits `b`, magnitude only (15 bits); `b` finite. */
const bf16Magnitude = (b: number) => ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0x7fff;

/** The per-row table of `codeTable`, reused between rows and calls. */
let table = new Uint8Array(2048);

/**
 * The code magnitude of every BF16 magnitude pattern `p` in [base, top] for scale `s`, at index
 * `p - base`: min(rne(bf16(fl32(|w| / s))), -qmin). Division and both roundings are symmetric in
 * the sign, so a negative w's code is minus its magnitude's (-qmin = 128 reachable only there) and a
 * positive one's is clamped to qmax. `base` is the pattern of s/4: every smaller |w| gives |w| / s <
 * 1/4, code 0. A row's values span about log2(127 * 4) binades above it, 128 patterns each, so the
 * table has about 1200 entries whatever the row length.
 */
function codeTable(s: number, top: number, qmin: number): { base: number; size: number } {
  f2[0] = s * 0.25;
  const base = (i2[0] >>> 16) & 0x7fff;
  const size = Math.max(0, top - base + 1);
  if (table.length < size) table = new Uint8Array(size * 2);
  for (let k = 0; k < size; k++) table[k] = -intCodeOfBits((base + k) << 16, -s, qmin, 0);
  return { base, size };
}

/**
 * The loop of `quantizeIntChannel`, with the error statistics of y = fl32(q * s) against `x` summed
 * in the same pass when `stats` is given. A row holding NaN or Inf (or a value whose BF16 rounding
 * overflows, which makes the BF16 amax Inf) gets codes 0. Rows longer than their code table
 * (`codeTable`) look each element's code up by its BF16 pattern; shorter rows compute it directly
 * (`intCodeOfBits`); both give the same codes (test/quant/int-channel-table.test.ts). Where
 * WebAssembly SIMD is available, ./int-channel-wasm.ts runs these loops (same codes and scales,
 * the sums in another order; test/quant/int-channel-wasm.test.ts).
 */
function quantizeRows(
  x: Float32Array,
  rows: number,
  cols: number,
  bits: IntBits,
  stats: ErrorStats | null,
): IntChannelBand {
  const { qmin, qmax } = intRange(bits);
  const codes = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  const viaWasm = quantizeRowsWasm(
    x,
    rows,
    cols,
    qmin,
    qmax,
    (a) => intChannelScale(a, bits),
    codes,
    scales,
    stats,
  );
  if (viaWasm !== null) {
    if (stats !== null) stats.nonfinite += viaWasm * cols;
    return { codes, scales, nonFiniteRows: viaWasm };
  }
  const xb = new Int32Array(x.buffer, x.byteOffset, rows * cols);
  const yOf = new Float64Array(qmax - qmin + 1);
  let nonFiniteRows = 0;
  let count = 0;
  let xx = 0;
  let ee = 0;
  let xy = 0;
  let yy = 0;
  let maxAbsErr = 0;
  let flushed = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let amax = 0;
    let nan = false;
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(x[o + c]);
      if (a > amax) amax = a;
      else if (Number.isNaN(a)) nan = true;
    }
    // Rounding is monotonic, so bf16(max |w|) is the max of the BF16 values.
    const s = intChannelScale(nan ? Number.NaN : amax, bits);
    scales[r] = s;
    if (!Number.isFinite(s)) {
      nonFiniteRows++;
      continue; // codes stay 0; every pair is non-finite
    }
    f2[0] = amax;
    const top = bf16Magnitude(i2[0]);
    f2[0] = s * 0.25;
    const lookup = top - ((i2[0] >>> 16) & 0x7fff) < cols;
    if (lookup) {
      const { base } = codeTable(s, top, qmin);
      for (let c = 0; c < cols; c++) {
        const b = xb[o + c];
        const k = bf16Magnitude(b) - base;
        const u = k < 0 ? 0 : table[k];
        codes[o + c] = b < 0 ? -u : Math.min(u, qmax);
      }
    } else {
      for (let c = 0; c < cols; c++) {
        const b = xb[o + c];
        codes[o + c] = intCodeOfBits((b + 0x7fff + ((b >>> 16) & 1)) & -65536, s, qmin, qmax);
      }
    }
    if (stats === null) continue;
    for (let q = qmin; q <= qmax; q++) yOf[q - qmin] = Math.fround(q * s);
    for (let c = 0; c < cols; c++) {
      const xv = x[o + c];
      const y = yOf[codes[o + c] - qmin];
      const e = xv - y;
      xx += xv * xv;
      ee += e * e;
      xy += xv * y;
      yy += y * y;
      const ae = e < 0 ? -e : e;
      if (ae > maxAbsErr) maxAbsErr = ae;
      if (y === 0 && xv !== 0) flushed++;
    }
    count += cols;
  }
  if (stats !== null) {
    stats.count += count;
    stats.xx += xx;
    stats.ee += ee;
    stats.xy += xy;
    stats.yy += yy;
    if (maxAbsErr > stats.maxAbsErr) stats.maxAbsErr = maxAbsErr;
    stats.flushed += flushed;
    stats.nonfinite += nonFiniteRows * cols;
  }
  return { codes, scales, nonFiniteRows };
}

/**
 * INT4 codes `[rows, cols]` packed as msModelSlim's `w4a8_pack_int4` stores them (pack.py:25-90,
 * ASCEND.md §4.2): rows 2j and 2j+1 share byte row j, row 2j in the low nibble, row 2j+1 in the
 * high nibble, two's-complement nibbles: `[rows / 2, cols]`.
 */
export function packInt4Rows(codes: Int8Array, rows: number, cols: number): Uint8Array {
  if (rows % 2 !== 0) {
    throw new QuantError("invalid-shape", `INT4 rows pack in pairs along the output dimension: ${rows} rows`);
  }
  const out = outBytes((rows / 2) * cols);
  for (let j = 0; j < rows / 2; j++) {
    const lo = 2 * j * cols;
    const hi = lo + cols;
    const o = j * cols;
    for (let c = 0; c < cols; c++) out[o + c] = ((codes[hi + c] & 15) << 4) | (codes[lo + c] & 15);
  }
  return out;
}

/** The INT4 codes `[rows, cols]` of `packInt4Rows`' bytes. */
export function unpackInt4Rows(bytes: Uint8Array, rows: number, cols: number): Int8Array {
  const out = new Int8Array(rows * cols);
  for (let j = 0; j < rows / 2; j++) {
    const o = j * cols;
    for (let c = 0; c < cols; c++) {
      const b = bytes[o + c];
      out[2 * j * cols + c] = ((b & 15) << 28) >> 28;
      out[(2 * j + 1) * cols + c] = b >> 4 >= 8 ? (b >> 4) - 16 : b >> 4;
    }
  }
  return out;
}

/**
 * W4A8's `scale_bias` (msModelSlim `process_scale(prefix, deq, 16)`, ASCEND.md §4.2): 8 times the
 * sum of the dequantized row, `[rows, 1]` (gate/up projections), or of each of 16 contiguous
 * chunks of it, `[rows, 16]` (down projections). Since q is an integer, Σ q·s = s·Σ q: the value
 * is computed exactly and rounded to float32 once (upstream sums float32 products in an order
 * PyTorch leaves open, so its last bit may differ; vllm-ascend sums the 16 columns at load).
 */
export function int4ScaleBias(
  codes: Int8Array,
  scales: Float32Array,
  rows: number,
  cols: number,
  chunks: 1 | 16,
): Float32Array {
  if (cols % chunks !== 0) {
    throw new QuantError("invalid-shape", `scale_bias splits ${cols} columns into ${chunks} equal chunks`);
  }
  const out = new Float32Array(rows * chunks);
  const w = cols / chunks;
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < chunks; k++) {
      let sum = 0;
      const o = r * cols + k * w;
      for (let c = 0; c < w; c++) sum += codes[o + c];
      out[r * chunks + k] = 8 * sum * scales[r];
    }
  }
  return out;
}

/** An encoded integer band (an `EncodedBand`): its codes, scales, and W4A8's per-row `scale_bias`. */
export interface EncodedIntBand {
  data: Uint8Array;
  scale: Uint8Array;
  aux: Uint8Array | null;
  stats: ErrorStats;
}

/**
 * Encode float32 band values as per-channel integers: codes (INT8 `[rows, cols]`, or INT4 packed
 * `[rows / 2, cols]`), float32 scales per row, W4A8's `scale_bias`, and the error of y = q·s
 * against the input values (the FP8 source, before its BF16 rounding).
 */
export function encodeIntChannel(
  target: { bits: IntBits; scaleBias?: 1 | 16 },
  x: Float32Array,
  rows: number,
  cols: number,
): EncodedIntBand {
  const stats = emptyStats();
  return packIntBand(target, quantizeRows(x, rows, cols, target.bits, stats), rows, cols, stats);
}

/**
 * `encodeIntChannel` of the band whose float32 values `source` holds as 8-bit block codes and their
 * decode tables: the WebAssembly kernel decodes each chunk of rows in its own memory and codes it
 * there, so the float32 values never exist in JavaScript (the W8A8/W4A8 fast path of FP8 sources).
 * The same codes, scales and statistics as `encodeIntChannel` on the decoded band with the
 * WebAssembly backend; null where that backend does not run (the caller decodes and calls
 * `encodeIntChannel`).
 */
export function encodeIntChannelCodes(
  target: { bits: IntBits; scaleBias?: 1 | 16 },
  source: CodeBandSource,
  rows: number,
  cols: number,
): EncodedIntBand | null {
  const { qmin, qmax } = intRange(target.bits);
  const codes = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  const stats = emptyStats();
  const scaleOf = (a: number) => intChannelScale(a, target.bits);
  const nonFiniteRows = quantizeRowsWasm(source, rows, cols, qmin, qmax, scaleOf, codes, scales, stats);
  if (nonFiniteRows === null) return null;
  stats.nonfinite += nonFiniteRows * cols;
  return packIntBand(target, { codes, scales, nonFiniteRows }, rows, cols, stats);
}

/** The bytes of a quantized integer band: INT8 codes or packed INT4, scales, W4A8's `scale_bias`. */
function packIntBand(
  target: { bits: IntBits; scaleBias?: 1 | 16 },
  q: IntChannelBand,
  rows: number,
  cols: number,
  stats: ErrorStats,
): EncodedIntBand {
  const data =
    target.bits === 8
      ? new Uint8Array(q.codes.buffer, q.codes.byteOffset, q.codes.length)
      : packInt4Rows(q.codes, rows, cols);
  const aux =
    target.bits === 4 && target.scaleBias !== undefined
      ? int4ScaleBias(q.codes, q.scales, rows, cols, target.scaleBias)
      : null;
  return {
    data,
    scale: new Uint8Array(q.scales.buffer),
    aux: aux === null ? null : new Uint8Array(aux.buffer),
    stats,
  };
}

/**
 * The values an integer band stands for: fl32(q * s) per element (`(weight - weight_offset) *
 * weight_scale` with a zero offset, ascendv1.md:170-187). `data` is INT8 `[rows, cols]` or packed
 * INT4 `[rows / 2, cols]`; `scale` the rows' float32 scales as bytes. A NaN or Inf scale gives a
 * NaN row (0 * Inf is NaN).
 */
export function decodeIntChannel(
  bits: IntBits,
  data: Uint8Array,
  scale: Uint8Array,
  rows: number,
  cols: number,
): Float32Array {
  const codes =
    bits === 8 ? new Int8Array(data.buffer, data.byteOffset, rows * cols) : unpackInt4Rows(data, rows, cols);
  const s =
    scale.byteOffset % 4 === 0
      ? new Float32Array(scale.buffer, scale.byteOffset, rows)
      : new Float32Array(scale.slice(0, rows * 4).buffer);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const sv = s[r];
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[o + c] = codes[o + c] * sv;
  }
  return out;
}
