import type { FormatName } from "../formats/index.js";
import { float32BitsEncoder, formatInfo } from "../formats/index.js";
import { QuantError } from "./errors.js";
import { f32Bits, f32Exponent, f32FromBits, f32Mantissa } from "./float32.js";

/**
 * How a block's scale is derived from its amax. Each rule reproduces one library bit for bit
 * (`scaleRules[rule].source`; the function of each rule below says how); the table in
 * docs/SCALE-RULES.md lists what each does with zero, NaN, Inf and float32-subnormal amax.
 */
export type RuleName =
  | "floor"
  | "ceil"
  | "even"
  | "rceil"
  | "deepseek"
  | "ct"
  | "modelopt"
  | "triton"
  | "amax"
  | "nvfp4";

/** The rules whose scales are powers of two (representable as E8M0). */
export type PowerOfTwoRule = "floor" | "ceil" | "even" | "rceil" | "deepseek" | "ct" | "modelopt" | "triton";

export interface ScaleRuleInfo {
  readonly name: RuleName;
  readonly powerOfTwo: boolean;
  /** Where the rule comes from. */
  readonly source: string;
}

export const scaleRules: Readonly<Record<RuleName, ScaleRuleInfo>> = {
  floor: { name: "floor", powerOfTwo: true, source: "OCP MX v1.0 §6.3; torchao ScaleCalculationMode.FLOOR" },
  ceil: { name: "ceil", powerOfTwo: true, source: "torchao ScaleCalculationMode.CEIL" },
  even: { name: "even", powerOfTwo: true, source: "torchao ScaleCalculationMode.EVEN" },
  rceil: {
    name: "rceil",
    powerOfTwo: true,
    source: "cuBLAS UE8M0 scale computation; Transformer Engine MXFP8; torchao ScaleCalculationMode.RCEIL",
  },
  deepseek: {
    name: "deepseek",
    powerOfTwo: true,
    source: "DeepSeek-V3.1 act_quant scale_fmt=ue8m0; DeepGEMM ceil_to_ue8m0 with amax clamp 1e-4",
  },
  ct: {
    name: "ct",
    powerOfTwo: true,
    source:
      "compressed-tensors / llm-compressor MXFP8 and MXFP4: round_to_power_2 + generate_mx_scales " +
      "(vllm-project/compressed-tensors src/compressed_tensors/quantization/utils/mxfp_utils.py)",
  },
  modelopt: {
    name: "modelopt",
    powerOfTwo: true,
    source:
      "NVIDIA ModelOpt MXFP8 export: MXFP8QTensor._compute_e8m0_exponent " +
      "(NVIDIA/Model-Optimizer modelopt/torch/quantization/qtensor/mxfp8_tensor.py)",
  },
  triton: {
    name: "triton",
    powerOfTwo: true,
    source:
      "gpt-oss / transformers quantize_to_mxfp4: triton_kernels downcast_to_mxfp_torch, ROUND_UP " +
      "(triton-lang/triton python/triton_kernels/triton_kernels/numerics_details/mxfp.py)",
  },
  amax: {
    name: "amax",
    powerOfTwo: false,
    source: "DeepSeek-V3 act_quant / weight_scale_inv; DeepGEMM per_block_cast_to_fp8(use_ue8m0=False)",
  },
  nvfp4: { name: "nvfp4", powerOfTwo: false, source: "torchao nvfp4_quantize (two-level and single-level)" },
};

/** Rule names, for validation and docs. */
export const RULE_NAMES: readonly RuleName[] = Object.keys(scaleRules) as RuleName[];

export function isRuleName(x: unknown): x is RuleName {
  return typeof x === "string" && Object.hasOwn(scaleRules, x);
}

/** The amax floor of DeepSeek's and DeepGEMM's quantizers (`amax.clamp(1e-4)`), as float32. */
export const DEEPSEEK_AMAX_FLOOR = Math.fround(1e-4);

/** Largest E8M0 unbiased exponent (byte 254); byte 255 is NaN. */
const E8M0_MAX_EXP = 127;
/** Smallest E8M0 unbiased exponent (byte 0 = 2^-127). */
const E8M0_MIN_EXP = -127;

interface ElementLimits {
  max: number;
  emax: number;
  mantissaBits: number;
}
const limitsCache = new Map<FormatName, ElementLimits>();

