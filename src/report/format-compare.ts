import { decode, encode } from "../formats/index.js";
import type { PresetName } from "../quant/index.js";
import { dequantize, errorMetrics, quantize } from "../quant/index.js";

/** Formats the report compares, with the scheme each one means. */
export const COMPARE_FORMATS = {
  "e4m3-float": { label: "E4M3, float scales 128x128", preset: "deepseek-v3" },
  "e4m3-ue8m0": { label: "E4M3, UE8M0 scales 128x128", preset: "deepseek-v3.1" },
  mxfp8: { label: "MXFP8 (E4M3, E8M0 per 32)", preset: "mxfp8-e4m3" },
  mxfp6: { label: "MXFP6 (E2M3, E8M0 per 32)", preset: "mxfp6-e2m3" },
  mxfp4: { label: "MXFP4 (E2M1, E8M0 per 32)", preset: "mxfp4" },
  nvfp4: { label: "NVFP4 (E2M1, E4M3 per 16 + F32)", preset: "nvfp4" },
  hif8: { label: "HiF8 (per-tensor power-of-two scale)", preset: null },
} as const satisfies Record<string, { label: string; preset: PresetName | null }>;

export type CompareFormat = keyof typeof COMPARE_FORMATS;
export const COMPARE_FORMAT_NAMES = Object.keys(COMPARE_FORMATS) as CompareFormat[];

/** The error of one format on one tensor (one row of the report's format comparison). */
export interface FormatComparison {
  tensor: string;
  format: CompareFormat;
  label: string;
  relError: number;
  /** null: exact (infinite SQNR). */
  sqnrDb: number | null;
  cosine: number;
  maxAbsError: number;
  /** Elements that reached the format's largest magnitude. */
  saturated: number;
  /** Non-zero elements that became zero. */
  flushed: number;
  elements: number;
  /** Set when this format could not be applied (then the metrics are NaN). */
  error: string | null;
}

/**
 * The report's error summary of a reference/approximation pair, from the quantization layer's
 * one-pass metrics (`src/quant/metrics.ts`); non-finite reference values are left out, and an exact
 * match has SQNR `null` (JSON has no Infinity).
 */
export function errorSummary(x: Float32Array, y: Float32Array) {
  const m = errorMetrics(x, y);
  return {
    relError: m.relativeFrobenius,
    sqnrDb: Number.isFinite(m.sqnrDb) ? m.sqnrDb : null,
    cosine: m.cosine,
    maxAbsError: m.maxAbsError,
    flushed: m.flushedToZero,
  };
}

/**
 * HiFloat8 has no block scales; a per-tensor power of two moves the tensor's RMS to 1, where HiF8's
 * tapered mantissa is widest (3 bits for |exponent| <= 3), then every element is encoded with
 * Huawei's reference rounding (ties away).
 */
function hif8RoundTrip(x: Float32Array): { y: Float32Array; saturated: number } {
  let s2 = 0;
  for (let i = 0; i < x.length; i++) s2 += x[i] * x[i];
  const rms = Math.sqrt(s2 / Math.max(1, x.length));
  const k = rms > 0 ? Math.round(Math.log2(rms)) : 0;
  const scaled = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) scaled[i] = x[i] * 2 ** -k;
  const codes = encode("hifloat8", scaled);
  const y = decode("hifloat8", codes);
  let saturated = 0;
  for (let i = 0; i < y.length; i++) {
    if (!Number.isFinite(y[i])) saturated++;
    y[i] *= 2 ** k;
  }
  return { y, saturated };
}

/**
 * The error each format would give on a float32 tensor `x` of shape `[rows, cols]`, side by side:
 * quantize with the preset (src/quant, bit-exact to its reference) and dequantize, then compare.
 */
export function compareFormats(
  tensor: string,
  x: Float32Array,
  shape: readonly [number, number],
  formats: readonly CompareFormat[] = COMPARE_FORMAT_NAMES,
): FormatComparison[] {
  const out: FormatComparison[] = [];
  for (const format of formats) {
    const spec = COMPARE_FORMATS[format];
    const head = { tensor, format, label: spec.label };
    try {
      let y: Float32Array;
      let saturated = 0;
      if (spec.preset === null) {
        ({ y, saturated } = hif8RoundTrip(x));
      } else {
        const q = quantize(x, shape, spec.preset, { name: tensor });
        y = dequantize(q) as Float32Array;
        saturated = countMaxMagnitude(q.data, spec.preset);
      }
      out.push({ ...head, ...errorSummary(x, y), saturated, elements: x.length, error: null });
    } catch (e) {
      const nan = Number.NaN;
      const failed = { relError: nan, sqnrDb: null, cosine: nan, maxAbsError: nan, saturated: 0, flushed: 0 };
      out.push({ ...head, ...failed, elements: x.length, error: (e as Error).message });
    }
  }
  return out;
}

function countMaxMagnitude(data: Uint8Array, preset: PresetName): number {
  let n = 0;
  if (preset === "mxfp4" || preset === "nvfp4") {
    for (let i = 0; i < data.length; i++) {
      if ((data[i] & 0x7) === 0x7) n++;
      if ((data[i] & 0x70) === 0x70) n++;
    }
  } else if (preset === "mxfp6-e2m3") {
    for (let i = 0; i < data.length; i++) if ((data[i] & 0x1f) === 0x1f) n++;
  } else {
    for (let i = 0; i < data.length; i++) if ((data[i] & 0x7f) === 0x7e) n++;
  }
  return n;
}
