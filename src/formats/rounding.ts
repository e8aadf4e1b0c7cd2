import type { Rounding } from "./types.js";

/**
 * Rounds a non-negative real `m` (exact in float64: a magnitude divided by a power of two) to an
 * integer under the given rounding mode. Every format's encoder reduces to this one step.
 */
export function roundInteger(m: number, mode: Rounding, uniform: (() => number) | null): number {
  const f = Math.floor(m);
  const d = m - f;
  switch (mode) {
    case "rne":
      return d > 0.5 ? f + 1 : d < 0.5 ? f : f + (f % 2);
    case "ties-away":
      return d >= 0.5 ? f + 1 : f;
    case "toward-zero":
      return f;
    case "stochastic":
      return d > 0 && uniform !== null && uniform() < d ? f + 1 : f;
    default:
      return mode satisfies never;
  }
}

/** floor(log2(a)) for a finite a > 0, exact (Math.log2 can be off by one near powers of two). */
export function floorLog2(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  else if (2 ** (e + 1) <= a) e += 1;
  return e;
}
