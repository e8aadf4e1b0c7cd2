import { float32BitsEncoder } from "../formats/index.js";
import { valuesOf } from "./element-codes.js";
import { QuantError } from "./errors.js";
import { f32Bits } from "./float32.js";
import { amaxScale, isPowerOfTwoRule, nvfp4ScaleCode, scaleExponent } from "./scale-rules.js";
import { e8m0Byte, SCALE_FORMAT, type ScaleArray } from "./scale-storage.js";
import type { Scheme } from "./schemes.js";

/** The codec's float32 -> BF16 / F16 (RNE; NaN keeps its sign) for 16-bit float scale storage. */
const encode16 = {
  bf16: float32BitsEncoder("bfloat16"),
  f16: float32BitsEncoder("float16"),
} as const;

/**
 * Scales of a run of blocks, in the three forms quantization needs: computes the scales of `count`
 * blocks from their amaxes, stores them at `scales[offset + j]` (in the scheme's storage), fills
 * `out.k` with the power-of-two exponents (NaN for a NaN scale; power-of-two rules only) and
 * `out.factor` with the data factors; returns true when data are divided by the factor (x / s)
 * instead of multiplied. `globalScale` is the NVFP4 per-tensor scale (undefined for
 * single-level NVFP4 and the other rules).
 */
export function computeBlockScaling(
  scheme: Scheme,
  amax: Float32Array,
  count: number,
  scales: ScaleArray,
  offset: number,
  globalScale: number | undefined,
  out: { factor: Float64Array; k: Float64Array | null },
): boolean {
  const { element, rule, scale } = scheme;
  const floor = scheme.amaxFloor ?? 1e-4;
  if (isPowerOfTwoRule(rule)) {
    const k = out.k!;
    for (let j = 0; j < count; j++) {
      const e = scaleExponent(rule, amax[j], element, floor);
      k[j] = e;
      out.factor[j] = Number.isNaN(e) ? Number.NaN : 2 ** -e;
      const v = Number.isNaN(e) ? Number.NaN : 2 ** e;
      if (scale === "ue8m0") scales[offset + j] = e8m0Byte(e);
      else if (scale === "f32") scales[offset + j] = v;
      else if (scale === "bf16" || scale === "f16") scales[offset + j] = encode16[scale](f32Bits(v));
      else throw new QuantError("invalid-scheme", `rule "${rule}" cannot store scales as "${scale}"`);
    }
    return false;
  }
  if (rule === "amax") {
    const divide = scheme.scaling === "divide";
    for (let j = 0; j < count; j++) {
      let s = amaxScale(amax[j], element, floor);
      if (scale === "bf16" || scale === "f16") {
        // Scale the data by the value stored, so dequantization matches what is on disk.
        const c = encode16[scale](f32Bits(s));
        scales[offset + j] = c;
        s = storedScaleValue(scheme, scales, offset + j);
      } else if (scale === "f32") scales[offset + j] = s;
      else throw new QuantError("invalid-scheme", `rule "amax" cannot store scales as "${scale}"`);
      out.factor[j] = divide ? s : Math.fround(1 / s);
    }
    return divide;
  }
  if (rule === "nvfp4") {
    const e4m3Values = valuesOf("float8_e4m3fn");
    const rcpGlobal = globalScale === undefined ? 1 : Math.fround(1 / globalScale);
    for (let j = 0; j < count; j++) {
      const code = nvfp4ScaleCode(amax[j], globalScale);
      scales[offset + j] = code;
      const sf = e4m3Values[code];
      // torchao: data * ((1 / per_tensor_scale) / scale_fp32); single-level: data * (1 / scale_fp32)
      out.factor[j] = globalScale === undefined ? Math.fround(1 / sf) : Math.fround(rcpGlobal / sf);
    }
    return false;
  }
  throw new QuantError("unknown-rule", `unknown scale rule "${String(rule)}"`);
}

/** Value the dequantizer multiplies a block by, from a stored scale (NVFP4: fl32(global * e4m3)). */
export function storedScaleValue(
  scheme: Scheme,
  scales: ScaleArray,
  i: number,
  globalScale?: number,
): number {
  if (scheme.scale === "f32") return scales[i];
  const s = valuesOf(SCALE_FORMAT[scheme.scale])[scales[i]];
  return scheme.scale === "e4m3" && globalScale !== undefined ? Math.fround(globalScale * s) : s;
}
