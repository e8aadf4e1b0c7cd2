/**
 * Which scale rule each quantized target codec uses, bound to the one implementation of every rule
 * (scale-rules.ts), and the quantization scheme a target equals: the band encoders give the same
 * codes and scales as `quantize()` with `schemeOfTarget(target)` (tested on F32, BF16 and F16 input).
 */
import { amaxScale, deepseekScaleExponent, scaleExponent } from "../scale-rules.js";
import { e8m0Byte } from "../scale-storage.js";
import type { Scheme } from "../schemes.js";
import type { MxRule, TargetCodec } from "./types.js";

/** The element formats of MX targets. */
export type MxElement = Extract<TargetCodec, { kind: "mx" }>["element"];

/** The scheme `target` reproduces (null for plain targets). */
export function schemeOfTarget(target: TargetCodec): Scheme | null {
  switch (target.kind) {
    case "plain":
      return null;
    case "fp8-block":
      return {
        element: "float8_e4m3fn",
        block: target.block,
        scale: target.scaleDtype === "F32" ? "f32" : "ue8m0",
        rule: target.scaleFmt === "ue8m0" ? "deepseek" : "amax",
      };
    case "mx":
      return { element: target.element, block: [1, 32], scale: "ue8m0", rule: target.rule };
    default:
      return target satisfies never;
  }
}

/**
 * The E4M3 block scale of an fp8-block target from the block's amax (NaN when the block holds a
 * NaN, Inf when it holds an Inf): DeepGEMM `per_block_cast_to_fp8`, `sf = max(amax, 1e-4) / 448`
 * in float32, rounded up to a power of two by `ceil_to_ue8m0` for `ue8m0` (rule `deepseek`: NaN
 * and Inf amax give 2^127) or kept as is for `float` (rule `amax`: NaN and Inf stay).
 */
export function fp8BlockScale(scaleFmt: "ue8m0" | "float", amax: number): number {
  return scaleFmt === "ue8m0"
    ? 2 ** deepseekScaleExponent(amax, "float8_e4m3fn")
    : amaxScale(amax, "float8_e4m3fn");
}

/**
 * The E8M0 scale byte of an MX group from its amax by `rule` (torchao `ScaleCalculationMode`
 * FLOOR, CEIL, EVEN, RCEIL; docs/SCALE-RULES.md). NaN and Inf amax give 0xFF.
 */
export function mxScaleByte(rule: MxRule, amax: number, element: MxElement): number {
  return e8m0Byte(scaleExponent(rule, amax, element));
}
