/**
 * Converting one band: the generic path (decode to float32, then encode; the specification) or a
 * fast path where one applies. Every fast path gives the same bytes as the generic path; the tests
 * run both on the same inputs, NaN/Inf blocks included.
 */
import { addPairs, emptyStats } from "../error-stats.js";
import { scratchF32 } from "./buffers.js";
import { decodeBand } from "./decode-band.js";
import { type EncodedBand, encodeBand } from "./encode-band.js";
import { dequantApplies, dequantBand } from "./fast-dequant.js";
import { intChannelCodesApply, intChannelCodesBand } from "./fast-int-channel.js";
import { nvfp4Bf16Applies, nvfp4Bf16Band } from "./fast-nvfp4.js";
import { quantBf16Applies, quantBf16Band } from "./fast-quant-bf16.js";
import { requantApplies, requantBand } from "./fast-requant.js";
import { relabelBand } from "./relabel-band.js";
import { roundToBf16 } from "./tables.js";
import { type BandSpec, targetAsSource } from "./types.js";

/** A fast path: when it applies, and what it runs. */
export interface FastPath {
  readonly name: string;
  applies(spec: BandSpec, scale: Uint8Array | null): boolean;
  run(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): EncodedBand;
}

/** The fast paths, tried in order. */
const FAST_PATHS: readonly FastPath[] = [
  { name: "8-bit codes -> BF16/F16/F32 by code tables", applies: dequantApplies, run: dequantBand },
  {
    name: "block E4M3 -> block FP8 by code maps",
    applies: requantApplies,
    run: (spec, data, scale) => requantBand(spec, data, scale!),
  },
  {
    name: "BF16 -> block FP8 UE8M0 / MXFP8 by exponent shift",
    applies: quantBf16Applies,
    run: quantBf16Band,
  },
  {
    name: "8-bit block codes -> per-channel INT8/INT4 (W8A8/W4A8), decoded inside the WASM kernel",
    applies: intChannelCodesApply,
    run: (spec, data, scale) =>
      intChannelCodesBand(spec, data, scale!) ?? convertBandGeneric(spec, data, scale),
  },
  {
    name: "BF16 -> NVFP4, widened inside the WASM kernel",
    applies: nvfp4Bf16Applies,
    run: (spec, data, scale) => nvfp4Bf16Band(spec, data) ?? convertBandGeneric(spec, data, scale),
  },
];

/** The fast path that converts `spec`, or null (never for a BF16 detour: `BandSpec.via`). */
export function fastPathOf(spec: BandSpec, scale: Uint8Array | null): FastPath | null {
  if (spec.via !== undefined) return null;
  for (const p of FAST_PATHS) if (p.applies(spec, scale)) return p;
  return null;
}

/** Decode then encode one band (the specification every fast path is tested against). */
export function convertBandGeneric(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): EncodedBand {
  // The decoded values live only for this call (`encodeBand` copies what it returns).
  const n = spec.rows * spec.cols;
  const x = decodeBand(spec.source, data, scale, spec.rows, spec.cols, spec.tensorScale, scratchF32(n));
  const { target, rows, cols, overflow, outTensorScale } = spec;
  if (spec.via !== "BF16") return encodeBand(target, x, rows, cols, overflow, outTensorScale);
  // The detour through BF16 changes the codes; the error is still measured against the source.
  const rounded = Float32Array.from(x);
  roundToBf16(rounded);
  const out = encodeBand(target, rounded, rows, cols, overflow, outTensorScale);
  const y = decodeBand(
    targetAsSource(spec.target),
    out.data,
    out.scale,
    spec.rows,
    spec.cols,
    spec.outTensorScale,
  );
  const stats = emptyStats();
  for (let i = 0; i < x.length; i++) addPairs(stats, x[i], y[i], 1);
  stats.saturated = out.stats.saturated;
  return { ...out, stats };
}

/** Convert one band: a relabel, a fast path when one applies, else `convertBandGeneric`. */
export function convertBand(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): EncodedBand {
  if (spec.transpose) {
    const out = convertBandUntransposed(spec, data, scale);
    return {
      ...out,
      data: transposeMatrix(out.data, spec.rows, spec.cols, out.data.length / (spec.rows * spec.cols)),
    };
  }
  return convertBandUntransposed(spec, data, scale);
}

/**
 * `rows x cols` elements of `size` bytes, row-major, as the `cols x rows` matrix they transpose to.
 */
export function transposeMatrix(bytes: Uint8Array, rows: number, cols: number, size: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const from = (r * cols + c) * size;
      const to = (c * rows + r) * size;
      for (let k = 0; k < size; k++) out[to + k] = bytes[from + k];
    }
  return out;
}

function convertBandUntransposed(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): EncodedBand {
  if (spec.relabel) return relabelBand(spec, data, scale);
  if (spec.transposeInput) {
    // The input matrix is `cols x rows`: decode it, transpose the values, encode.
    const x = decodeBand(spec.source, data, scale, spec.cols, spec.rows, spec.tensorScale);
    const t = new Float32Array(transposeMatrix(new Uint8Array(x.buffer), spec.cols, spec.rows, 4).buffer);
    return encodeBand(spec.target, t, spec.rows, spec.cols, spec.overflow, spec.outTensorScale);
  }
  const fast = fastPathOf(spec, scale);
  return fast === null ? convertBandGeneric(spec, data, scale) : fast.run(spec, data, scale);
}
