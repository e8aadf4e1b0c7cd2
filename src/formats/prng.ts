import { FormatError } from "./errors.js";

/**
 * The library's one seeded generator (mulberry32), for stochastic rounding and the audit's block
 * sampling: 32 random bits per call, returned as a float in [0, 1). Reproducible across platforms
 * because it uses only 32-bit integer math.
 */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Validates a user seed: a safe integer (any sign; it is reduced modulo 2^32). */
export function checkSeed(seed: unknown): number {
  if (typeof seed !== "number" || !Number.isSafeInteger(seed)) {
    throw new FormatError(
      "invalid-seed",
      `options.seed must be a safe integer, got ${typeof seed === "number" ? seed : typeof seed}`,
    );
  }
  return seed;
}
