/**
 * An independent, deliberately plain transcription of msModelSlim's data-free steps for a DeepSeek
 * FP8 checkpoint (../shared/docs/ASCEND.md §5, §7; the header of src/quant/int8-channel.ts), for
 * tests to compare the library's Ascend output with. It shares nothing with the library's codecs or
 * kernels: its own E4M3 decoder, its own BF16 rounding on float32 bits, one loop per element.
 *
 * - FP8 -> BF16 (msmodelslim/model/deepseek_v3/convert_fp8_to_bf16.py:38-70):
 *   w = bf16(fl32(e4m3(code) * scale_inv[i / 128][j / 128])).
 * - W8A8_DYNAMIC (minmax.py:202-235, int_quantization.py:41-97,130-157), per output row, in BF16:
 *   amax = max(-min(w, 0), max(w, 0)); s = max(bf16(fl32(amax / 127)), 2^-23);
 *   q = clamp(round_half_even(bf16(fl32(w / s))), -128, 127).
 * - W4A8_DYNAMIC: the same with 7 and [-8, 7] (int_quantization.py:79-85,146-155); codes packed
 *   two per byte along the output dimension, byte row j = (q[2j+1] << 4) | (q[2j] & 15) (pack.py:
 *   25-90), `[out / 2, in]`; scale_bias = 8 · Σ_k q[n,k] · s[n] over the row (`[out, 1]`) or over
 *   each of 16 contiguous column chunks (`[out, 16]`, down projections), computed in double and
 *   rounded to float32 once (ASCEND.md §4.2).
 *
 * Shared by test/convert/ascend.test.ts and test/quant/int8-channel.test.ts. No vitest here.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> BF16 (round to nearest even on the float32 bits), widened back; NaN stays NaN. */
export function bf16(v: number): number {
  f32[0] = v;
  const bits = u32[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return Number.NaN;
  const lsb = (bits >>> 16) & 1;
  u32[0] = ((bits + 0x7fff + lsb) >>> 0) & 0xffff0000;
  return f32[0];
}

/** The top 16 bits of a BF16 value held as a float32 (its BF16 code). */
export function bf16Code(v: number): number {
  f32[0] = v;
  return u32[0] >>> 16;
}

/** E4M3 (fn) code -> value: bias 7, 3 mantissa bits, no Inf, 0x7F/0xFF NaN. */
export function e4m3(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const e = (code >> 3) & 0xf;
  const m = code & 7;
  if (e === 15 && m === 7) return Number.NaN;
  return e === 0 ? sign * (m / 8) * 2 ** -6 : sign * (1 + m / 8) * 2 ** (e - 7);
}

/** torch.round: half to even. */
export function rint(t: number): number {
  const r = Math.round(t);
  return Math.abs(t % 1) === 0.5 ? 2 * Math.round(t / 2) : r;
}

export type Bits = 8 | 4;
const QMAX = { 8: 127, 4: 7 } as const;
const QMIN = { 8: -128, 4: -8 } as const;

/**
 * One row by msModelSlim's steps: min/max with 0, max(-min, max) / qmax in BF16, the eps floor,
 * round, clamp. A NaN in the row gives a NaN scale; codes of a non-finite scale are 0 (the
 * library's documented choice for torch's undefined NaN -> int8 cast).
 */
export function refRow(w: ArrayLike<number>, bits: Bits = 8): { q: number[]; s: number } {
  const wb = Array.from(w, bf16);
  let mn = 0;
  let mx = 0;
  let nan = false;
  for (const v of wb) {
    if (Number.isNaN(v)) nan = true;
    mn = Math.min(mn, v);
    mx = Math.max(mx, v);
  }
  const amax = nan ? Number.NaN : Math.max(-mn, mx);
  let s = bf16(Math.fround(amax / QMAX[bits]));
  if (!Number.isNaN(s)) s = Math.max(s, bf16(2 ** -23));
  const q = wb.map((v) => {
    const t = bf16(Math.fround(v / s));
    if (Number.isNaN(t)) return 0;
    return Math.min(QMAX[bits], Math.max(QMIN[bits], rint(t))) + 0; // + 0: an int8 has no -0
  });
  return { q, s };
}

/** Codes (row-major) and one float32 scale per row of `rows x cols` values. */
export function refBand(
  x: ArrayLike<number>,
  rows: number,
  cols: number,
  bits: Bits = 8,
): { codes: Int8Array; scales: Float32Array } {
  const codes = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  const row = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) row[c] = x[r * cols + c];
    const { q, s } = refRow(row, bits);
    codes.set(q, r * cols);
    scales[r] = s;
  }
  return { codes, scales };
}

/**
 * DeepSeek's FP8 weight dequantized as msModelSlim's converter does: `experts` stacked `rows x
 * cols` matrices of E4M3 codes, scale grid `[experts, ceil(rows / 128), ceil(cols / 128)]` of
 * float32; each element bf16(fl32(e4m3 * scale_inv of its block)). BF16 values as float32.
 */
export function refDequant(
  codes: Uint8Array,
  scaleInv: Float32Array,
  rows: number,
  cols: number,
  experts = 1,
): Float32Array {
  const gr = Math.ceil(rows / 128);
  const gc = Math.ceil(cols / 128);
  const out = new Float32Array(experts * rows * cols);
  for (let e = 0; e < experts; e++)
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const i = (e * rows + r) * cols + c;
        const s = scaleInv[e * gr * gc + Math.floor(r / 128) * gc + Math.floor(c / 128)];
        out[i] = bf16(Math.fround(e4m3(codes[i]) * s));
      }
  return out;
}

/** INT4 codes `[rows, cols]` packed along the output dimension: `[rows / 2, cols]` bytes. */
export function refPackInt4(q: Int8Array, rows: number, cols: number): Uint8Array {
  const out = new Uint8Array((rows / 2) * cols);
  for (let j = 0; j < rows / 2; j++)
    for (let k = 0; k < cols; k++) {
      const lo = q[2 * j * cols + k];
      const hi = q[(2 * j + 1) * cols + k];
      out[j * cols + k] = ((hi << 4) | (lo & 15)) & 0xff;
    }
  return out;
}

/** W4A8's `scale_bias` `[rows, chunks]`: 8 · Σ q · s over each chunk of the row, in double, then float32. */
export function refScaleBias(
  q: Int8Array,
  s: Float32Array,
  rows: number,
  cols: number,
  chunks: 1 | 16,
): Float32Array {
  const out = new Float32Array(rows * chunks);
  const w = cols / chunks;
  for (let n = 0; n < rows; n++)
    for (let j = 0; j < chunks; j++) {
      let sum = 0;
      for (let k = j * w; k < (j + 1) * w; k++) sum += q[n * cols + k] * s[n];
      out[n * chunks + j] = 8 * sum;
    }
  return out;
}