/** Max, emax and mantissa bits of an element format, checked to be a signed element format. */
export function elementLimits(element: FormatName): ElementLimits {
  let l = limitsCache.get(element);
  if (l === undefined) {
    let info: ReturnType<typeof formatInfo>;
    try {
      info = formatInfo(element);
    } catch (e) {
      throw new QuantError("unknown-format", `unknown element format "${String(element)}"`, { cause: e });
    }
    if (!info.signed || info.bits > 8) {
      throw new QuantError(
        "invalid-scheme",
        `element format "${element}" cannot hold block-scaled data: expected a signed format of at most 8 bits`,
      );
    }
    l = { max: info.max, emax: info.emax, mantissaBits: info.mantissaBits };
    limitsCache.set(element, l);
  }
  return l;
}

/** Float32 amax as the rules see it: |amax| rounded to float32 (the sources hold amax in float32). */
function amaxBits(amax: number): number {
  return f32Bits(Math.abs(amax));
}

/** torchao's tail: clamp the unbiased exponent to [-127, 128]; 128 (byte 255) and non-finite amax are NaN. */
function clampE8m0(k: number, finite: boolean): number {
  if (!finite) return Number.NaN;
  const c = Math.min(Math.max(k, E8M0_MIN_EXP), E8M0_MAX_EXP + 1);
  return c > E8M0_MAX_EXP ? Number.NaN : c;
}

/**
 * FLOOR (torchao default, OCP MX v1.0 §6.3): k = (float32 exponent field of amax) - 127 - emax_elem,
 * clamped to [-127, 127]; NaN or Inf amax gives NaN (E8M0 0xFF). Zero and float32-subnormal amax have
 * exponent field 0, so k = -127 - emax_elem, clamped to -127 (scale 2^-127, byte 0x00).
 * Returns the unbiased power-of-two exponent of the dequantization scale, or NaN.
 */
export function floorScaleExponent(amax: number, element: FormatName): number {
  const { emax } = elementLimits(element);
  const bits = amaxBits(amax);
  return clampE8m0(f32Exponent(bits) - 127 - emax, Number.isFinite(amax));
}

/**
 * CEIL (torchao): as FLOOR, plus one when amax's float32 mantissa field is non-zero, i.e.
 * 2^(ceil(log2 amax) - emax_elem) for normal amax. A subnormal amax has exponent field 0 and a
 * non-zero mantissa, so it gets 1 - 127 - emax_elem, clamped to -127.
 */
export function ceilScaleExponent(amax: number, element: FormatName): number {
  const { emax } = elementLimits(element);
  const bits = amaxBits(amax);
  const up = f32Mantissa(bits) !== 0 ? 1 : 0;
  return clampE8m0(f32Exponent(bits) + up - 127 - emax, Number.isFinite(amax));
}

/**
 * EVEN (torchao): first round amax to the element's mantissa width, half up, on the float32 bits:
 * bits = (bits + (1 << (22 - mbits))) & 0xFF800000; then FLOOR. The finiteness test is made on the
 * rounded value, as torchao does (amax near FLT_MAX rounds to Inf and gives NaN).
 */
export function evenScaleExponent(amax: number, element: FormatName): number {
  const { emax, mantissaBits } = elementLimits(element);
  if (Number.isNaN(amax)) return Number.NaN;
  const bits = ((amaxBits(amax) + (1 << (22 - mantissaBits))) & 0xff800000) >>> 0;
  return clampE8m0(f32Exponent(bits) - 127 - emax, Number.isFinite(f32FromBits(bits)));
}

/**
 * RCEIL (cuBLAS "UE8M0 scale factors", Transformer Engine MXFP8, torchao RCEIL):
 * descale = fl32(amax * fl32(1 / max_elem)); byte = exponent field of descale, plus one when its
 * mantissa is non-zero (for float32-subnormal descale: only when the mantissa exceeds 0x400000,
 * because byte 0 already is 2^-127). NaN or Inf amax gives NaN (torchao); zero gives byte 0 (2^-127).
 */
export function rceilScaleExponent(amax: number, element: FormatName): number {
  const { max } = elementLimits(element);
  const descale = Math.fround(Math.fround(Math.abs(amax)) * Math.fround(1 / max));
  if (!Number.isFinite(descale)) return Number.NaN;
  const bits = f32Bits(descale);
  const e = f32Exponent(bits);
  const m = f32Mantissa(bits);
  const up = e === 0 ? (m > 0x400000 ? 1 : 0) : m !== 0 ? 1 : 0;
  const byte = e + up;
  return byte > 254 ? Number.NaN : byte - 127;
}

