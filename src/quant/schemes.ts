import type { FormatName, Rounding } from "../formats/index.js";
import { QuantError, type QuantErrorCode } from "./errors.js";
import { type BlockSpec, checkBlock } from "./layout.js";
import type { ScaleStorage } from "./scale-encoding.js";
import { elementLimits, isRuleName, RULE_NAMES, type RuleName, scaleRules } from "./scale-rules.js";

/**
 * How data are divided by their block scale before rounding.
 * - `reciprocal`: x * fl32(1/s) (torchao, DeepGEMM, Transformer Engine);
 * - `divide`: x / s (DeepSeek-V3 `act_quant`).
 * For power-of-two scales both are the exact x * 2^-k.
 */
export type DataScaling = "reciprocal" | "divide";

/** A quantization scheme: plain data, JSON-serialisable. */
export interface Scheme {
  /** Element format of the data. */
  readonly element: FormatName;
  /** Block over the 2-D view `[prod(shape[:-1]), shape[-1]]`, per matrix for stacked tensors (`BlockRows`). */
  readonly block: BlockSpec;
  /** How scales are stored (`ue8m0`: power-of-two rules only; `e4m3`: the `nvfp4` rule only). */
  readonly scale: ScaleStorage;
  readonly rule: RuleName;
  /** Element rounding (default `"rne"`). */
  readonly rounding?: Rounding;
  /** Clamp scaled values to +-max before rounding (default true: the satfinite convention). */
  readonly saturate?: boolean;
  /** Default `"reciprocal"`. Only changes results for the `amax` rule. */
  readonly scaling?: DataScaling;
  /** Amax floor of the `amax` and `deepseek` rules (default 1e-4, DeepSeek's). */
  readonly amaxFloor?: number;
  /** `nvfp4` rule: use a float32 per-tensor scale (two-level, default true). */
  readonly globalScale?: boolean;
  /** Seed for `rounding: "stochastic"`. */
  readonly seed?: number;
}

export type PresetName =
  | "deepseek-v3"
  | "deepseek-v3.1"
  | "deepseek-act"
  | "deepseek-act-ue8m0"
  | "mxfp8-e4m3"
  | "mxfp8-e5m2"
  | "mxfp6-e2m3"
  | "mxfp6-e3m2"
  | "mxfp4"
  | "nvfp4";

const mx = (element: FormatName): Scheme => ({ element, block: [1, 32], scale: "ue8m0", rule: "floor" });

/** Named schemes of real stacks. */
export const presets: Readonly<Record<PresetName, Scheme>> = {
  /** DeepSeek-V3 weights: E4M3, one float32 `weight_scale_inv` per 128x128 block, amax/448. */
  "deepseek-v3": { element: "float8_e4m3fn", block: [128, 128], scale: "f32", rule: "amax" },
  /** DeepSeek-V3.1 weights: the V3 layout with UE8M0 (power-of-two) scales stored as float32. */
  "deepseek-v3.1": { element: "float8_e4m3fn", block: [128, 128], scale: "f32", rule: "deepseek" },
  /** DeepSeek-V3 `act_quant`: 1x128 tiles, s = max(amax, 1e-4)/448, y = x / s. */
  "deepseek-act": {
    element: "float8_e4m3fn",
    block: [1, 128],
    scale: "f32",
    rule: "amax",
    scaling: "divide",
  },
  /** DeepSeek-V3.1 `act_quant(scale_fmt="ue8m0")`: 1x128 tiles, power-of-two float32 scales. */
  "deepseek-act-ue8m0": { element: "float8_e4m3fn", block: [1, 128], scale: "f32", rule: "deepseek" },
  "mxfp8-e4m3": mx("float8_e4m3fn"),
  "mxfp8-e5m2": mx("float8_e5m2"),
  "mxfp6-e2m3": mx("float6_e2m3fn"),
  "mxfp6-e3m2": mx("float6_e3m2fn"),
  mxfp4: mx("float4_e2m1fn"),
  /** NVFP4, torchao two-level recipe: E2M1 data, E4M3 scale per 16, float32 per-tensor scale. */
  nvfp4: { element: "float4_e2m1fn", block: [1, 16], scale: "e4m3", rule: "nvfp4", globalScale: true },
};

const POWER_OF_TWO_RULES = RULE_NAMES.filter((r) => scaleRules[r].powerOfTwo);
const STORAGES: readonly ScaleStorage[] = ["f32", "ue8m0", "e4m3", "bf16", "f16"];
const ROUNDINGS: readonly Rounding[] = ["rne", "ties-away", "toward-zero", "stochastic"];

/** Returns the preset of that name, or checks a scheme object; throws `QuantError` on anything invalid. */
export function resolveScheme(s: Scheme | PresetName): Scheme {
  if (typeof s === "string") {
    if (!Object.hasOwn(presets, s)) {
      throw new QuantError(
        "unknown-preset",
        `unknown scheme preset "${s}": expected one of ${Object.keys(presets).join(", ")}`,
      );
    }
    return presets[s];
  }
  if (s === null || typeof s !== "object") {
    throw new QuantError("invalid-scheme", `scheme must be a preset name or an object, got ${String(s)}`);
  }
  elementLimits(s.element);
  if (s.block !== "tensor" && s.block !== "row") checkBlock(s.block);
  const fail = (code: QuantErrorCode, message: string): never => {
    throw new QuantError(code, message);
  };
  if (!isRuleName(s.rule)) {
    fail("unknown-rule", `unknown scale rule "${String(s.rule)}": expected one of ${RULE_NAMES.join(", ")}`);
  }
  if (!STORAGES.includes(s.scale)) {
    fail(
      "invalid-scheme",
      `unknown scale storage "${String(s.scale)}": expected one of ${STORAGES.join(", ")}`,
    );
  }
  if (s.scale === "ue8m0" && !scaleRules[s.rule].powerOfTwo) {
    fail(
      "invalid-scheme",
      `scale storage "ue8m0" needs a power-of-two rule (${POWER_OF_TWO_RULES.join(", ")}), got "${s.rule}"`,
    );
  }
  if ((s.scale === "e4m3") !== (s.rule === "nvfp4")) {
    fail(
      "invalid-scheme",
      `scale storage "e4m3" goes with rule "nvfp4" and only with it (got scale "${s.scale}", rule "${s.rule}")`,
    );
  }
  if (s.rounding !== undefined && !ROUNDINGS.includes(s.rounding)) {
    fail("invalid-scheme", `unknown rounding "${String(s.rounding)}": expected ${ROUNDINGS.join(", ")}`);
  }
  if (s.scaling !== undefined && s.scaling !== "reciprocal" && s.scaling !== "divide") {
    fail("invalid-scheme", `unknown scaling "${String(s.scaling)}": expected "reciprocal" or "divide"`);
  }
  if (s.amaxFloor !== undefined && !(s.amaxFloor > 0 && Number.isFinite(s.amaxFloor))) {
    fail("invalid-scheme", `amaxFloor ${String(s.amaxFloor)} must be a positive finite number`);
  }
  return s;
}
