import { encodeInto } from "../formats/index.js";
import { valuesOf } from "./element-codes.js";
import { QuantError } from "./errors.js";
import { f32Bits, f32FromBits } from "./float32.js";
import {
  amaxScale,
  elementLimits,
  isPowerOfTwoRule,
  NVFP4_SCALE_MAX,
  NVFP4_SCALE_MIN,
  scaleExponent,
} from "./scale-rules.js";
import { e8m0Value, type ScaleArray } from "./scale-storage.js";
import type { Scheme } from "./schemes.js";

/**
 * Scales of a run of blocks, in the three forms quantization needs: the stored value (in the
 * scheme's storage), the power-of-two exponent (NaN for a NaN scale, or undefined for non-power-of-two
 * rules), and the factor the data are multiplied (or divided) by.
 */
export interface BlockScaling {
  /** Data factor per block: x * factor, or x / factor when `divide`. */
  readonly factor: Float64Array;
  /** Power-of-two exponent per block (pow2 rules only). */
  readonly k: Float64Array | null;
  readonly divide: boolean;
}

/** Allocates the stored-scale array of a scheme. */
export function allocScales(scheme: Scheme, n: number): ScaleArray {
  return scheme.scale === "f32"
    ? new Float32Array(n)
    : scheme.scale === "bf16"
      ? new Uint16Array(n)
      : new Uint8Array(n);
}

/** BF16 RNE of a float32 value (NaN keeps its sign, quiet 0x7FC0): the codec's float32 -> bfloat16. */
export function bf16Rne(x: number): number {
  const bits = f32Bits(x);
  if (Number.isNaN(x)) return ((bits >>> 16) & 0x8000) | 0x7fc0;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

function bf16Value(code: number): number {
  return f32FromBits(code << 16);
}

const e4m3In = new Float32Array(1);
const e4m3Out = new Uint8Array(1);

/**
 * Computes the scales of `count` blocks from their amaxes: stores them at `scales[offset + j]` and
 * fills `out` with the data factors. `globalScale` is the NVFP4 per-tensor scale (undefined for
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
      if (scale === "ue8m0") scales[offset + j] = Number.isNaN(e) ? 0xff : e + 127;
      else if (scale === "f32") scales[offset + j] = v;
      else if (scale === "bf16") scales[offset + j] = bf16Rne(v);
      else throw new QuantError("bad-scheme", `rule "${rule}" cannot store scales as "${scale}"`);
    }
    return false;
  }
  if (rule === "amax") {
    const divide = scheme.scaling === "divide";
    for (let j = 0; j < count; j++) {
      let s = amaxScale(amax[j], element, floor);
      if (scale === "bf16") {
        const c = bf16Rne(s);
        scales[offset + j] = c;
        s = bf16Value(c);
      } else if (scale === "f32") scales[offset + j] = s;
      else throw new QuantError("bad-scheme", `rule "amax" cannot store scales as "${scale}"`);
      out.factor[j] = divide ? s : Math.fround(1 / s);
    }
    return divide;
  }
  if (rule === "nvfp4") {
    const e4m3Values = valuesOf("float8_e4m3fn");
    const rcpGlobal = globalScale === undefined ? 1 : Math.fround(1 / globalScale);
    for (let j = 0; j < count; j++) {
      let s = Math.fround(Math.fround(Math.abs(amax[j])) / 6);
      if (globalScale !== undefined) s = Math.fround(s / globalScale);
      if (s < NVFP4_SCALE_MIN) s = NVFP4_SCALE_MIN;
      else if (s > NVFP4_SCALE_MAX) s = NVFP4_SCALE_MAX;
      e4m3In[0] = s;
      encodeInto("float8_e4m3fn", e4m3In, e4m3Out);
      const code = e4m3Out[0];
      scales[offset + j] = code;
      const sf = e4m3Values[code];
      // torchao: data * ((1 / per_tensor_scale) / scale_fp32); single-level: data * (1 / scale_fp32)
      out.factor[j] = globalScale === undefined ? Math.fround(1 / sf) : Math.fround(rcpGlobal / sf);
    }
    return false;
  }
  throw new QuantError("unknown-rule", `unknown scale rule "${String(rule)}"`);
}

/** Value the dequantizer multiplies a block by, from a stored scale. */
export function storedScaleValue(
  scheme: Scheme,
  scales: ScaleArray,
  i: number,
  globalScale?: number,
): number {
  switch (scheme.scale) {
    case "f32":
      return scales[i];
    case "ue8m0":
      return e8m0Value(scales[i]);
    case "bf16":
      return bf16Value(scales[i]);
    case "e4m3": {
      const s = valuesOf("float8_e4m3fn")[scales[i]];
      return globalScale === undefined ? s : Math.fround(globalScale * s);
    }
    default:
      scheme.scale satisfies never;
      throw new QuantError("bad-scheme", `unknown scale storage "${String(scheme.scale)}"`);
  }
}

/** The largest magnitude of the element format (re-exported for quantize). */
export function elementMax(scheme: Scheme): number {
  return elementLimits(scheme.element).max;
}
