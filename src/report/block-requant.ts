import { decodeTable } from "../formats/index.js";
import { deepseekScaleExponent } from "../quant/scale-rules.js";

/** Error sums of one or more blocks after UE8M0 requantization. */
export interface RequantSums {
  /** Sum of squared dequantized values (finite elements). */
  ref2: number;
  /** Sum of squared requantization errors. */
  err2: number;
  maxAbsError: number;
  elements: number;
  /** Non-zero elements that became zero. */
  flushed: number;
  /** NaN elements (codes 0x7F/0xFF), left out of the sums. */
  nan: number;
  blocks: number;
  /** Blocks whose scale changed (stored scale != the UE8M0 scale). */
  changedBlocks: number;
}

export function emptySums(): RequantSums {
  return { ref2: 0, err2: 0, maxAbsError: 0, elements: 0, flushed: 0, nan: 0, blocks: 0, changedBlocks: 0 };
}

export function addSums(a: RequantSums, b: RequantSums): void {
  a.ref2 += b.ref2;
  a.err2 += b.err2;
  a.maxAbsError = Math.max(a.maxAbsError, b.maxAbsError);
  a.elements += b.elements;
  a.flushed += b.flushed;
  a.nan += b.nan;
  a.blocks += b.blocks;
  a.changedBlocks += b.changedBlocks;
}

/**
 * Requantizes E4M3 blocks with the DeepSeek-V3.1 / DeepGEMM UE8M0 rule, as vLLM's
 * `requant_weight_ue8m0_inplace` and SGLang do at load on Blackwell: dequantize w = fl32(code * s),
 * sf = 2^ceil(log2(max(amax, 1e-4) / 448)) (DeepGEMM `ceil_to_ue8m0`, via `deepseekScaleExponent`),
 * q = E4M3(w * 2^-k) with RNE and saturation, w' = q * sf. Within a block every element with the
 * same code has the same value, so a block is described completely by the histogram of its 256
 * codes: the error is computed once per code present, not once per element.
 */
export class BlockRequantizer {
  /** E4M3 magnitudes of codes 0..126 (127 is NaN). */
  private readonly mags = decodeTable("float8_e4m3fn").slice(0, 127);
  /** Midpoints between consecutive magnitudes: y > mid[j] rounds above code j. */
  private readonly mids = Float64Array.from({ length: 126 }, (_, j) => (this.mags[j] + this.mags[j + 1]) / 2);
  private readonly counts = new Float64Array(127);

  /** Adds the error of one block (code histogram `hist[at .. at+256)`, stored scale `s`) to `out`. */
  block(hist: Uint32Array, at: number, s: number, out: RequantSums): void {
    const mags = this.mags;
    const mids = this.mids;
    const cnt = this.counts;
    // +x and -x have the same error magnitude: merge the two signs of every code.
    let top = -1;
    let n = 0;
    for (let c = 0; c < 127; c++) {
      const h = hist[at + c] + hist[at + c + 128];
      cnt[c] = h;
      if (h !== 0) {
        n += h;
        top = c;
      }
    }
    const nan = hist[at + 127] + hist[at + 255];
    out.nan += nan;
    if (n + nan === 0) return;
    out.blocks++;
    const amax = top >= 0 ? Math.fround(mags[top] * s) : 0;
    const k = deepseekScaleExponent(amax, "float8_e4m3fn");
    const sf = 2 ** k;
    const inv = 2 ** -k;
    const same = Math.fround(s) === sf;
    if (!same) out.changedBlocks++;
    let ref2 = 0;
    let err2 = 0;
    let maxErr = out.maxAbsError;
    let flushed = 0;
    let j = 0;
    for (let c = 0; c <= top; c++) {
      const h = cnt[c];
      if (h === 0) continue;
      const w = Math.fround(mags[c] * s);
      ref2 += h * w * w;
      if (same) continue;
      // RNE onto the E4M3 grid, saturating at 448: y grows with c, so the code pointer only advances.
      const y = Math.fround(w * inv);
      while (j < 126 && y > mids[j]) j++;
      const q = j < 126 && y === mids[j] && (j & 1) === 1 ? j + 1 : j;
      const back = Math.fround(mags[q] * sf);
      const e = back - w;
      err2 += h * e * e;
      const ae = e < 0 ? -e : e;
      if (ae > maxErr) maxErr = ae;
      if (back === 0 && w !== 0) flushed += h;
    }
    out.ref2 += ref2;
    out.err2 += err2;
    out.maxAbsError = maxErr;
    out.elements += n;
    out.flushed += flushed;
  }
}

/**
 * Adds the code histograms of the blocks of one band of rows: `codes` is a row-major `[rows, cols]`
 * matrix (starting at `offset`), rows `r0..r1` form one block row, `bc` is the block width; the
 * histogram of block column j goes to `hist[j*256 .. j*256+256)`. When rows, blocks and the buffer
 * are 4-byte aligned the bytes are read four at a time (about 2.5x faster in V8).
 */
export function bandHistograms(
  codes: Uint8Array,
  offset: number,
  cols: number,
  r0: number,
  r1: number,
  bc: number,
  hist: Uint32Array,
): void {
  if ((codes.byteOffset & 3) === 0 && (offset & 3) === 0 && (cols & 3) === 0 && (bc & 3) === 0) {
    const words = new Uint32Array(codes.buffer, codes.byteOffset, codes.byteLength >>> 2);
    const bw = bc >>> 2;
    for (let r = r0; r < r1; r++) {
      let p = (offset + r * cols) >>> 2;
      const rowEnd = p + (cols >>> 2);
      for (let hb = 0; p < rowEnd; hb += 256) {
        const end = Math.min(p + bw, rowEnd);
        for (; p < end; p++) {
          const w = words[p];
          hist[hb + (w & 255)]++;
          hist[hb + ((w >>> 8) & 255)]++;
          hist[hb + ((w >>> 16) & 255)]++;
          hist[hb + (w >>> 24)]++;
        }
      }
    }
    return;
  }
  for (let r = r0; r < r1; r++) {
    let p = offset + r * cols;
    const rowEnd = p + cols;
    for (let hb = 0; p < rowEnd; hb += 256) {
      const end = Math.min(p + bc, rowEnd);
      for (; p < end; p++) hist[hb + codes[p]]++;
    }
  }
}

/** Relative Frobenius error sqrt(err2/ref2) (0 when both are 0). */
export function relFrobenius(s: RequantSums): number {
  return s.err2 === 0 ? 0 : s.ref2 === 0 ? Number.POSITIVE_INFINITY : Math.sqrt(s.err2 / s.ref2);
}

/** SQNR in dB, 10 log10(ref2/err2); null when the error is exactly zero (infinite SQNR). */
export function sqnrDb(s: RequantSums): number | null {
  return s.err2 === 0 ? null : 10 * Math.log10(s.ref2 / s.err2);
}
