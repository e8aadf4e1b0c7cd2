/**
 * Which scale rule each quantized target codec uses, bound to the one implementation of every rule
 * (scale-rules.ts), and the quantization scheme a target equals: the band encoders give the same
 * codes and scales as `quantize()` with `schemeOfTarget(target)` (tested on F32, BF16 and F16 input).
 */
import { ue8m0BytesOfF32 } from "../deepgemm-pack.js";
import { amaxScale, deepseekScaleExponent, scaleExponent } from "../scale-rules.js";
import { convertScales, e8m0Byte } from "../scale-storage.js";
import type { Scheme } from "../schemes.js";
import { bf16Round } from "./tables.js";
import type { MxRule, TargetCodec } from "./types.js";

/** The element formats of MX targets. */
export type MxElement = Extract<TargetCodec, { kind: "mx" }>["element"];

/** The scale storage of `quantize()` that holds what a fp8-block target stores. */
const FP8_SCHEME_SCALE = { F32: "f32", F8_E8M0: "ue8m0", BF16: "bf16" } as const;

/**
 * The scheme `target` reproduces (null for plain targets, for compressed-tensors' BF16 block FP8,
 * whose BF16 arithmetic no scheme expresses: `isCtFp8Block`, and for NVFP4 targets, which follow
 * ModelOpt's or compressed-tensors' export arithmetic (encode-nvfp4.ts), not torchao's `nvfp4` rule). The `triton` MX rule rounds
 * E2M1 elements ties away from zero, so its scheme says `rounding: "ties-away"`.
 */
export function schemeOfTarget(target: TargetCodec): Scheme | null {
  switch (target.kind) {
    case "plain":
      return null;
    case "fp8-block":
      if (isCtFp8Block(target)) return null;
      return {
        element: "float8_e4m3fn",
        block: target.block,
        scale: FP8_SCHEME_SCALE[target.scaleDtype],
        rule: target.scaleFmt === "ue8m0" ? "deepseek" : "amax",
      };
    case "mx":
      return {
        element: target.element,
        block: [1, 32],
        scale: "ue8m0",
        rule: target.rule,
        ...(mxTiesAway(target) ? { rounding: "ties-away" as const } : {}),
      };
    case "nvfp4":
    case "int-channel":
      return null;
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
 * Whether a fp8-block target is compressed-tensors' FP8_BLOCK quantizer (float scales stored as
 * BF16, the weight's dtype): its scales come from `ctFp8BlockScale` and its elements from BF16
 * arithmetic (`encodeBand`), never from a fast path.
 */
export function isCtFp8Block(t: Extract<TargetCodec, { kind: "fp8-block" }>): boolean {
  return t.scaleFmt === "float" && t.scaleDtype === "BF16";
}

/** `torch.finfo(torch.bfloat16).eps`: compressed-tensors' replacement for a zero BF16 scale. */
export const CT_BF16_EPS = 2 ** -7;

/**
 * compressed-tensors' FP8_BLOCK weight scale (vllm-project/compressed-tensors
 * `quantization/utils/helpers.py` `calculate_qparams`, upstream-ct §6), computed as a BF16 model
 * computes it: amax in BF16 (for F32/F16 input the amax of the weight cast to BF16, which is
 * bf16(amax) since rounding is monotonic), `amax / 448.0` as a BF16 op (float32 quotient rounded to
 * BF16), and a zero scale replaced by finfo(bf16).eps = 2^-7. NaN amax gives NaN, Inf gives Inf.
 * Returns a BF16 value as a number.
 */
export function ctFp8BlockScale(amax: number): number {
  const s = bf16Round(Math.fround(bf16Round(Math.abs(amax)) / 448));
  return s === 0 ? CT_BF16_EPS : s;
}

/** Whether an MX target rounds its elements ties away from zero (triton_kernels' E2M1 bit trick). */
export function mxTiesAway(t: Extract<TargetCodec, { kind: "mx" }>): boolean {
  return t.rule === "triton" && t.element === "float4_e2m1fn";
}

/**
 * The E8M0 scale byte of an MX group from its amax by `rule` (torchao `ScaleCalculationMode`
 * FLOOR, CEIL, EVEN, RCEIL; compressed-tensors `ct`, ModelOpt `modelopt`, triton_kernels `triton`;
 * docs/SCALE-RULES.md). NaN and Inf amax give 0xFF, except: `modelopt` gives NaN 0x00 and Inf 0xFE,
 * `triton` gives NaN 0x00, as those producers do.
 */
export function mxScaleByte(rule: MxRule, amax: number, element: MxElement): number {
  return e8m0Byte(scaleExponent(rule, amax, element));
}

/**
 * The stored bytes of a fp8-block target's float32 scales `sfs`: F32 as they are, F8_E8M0 bytes
 * (powers of two: the quantization layer checks), or BF16 (compressed-tensors; `sfs` must already
 * be BF16 values: `ctFp8BlockScale`, or powers of two).
 */
export function fp8BlockScaleBytes(
  t: Extract<TargetCodec, { kind: "fp8-block" }>,
  sfs: Float32Array,
): Uint8Array {
  if (t.scaleDtype === "F32") return new Uint8Array(sfs.buffer, sfs.byteOffset, sfs.byteLength);
  if (t.scaleDtype === "F8_E8M0") return ue8m0BytesOfF32(sfs);
  const b = convertScales(sfs, "f32", "bf16").scales;
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