/**
 * DeepSeek-V3.1 / DeepGEMM: s = fl32(max(amax, fl32(1e-4)) / max_elem), then DeepGEMM's
 * `ceil_to_ue8m0`: exponent field + (mantissa != 0), clamped to [1, 254]. Never NaN: a NaN or Inf
 * amax has exponent field 255 and ends at 254, i.e. 2^127 (then finite data scale to 0 and NaN stays
 * NaN). An all-zero block gets 1e-4/448 = 2.2321429e-7 -> 2^-22 for E4M3.
 * `amaxFloor` defaults to DeepSeek's 1e-4.
 */
export function deepseekScaleExponent(amax: number, element: FormatName, amaxFloor = 1e-4): number {
  const s = amaxScale(amax, element, amaxFloor);
  const bits = f32Bits(Math.abs(s));
  const e = f32Exponent(bits) + (f32Mantissa(bits) !== 0 || Number.isNaN(s) ? 1 : 0);
  return Math.min(Math.max(e, 1), 254) - 127;
}

/**
 * compressed-tensors / llm-compressor (vllm-project/compressed-tensors
 * `quantization/utils/mxfp_utils.py`, `round_to_power_2` then `generate_mx_scales`): amax is first
 * rounded to a power of two on its float bits, `(bits + (1 << 21)) & 0xFF800000` (the FP4 mantissa
 * width is used for every element format, so the significand rounds up from 1.75 on, and the
 * threshold is the same on BF16 bits, `+ (1 << 5)`), then byte = clamp(127 + log2(p2) - offset,
 * 0, 255) with offset = floor(log2(max_elem)) = emax (E4M3 8, E2M1 2). So k = E(amax) - 127 -
 * emax, plus one when the significand is >= 1.75, clamped below to -127: zero and float32-subnormal
 * amax give byte 0 (log2(0) = -inf clamps to 0). A significand >= 1.75 at the top exponent rounds
 * to +Inf, and so do NaN (canonical payload) and Inf amax: byte 255 in compressed-tensors on CUDA;
 * here NaN (E8M0 0xFF) for all three, whatever the NaN's payload. (Saving the module's scale
 * through `compress_mx_scale` casts +Inf to int32, which x86 CPUs turn into byte 0x00: see
 * docs/SCALE-RULES.md.)
 */
export function ctScaleExponent(amax: number, element: FormatName): number {
  const { emax } = elementLimits(element);
  if (Number.isNaN(amax)) return Number.NaN;
  const p2 = ((amaxBits(amax) + (1 << 21)) & 0xff800000) >>> 0;
  const e = f32Exponent(p2);
  if (e === 255) return Number.NaN;
  return e === 0 ? E8M0_MIN_EXP : Math.max(e - 127 - emax, E8M0_MIN_EXP);
}

/**
 * NVIDIA ModelOpt MXFP8 (NVIDIA/Model-Optimizer `modelopt/torch/quantization/qtensor/mxfp8_tensor.py`,
 * `MXFP8QTensor._compute_e8m0_exponent`): d = fl32(amax / max_elem); k = ceil(log2(d)) with log2
 * taken in float32 (`torch.log2` on a float32 tensor), -127 when d is not > 0 (zero, and NaN: the
 * `torch.where(descale > 0, ...)` test is false), clamped to [-127, 127] (Inf amax gives 127, byte
 * 254). The float32 log2 is emulated as fl32(Math.log2(d)): correctly rounded, where torch's is
 * within an ulp of it. Because it is rounded, a d a few float32 ulps above 2^j (j != 0) has log2
 * exactly j and gets 2^j, not the 2^(j+1) an exact ceil gives; only float32 weights can have such a
 * d (docs/SCALE-RULES.md). ModelOpt exports E4M3 only; other elements divide by their own max.
 */
export function modeloptScaleExponent(amax: number, element: FormatName): number {
  const { max } = elementLimits(element);
  const d = Math.fround(Math.fround(Math.abs(amax)) / max);
  if (!(d > 0)) return E8M0_MIN_EXP;
  const e = Math.ceil(Math.fround(Math.log2(d)));
  return Math.min(Math.max(e, E8M0_MIN_EXP), E8M0_MAX_EXP);
}

/**
 * triton_kernels `downcast_to_mxfp_torch` with `DequantScaleRoundingMode.ROUND_UP`, which gpt-oss
 * and transformers' `quantize_to_mxfp4` call (triton-lang/triton
 * `python/triton_kernels/triton_kernels/numerics_details/mxfp.py`): d = fl32(amax / max_elem),
 * rounded up to a power of two on its bits, `(bits + 0x7FFFFF) & 0x7F800000`, and byte = bits >> 23.
 * An exact ceil: subnormal d gives 2^-126 (byte 1), zero gives byte 0, Inf gives 255 (NaN here), and
 * a NaN amax gives byte 0 (adding 0x7FFFFF to a NaN's bits carries out of the exponent field). The
 * elements of a byte-0 group are multiplied by 0 in triton_kernels (`encodeBand`'s `triton` rule does
 * so; `quantize()` scales by 2^127 as for every byte 0, which only differs in a group holding a NaN).
 */
