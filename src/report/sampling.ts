import { seededUniform } from "../formats/prng.js";

/** `k` distinct integers from `[0, n)` in ascending order (all of them when k >= n). */
export function sampleIndices(n: number, k: number, random: () => number): number[] {
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  const picked = new Set<number>();
  // Floyd's algorithm: k draws, no rejection loop.
  for (let j = n - k; j < n; j++) {
    const t = Math.floor(random() * (j + 1));
    picked.add(picked.has(t) ? j : t);
  }
  return [...picked].sort((a, b) => a - b);
}

/** A confidence interval for a ratio estimate. */
export interface Interval {
  estimate: number;
  low: number;
  high: number;
  /** Confidence level (0.95). */
  level: number;
  method: "bootstrap";
  resamples: number;
}

/**
 * Percentile-bootstrap interval for the relative error sqrt(sum err2 / sum ref2) estimated from a
 * sample of blocks (per-block sums `err2[i]`, `ref2[i]`): blocks are resampled with replacement
 * `resamples` times (seeded), and the 2.5% and 97.5% quantiles of the resampled ratios are the
 * 95% interval. It states how far the full-tensor answer is likely to be from the sampled one.
 */
export function bootstrapRelError(
  err2: readonly number[],
  ref2: readonly number[],
  seed: number,
  resamples = 1000,
  level = 0.95,
): Interval {
  const n = err2.length;
  const ratio = (e: number, r: number) => (e === 0 ? 0 : r === 0 ? 0 : Math.sqrt(e / r));
  const sum = (a: readonly number[]) => a.reduce((s, v) => s + v, 0);
  const estimate = ratio(sum(err2), sum(ref2));
  if (n < 2) return { estimate, low: estimate, high: estimate, level, method: "bootstrap", resamples: 0 };
  const random = seededUniform(seed ^ 0x5bd1e995);
  const stats = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    let e = 0;
    let r = 0;
    for (let i = 0; i < n; i++) {
      const j = Math.floor(random() * n);
      e += err2[j];
      r += ref2[j];
    }
    stats[b] = ratio(e, r);
  }
  stats.sort();
  const q = (p: number) => stats[Math.min(resamples - 1, Math.max(0, Math.round(p * (resamples - 1))))];
  return {
    estimate,
    low: q((1 - level) / 2),
    high: q(1 - (1 - level) / 2),
    level,
    method: "bootstrap",
    resamples,
  };
}
