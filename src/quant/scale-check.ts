/**
 * Checking scale values: the one classification `lint`, `audit` and `convert` share, so the same
 * scales get the same verdict everywhere. A scale multiplies every element of its block (every
 * stack stores the multiplier), so a stored scale that is
 * - NaN makes the block NaN; infinite makes it ±Inf (NaN where a code is 0);
 * - negative flips the signs of the block; zero (±0) erases it;
 * - so large that scale × the element format's largest finite value exceeds float32's largest
 *   finite value (`overflow`) makes the block's large values Inf in float32, and so in every
 *   dense format (E4M3: scales above about 7.6e35);
 * are errors: the checkpoint loads wrongly. A float32 subnormal scale (0 < s < 2^-126, e.g. the
 * E8M0 byte 0, 2^-127) is legal and exact in float32, but hardware and kernels that flush
 * subnormals to zero read it as 0: a warning.
 */
import { formatInfo } from "../formats/index.js";
import type { FormatName } from "../formats/types.js";

/** Integer codes of per-channel formats (Ascend W8A8 / W4A8), whose largest magnitude is 2^(bits-1). */
export type IntElement = "int8" | "int4";

/** What is wrong with one scale value. */
export type ScaleProblem = "nan" | "inf" | "negative" | "zero" | "overflow" | "subnormal";

/** Every problem, in the order reports list them (errors first). */
export const SCALE_PROBLEMS: readonly ScaleProblem[] = [
  "nan",
  "inf",
  "negative",
  "zero",
  "overflow",
  "subnormal",
];

/** `error`: the block dequantizes wrongly; `warning`: exact in float32, lost where subnormals flush. */
export const SCALE_PROBLEM_SEVERITY: Readonly<Record<ScaleProblem, "error" | "warning">> = {
  nan: "error",
  inf: "error",
  negative: "error",
  zero: "error",
  overflow: "error",
  subnormal: "warning",
};

/** What a scale of each problem does to its block, one phrase (messages quote it). */
export const SCALE_PROBLEM_EFFECT: Readonly<Record<ScaleProblem, string>> = {
  nan: "the block would dequantize to NaN",
  inf: "the block would dequantize to Inf, and its zeros to NaN",
  negative: "the block's signs would flip",
  zero: "the block would dequantize to 0",
  overflow: "scale x the largest element exceeds float32's largest value: the block would dequantize to Inf",
  subnormal: "a float32 subnormal: read as 0 where subnormals are flushed",
};

/** How many scales have one problem, and the first of them. */
export interface ScaleProblemCount {
  count: number;
  /** Flat index of the first such scale (row-major over the scale tensor), or -1. */
  first: number;
  /** Its value (NaN when there is none). */
  firstValue: number;
}

/** The classification of a scale tensor (or of the chunks of one read so far). */
export interface ScaleCheck {
  /** Scales looked at. */
  scales: number;
  problems: Record<ScaleProblem, ScaleProblemCount>;
  /** Scales with an error problem (each scale has at most one problem). */
  errors: number;
  /** Scales with a warning problem. */
  warnings: number;
}

const F32_MAX = 3.4028234663852886e38;
const F32_MIN_NORMAL = 2 ** -126;

/** A check of no scales yet (`checkScales` adds to it). */
export function emptyScaleCheck(): ScaleCheck {
  const problems = {} as Record<ScaleProblem, ScaleProblemCount>;
  for (const p of SCALE_PROBLEMS) problems[p] = { count: 0, first: -1, firstValue: Number.NaN };
  return { scales: 0, problems, errors: 0, warnings: 0 };
}

/** The problem of one float32 scale that multiplies elements up to `elementMax`, or null. */
export function scaleProblem(v: number, elementMax: number): ScaleProblem | null {
  if (Number.isNaN(v)) return "nan";
  if (v === Number.POSITIVE_INFINITY || v === Number.NEGATIVE_INFINITY) return "inf";
  if (v === 0) return "zero";
  if (v < 0) return "negative";
  if (v < F32_MIN_NORMAL) return "subnormal";
  // The kernels compute fl32(element * scale): the product of a float32 scale and an element of at
  // most 4 significant bits is exact in double, so this rounds exactly as they do.
  if (Math.fround(v * elementMax) === Number.POSITIVE_INFINITY) return "overflow";
  return null;
}

/**
 * Classifies float32 scale values (`decodeScales` of any storage: E8M0 0xFF is NaN, byte 0 is
 * 2^-127) that multiply elements of `element` (`float8_e4m3fn`, `float8_e5m2`, `float4_e2m1fn`;
 * its largest finite value sets the overflow limit). With `into`, adds to that check, the values
 * being scales `offset ..` of the tensor (for a tensor read in chunks); else starts a new one.
 */
export function checkScales(
  values: Float32Array,
  element: FormatName | IntElement,
  into: ScaleCheck = emptyScaleCheck(),
  offset = 0,
): ScaleCheck {
  const max = element === "int8" ? 128 : element === "int4" ? 8 : formatInfo(element).max;
  // Every scale in [2^-126, F32_MAX / max] is fine: one comparison pair for almost all of them.
  const safe = F32_MAX / max;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v >= F32_MIN_NORMAL && v <= safe) continue;
    const p = scaleProblem(v, max);
    if (p === null) continue;
    const c = into.problems[p];
    if (c.count++ === 0) {
      c.first = offset + i;
      c.firstValue = v;
    }
    if (SCALE_PROBLEM_SEVERITY[p] === "error") into.errors++;
    else into.warnings++;
  }
  into.scales += values.length;
  return into;
}

/** The problems found, in `SCALE_PROBLEMS` order. */
export function problemsFound(check: ScaleCheck): ScaleProblem[] {
  return SCALE_PROBLEMS.filter((p) => check.problems[p].count > 0);
}

/**
 * The coordinate of flat index `flat` in a row-major tensor of `shape` (`[row-block, col-block]`
 * for a 2-D scale grid, one more leading index per leading dimension; `[]` for a scalar).
 */
export function blockCoordinate(flat: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let rest = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = Math.max(1, shape[d]);
    out[d] = rest % n;
    rest = Math.floor(rest / n);
  }
  return out;
}

const PER_TENSOR = "the per-tensor scale";

/** `block [3, 1]` for a scale grid, `the per-tensor scale` for a scalar (shape `[]` or `[1]`). */
export function describeScaleAt(flat: number, shape: readonly number[]): string {
  if (shape.length === 0 || (shape.length === 1 && shape[0] === 1)) return PER_TENSOR;
  return `block [${blockCoordinate(flat, shape).join(", ")}]`;
}

/** The shortest decimal that reads back as float32 `v` (`3e+38`, not `3.0000000054977558e+38`). */
export function formatScale(v: number): string {
  if (!Number.isFinite(v) || v === 0) return Object.is(v, -0) ? "-0" : String(v);
  for (let p = 1; p < 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return String(s);
  }
  return String(Number(v.toPrecision(9)));
}

/**
 * The first scale with `problem`, in words: `block [1, 1] has scale 0 (zero: the block would
 * dequantize to 0)`; `shape` is the scale tensor's.
 */
export function describeFirstProblem(
  check: ScaleCheck,
  problem: ScaleProblem,
  shape: readonly number[],
): string {
  const c = check.problems[problem];
  const at = describeScaleAt(c.first, shape);
  const value = formatScale(c.firstValue);
  const effect = SCALE_PROBLEM_EFFECT[problem];
  if (at === PER_TENSOR)
    return `${at} is ${value} (${problem}: ${effect.replace("the block", "the tensor")})`;
  return `${at} has scale ${value} (${problem}: ${effect})`;
}