export function tritonScaleExponent(amax: number, element: FormatName): number {
  const { max } = elementLimits(element);
  const a = Math.fround(Math.abs(amax));
  if (Number.isNaN(a)) return E8M0_MIN_EXP;
  const bits = ((f32Bits(Math.fround(a / max)) + 0x7fffff) & 0x7f800000) >>> 0;
  const byte = bits >>> 23;
  return byte === 255 ? Number.NaN : byte - 127;
}

/**
 * DeepSeek-V3 (not a power of two): s = fl32(max(amax, fl32(amaxFloor)) / max_elem), amaxFloor
 * defaulting to 1e-4 (`amax.clamp(1e-4)` in DeepGEMM, `max(amax, 1e-4)` in DeepSeek's act_quant).
 * NaN amax gives NaN (torch.clamp propagates NaN), Inf gives Inf. Returns the float32 dequantization
 * scale (`weight_scale_inv`).
 */
export function amaxScale(amax: number, element: FormatName, amaxFloor = 1e-4): number {
  const { max } = elementLimits(element);
  const a = Math.fround(Math.abs(amax));
  if (Number.isNaN(a)) return Number.NaN;
  return Math.fround(Math.max(a, Math.fround(amaxFloor)) / max);
}

/** float32 bits -> E4M3 code, RNE (the codec's encoder). */
const e4m3Rne = float32BitsEncoder("float8_e4m3fn");

/** E4M3's smallest normal, torchao's `E4M3_EPS = torch.finfo(torch.float8_e4m3fn).tiny`. */
const NVFP4_SCALE_MIN = 2 ** -6;
/** E4M3's largest value, the upper clamp of the NVFP4 block scale. */
const NVFP4_SCALE_MAX = 448;
/** E2M1's largest value times E4M3's: torchao `per_tensor_amax_to_scale` divides by 6 * 448. */
export const NVFP4_GLOBAL_DIVISOR = 448 * 6;

/** torchao `per_tensor_amax_to_scale`: fl32(tensorAmax / 2688). */
export function nvfp4GlobalScale(tensorAmax: number): number {
  return Math.fround(Math.fround(Math.abs(tensorAmax)) / NVFP4_GLOBAL_DIVISOR);
}

/**
 * torchao `nvfp4_quantize` block scale, as an E4M3 code: block_scale = fl32(amax / 6); with a global
 * scale: fl32(block_scale / global); clamped to [2^-6, 448] (NaN passes through torch.clamp) and cast
 * to E4M3 with RNE. A zero global scale makes the ratio NaN (0/0) or Inf, as in torchao.
 */
export function nvfp4ScaleCode(amax: number, globalScale?: number): number {
  let s = Math.fround(Math.fround(Math.abs(amax)) / 6);
  if (globalScale !== undefined) s = Math.fround(s / globalScale);
  if (s < NVFP4_SCALE_MIN) s = NVFP4_SCALE_MIN;
  else if (s > NVFP4_SCALE_MAX) s = NVFP4_SCALE_MAX;
  return e4m3Rne(f32Bits(s));
}

const EXPONENT_OF: Readonly<
  Record<PowerOfTwoRule, (amax: number, element: FormatName, amaxFloor: number) => number>
> = {
  floor: floorScaleExponent,
  ceil: ceilScaleExponent,
  even: evenScaleExponent,
  rceil: rceilScaleExponent,
  deepseek: deepseekScaleExponent,
  ct: ctScaleExponent,
  modelopt: modeloptScaleExponent,
  triton: tritonScaleExponent,
};

/** The power-of-two exponent of `rule` for `amax`: an integer in [-127, 127], or NaN (E8M0 0xFF). */
export function scaleExponent(
  rule: PowerOfTwoRule,
  amax: number,
  element: FormatName,
  amaxFloor = 1e-4,
): number {
  const f = EXPONENT_OF[rule];
  if (f === undefined) {
    throw new QuantError("unknown-rule", `unknown power-of-two scale rule "${String(rule)}"`);
  }
  return f(amax, element, amaxFloor);
}

/** True for the rules that yield powers of two. */
export function isPowerOfTwoRule(rule: RuleName): rule is PowerOfTwoRule {
  return scaleRules[rule].powerOfTwo;
}
