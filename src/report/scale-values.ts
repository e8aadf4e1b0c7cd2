import { scaleStorageOf } from "../checkpoint/index.js";
import { SCALE_BYTES } from "../quant/scale-encoding.js";
import { decodeScales, scaleArrayOfBytes } from "../quant/scale-storage.js";
import type { Dtype } from "../safetensors/index.js";

/**
 * Scale tensors decoded to float32: F32 as is, BF16/F16 widened, U8/F8_E8M0 as 2^(b-127) (0xFF is
 * NaN), F8_E4M3 (NVFP4 block scales) through the E4M3 table. Returns null for other dtypes.
 */
export function decodeScaleValues(dtype: Dtype, bytes: Uint8Array): Float32Array | null {
  const storage = scaleStorageOf(dtype);
  if (storage === null) return null;
  return decodeScales(scaleArrayOfBytes(storage, bytes, bytes.length / SCALE_BYTES[storage]), storage);
}

/** Counts of scale values a loader cannot use. */
export interface BadScaleCounts {
  nan: number;
  inf: number;
  zero: number;
  negative: number;
  /** First bad value's flat index, or -1. */
  first: number;
}

/** Counts NaN, infinite, zero and negative scales (a scale of 0 erases its block; NaN poisons it). */
export function countBadScales(values: Float32Array): BadScaleCounts {
  const c: BadScaleCounts = { nan: 0, inf: 0, zero: 0, negative: 0, first: -1 };
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v > 0 && v < Number.POSITIVE_INFINITY) continue;
    if (Number.isNaN(v)) c.nan++;
    else if (v === Number.POSITIVE_INFINITY || v === Number.NEGATIVE_INFINITY) c.inf++;
    else if (v === 0) c.zero++;
    else c.negative++;
    if (c.first < 0) c.first = i;
  }
  return c;
}
