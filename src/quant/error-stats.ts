/**
 * The one record of quantization error: plain additive sums over (x, y) pairs, x an original value
 * and y what it became after the round trip. A plain JSON-able object, so it crosses worker
 * boundaries and conversion markers as is, and partial results merge by adding fields. Its field
 * names are the ones `fp8kit convert --json` and the conversion markers have always written.
 */
export interface ErrorStats {
  /** Pairs with finite x and y, summed below. */
  count: number;
  /** sum x^2, sum (x - y)^2, sum x*y, sum y^2 over those pairs. */
  xx: number;
  ee: number;
  xy: number;
  yy: number;
  maxAbsErr: number;
  /**
   * Pairs where x or y is NaN/Inf (left out of the sums): NaN/Inf in the input, and finite values
   * that became NaN/Inf (overflow, a NaN block scale). For a conversion, the NaN/Inf values written.
   */
  nonfinite: number;
  /** Finite x beyond the largest magnitude its block could hold, written as a finite value (clipped). */
  saturated: number;
  /** Non-zero x that became zero. */
  flushed: number;
  /** Scale blocks measured and those whose scale changed (requantization measurements; else 0). */
  blocks: number;
  changedBlocks: number;
}

export function emptyStats(): ErrorStats {
  return {
    count: 0,
    xx: 0,
    ee: 0,
    xy: 0,
    yy: 0,
    maxAbsErr: 0,
    nonfinite: 0,
    saturated: 0,
    flushed: 0,
    blocks: 0,
    changedBlocks: 0,
  };
}

/** The statistics of both parts together. */
export function mergeStats(a: ErrorStats, b: ErrorStats): ErrorStats {
  return {
    count: a.count + b.count,
    xx: a.xx + b.xx,
    ee: a.ee + b.ee,
    xy: a.xy + b.xy,
    yy: a.yy + b.yy,
    maxAbsErr: Math.max(a.maxAbsErr, b.maxAbsErr),
    nonfinite: a.nonfinite + b.nonfinite,
    saturated: a.saturated + b.saturated,
    flushed: a.flushed + b.flushed,
    blocks: a.blocks + b.blocks,
    changedBlocks: a.changedBlocks + b.changedBlocks,
  };
}

/**
 * Adds `n` copies of the pair (x, y): one element (`n` = 1), or every element of a block holding
 * the same code (the histogram kernels).
 */
export function addPairs(st: ErrorStats, x: number, y: number, n: number): void {
  // One test for both: x - y of values this small (float32, or float32 times a scale) is finite
  // exactly when x and y are.
  const e = x - y;
  if (!Number.isFinite(e)) {
    st.nonfinite += n;
    return;
  }
  st.count += n;
  st.xx += n * x * x;
  st.ee += n * e * e;
  st.xy += n * x * y;
  st.yy += n * y * y;
  const ae = Math.abs(e);
  if (ae > st.maxAbsErr) st.maxAbsErr = ae;
  if (y === 0 && x !== 0) st.flushed += n;
}

/** Relative Frobenius error, SQNR and cosine similarity of a record. */
export interface ErrorSummary {
  /** ||x - y||_F / ||x||_F: 0 when both are zero, Inf when only x is. */
  relFrob: number;
  /** 10 log10(sum x^2 / sum (x - y)^2) in dB; Inf for an exact match. */
  sqnrDb: number;
  /** sum(x*y) / sqrt(sum x^2 * sum y^2): 1 when both are zero, 0 when only one is. */
  cosine: number;
}

/** The summary of a record (the one definition every report uses). */
export function summarizeErrorStats(s: ErrorStats): ErrorSummary {
  const relFrob = s.xx > 0 ? Math.sqrt(s.ee / s.xx) : s.ee > 0 ? Number.POSITIVE_INFINITY : 0;
  const sqnrDb = s.ee > 0 ? 10 * Math.log10(s.xx / s.ee) : Number.POSITIVE_INFINITY;
  const cosine = s.xx > 0 && s.yy > 0 ? s.xy / Math.sqrt(s.xx * s.yy) : s.xx === s.yy ? 1 : 0;
  return { relFrob, sqnrDb, cosine };
}
