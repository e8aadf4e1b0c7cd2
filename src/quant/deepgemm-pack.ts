import { QuantError } from "./errors.js";
import { f32Bits } from "./float32.js";

/**
 * DeepGEMM's SM100 scale-factor layout (`get_mn_major_tma_aligned_packed_ue8m0_tensor`, reference
 * `tests/test_layout.py`): UE8M0 bytes of a `[b?, mn, k]` scale tensor are packed four per int32
 * along k (first scale in the lowest byte: little-endian `view(torch.int)`), k padded to a multiple of
 * 4 and mn to a multiple of 4 (16-byte TMA alignment / 4-byte int32) with zero bytes, and stored
 * MN-major: memory is `[b, ceil(k/4), alignedMn]`, the logical tensor `[b?, mn, ceil(k/4)]` with
 * strides `[ceil(k/4) * alignedMn, 1, alignedMn]`.
 */
export interface PackedUe8m0 {
  /** Storage, `[b, packedK, alignedMn]` int32 values (padding zero). */
  readonly data: Int32Array;
  /** Logical shape `[mn, packedK]` or `[b, mn, packedK]`. */
  readonly shape: number[];
  /** Element strides of the logical shape into `data`. */
  readonly strides: number[];
  readonly alignedMn: number;
  readonly packedK: number;
}

function dims(shape: readonly number[], length: number, what: string): [number, number, number] {
  if ((shape.length !== 2 && shape.length !== 3) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new QuantError(
      "invalid-shape",
      `${what}: shape [${shape.join(", ")}] must be [mn, k] or [b, mn, k]`,
    );
  }
  const [b, mn, k] = shape.length === 2 ? [1, shape[0], shape[1]] : [shape[0], shape[1], shape[2]];
  if (b * mn * k !== length) {
    throw new QuantError(
      "invalid-shape",
      `${what}: ${length} scales do not match shape [${shape.join(", ")}] (${b * mn * k} expected)`,
    );
  }
  return [b, mn, k];
}

/** UE8M0 bytes of float32 power-of-two scales (DeepGEMM `x.view(int) >> 23`; it asserts mantissa 0). */
export function ue8m0BytesOfF32(scales: Float32Array): Uint8Array {
  const out = new Uint8Array(scales.length);
  for (let i = 0; i < scales.length; i++) {
    const bits = f32Bits(scales[i]);
    if (bits === 0x00400000) {
      out[i] = 0; // 2^-127, E8M0 byte 0
      continue;
    }
    if ((bits & 0x807fffff) !== 0 || bits >>> 23 === 0xff) {
      throw new QuantError(
        "scale-not-power-of-two",
        `scale ${i} = ${scales[i]} is not a non-negative normal power of two; DeepGEMM packs only UE8M0 ` +
          "scales (round them first with convertScales(..., { rounding }))",
      );
    }
    out[i] = bits >>> 23;
  }
  return out;
}

/**
 * Packs scales (E8M0 bytes, or float32 powers of two) of shape `[mn, k]` / `[b, mn, k]` into
 * DeepGEMM's SM100 layout.
 */
export function packUe8m0Sm100(scales: Uint8Array | Float32Array, shape: readonly number[]): PackedUe8m0 {
  const [b, mn, k] = dims(shape, scales.length, "packUe8m0Sm100");
  const bytes = scales instanceof Float32Array ? ue8m0BytesOfF32(scales) : scales;
  const alignedMn = Math.ceil(mn / 4) * 4;
  const packedK = Math.ceil(k / 4);
  const data = new Int32Array(b * packedK * alignedMn);
  for (let g = 0; g < b; g++) {
    for (let r = 0; r < mn; r++) {
      const row = (g * mn + r) * k;
      for (let p = 0; p < packedK; p++) {
        let word = 0;
        for (let q = 0; q < 4; q++) {
          const kk = p * 4 + q;
          if (kk < k) word |= bytes[row + kk] << (8 * q);
        }
        data[(g * packedK + p) * alignedMn + r] = word;
      }
    }
  }
  const strides = [packedK * alignedMn, 1, alignedMn];
  return {
    data,
    shape: shape.length === 2 ? [mn, packedK] : [b, mn, packedK],
    strides: shape.length === 2 ? strides.slice(1) : strides,
    alignedMn,
    packedK,
  };
}

/** Inverse of `packUe8m0Sm100`: E8M0 bytes of shape `[b?, mn, k]` (k = the unpadded scale count). */
export function unpackUe8m0Sm100(packed: PackedUe8m0, k: number): Uint8Array {
  const b = packed.shape.length === 3 ? packed.shape[0] : 1;
  const mn = packed.shape[packed.shape.length - 2];
  const { alignedMn, packedK } = packed;
  if (
    !Number.isSafeInteger(k) ||
    k < 0 ||
    Math.ceil(k / 4) !== packedK ||
    packed.data.length !== b * packedK * alignedMn
  ) {
    throw new QuantError(
      "invalid-shape",
      `unpackUe8m0Sm100: k = ${k} and ${packed.data.length} int32 words do not match packed shape [${packed.shape.join(", ")}]`,
    );
  }
  const out = new Uint8Array(b * mn * k);
  for (let g = 0; g < b; g++) {
    for (let r = 0; r < mn; r++) {
      for (let kk = 0; kk < k; kk++) {
        const word = packed.data[(g * packedK + (kk >> 2)) * alignedMn + r];
        out[(g * mn + r) * k + kk] = (word >>> (8 * (kk & 3))) & 0xff;
      }
    }
  }
  return out;
}
