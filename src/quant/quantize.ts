import { LITTLE_ENDIAN } from "../formats/endian.js";
import { encodeInto, formatInfo } from "../formats/index.js";
import {
  amaxFromBits,
  bandAmaxBits,
  blockAmax,
  type InputView,
  inputView,
  type QuantInput,
} from "./block-amax.js";
import { computeBlockScaling } from "./block-scales.js";
import { dataLength, storeCodes, valuesOf } from "./element-codes.js";
import { QuantError, where } from "./errors.js";
import { pow2CodeTable } from "./fast-tables.js";
import { BlockRows, resolveBlock, scaleGrid, scaleShapeFor, view2d } from "./layout.js";
import { elementLimits, isPowerOfTwoRule, nvfp4GlobalScale } from "./scale-rules.js";
import { allocScales, type ScaleArray } from "./scale-storage.js";
import { type PresetName, resolveScheme, type Scheme } from "./schemes.js";

/** A block-quantized tensor. */
export interface QuantizedTensor {
  /** Element codes: one per byte, or two per byte (element 0 in the low nibble) for 4-bit formats. */
  readonly data: Uint8Array;
  /** Logical shape (element count, also for packed 4-bit data). */
  readonly shape: number[];
  /** Stored scales, row-major over the block grid: Float32Array (`f32`), Uint8Array (`ue8m0`, `e4m3`), Uint16Array (`bf16`). */
  readonly scales: ScaleArray;
  /** `scaleShapeFor(shape, block)`: `[...shape[:-1], gc]` for 1xK tiles, else the per-matrix grid. */
  readonly scaleShape: number[];
  readonly scheme: Scheme;
  /** NVFP4 two-level: the float32 per-tensor scale (dequantized = e2m1 * e4m3 * globalScale). */
  readonly globalScale?: number;
}

export interface QuantizeOptions {
  /** Tensor name for error messages. */
  name?: string;
  /** NVFP4 two-level: a calibrated per-tensor scale instead of fl32(amax(tensor) / 2688). */
  globalScale?: number;
  /** `"generic"` forces the reference path (tests compare it with the table path). Default `"auto"`. */
  kernel?: "auto" | "generic";
}

/** Float32 elements scaled per row chunk: bounds the scratch memory for per-tensor blocks. */
const CHUNK_ELEMENTS = 1 << 16;

/**
 * Block-quantizes a tensor. The scale of each block comes from the block's amax by the scheme's
 * rule; data are scaled by the factor its source uses (x * 2^-k for power-of-two rules, x * fl32(1/s)
 * or x / s for `amax`, torchao's factor for NVFP4), rounded to float32, clamped to +-max (unless
 * `saturate: false`) and encoded with the shared codec (RNE by default). BF16/F16 input is read per
 * band of block rows, never widened as a whole; with a power-of-two rule it is quantized by a
 * 65536-entry lookup table per scale (built with the same encoder).
 */
export function quantize(
  x: QuantInput,
  shape: readonly number[],
  schemeOrPreset: Scheme | PresetName,
  options: QuantizeOptions = {},
): QuantizedTensor {
  const name = options.name;
  const scheme = resolveScheme(schemeOrPreset);
  const v = inputView(x, shape, name);
  const [, cols] = view2d(shape);
  const [br, bc] = resolveBlock(shape, scheme.block, name);
  const [gr, gc] = scaleGrid(shape, scheme.block);
  const blockRows = new BlockRows(shape, scheme.block);
  const info = formatInfo(scheme.element);
  const bits = info.bits;
  const { max } = elementLimits(scheme.element);
  const saturate = scheme.saturate ?? true;
  const rounding = scheme.rounding ?? "rne";
  const data = new Uint8Array(dataLength(v.length, bits));
  const scales = allocScales(scheme.scale, gr * gc);

  // The tensor amax: one "tensor" block, read with the same integer compares.
  const globalScale = globalScaleOf(scheme, options, () => blockAmax(x, shape, "tensor", name)[0] ?? 0);

  const pow2 = isPowerOfTwoRule(scheme.rule);
  const useTables = pow2 && v.kind !== "float32" && rounding !== "stochastic" && options.kernel !== "generic";
  const amaxBits = new Uint32Array(gc);
  const amax = new Float32Array(gc);
  const scaling = { factor: new Float64Array(gc), k: pow2 ? new Float64Array(gc) : null };
  const chunkRows = Math.max(1, Math.min(br, Math.floor(CHUNK_ELEMENTS / Math.max(cols, 1))));
  const scratch = useTables ? null : new Float32Array(chunkRows * cols);
  const codes = new Uint8Array(useTables ? (bits === 4 ? cols : 0) : chunkRows * cols);
  const encodeOptions = { rounding, overflow: saturate ? ("saturate" as const) : ("nonfinite" as const) };
  const ctSignedZero = isCtE2m1(scheme);
  const seed = scheme.seed ?? 0;
  let chunkIndex = 0;

  for (let g = 0; g < gr; g++) {
    const r0 = blockRows.start(g);
    const r1 = blockRows.end(g);
    bandAmaxBits(v, cols, r0, r1, bc, amaxBits);
    for (let j = 0; j < gc; j++) amax[j] = amaxFromBits(v, amaxBits[j]);
    const divide = computeBlockScaling(scheme, amax, gc, scales, g * gc, globalScale, scaling);
    if (useTables) {
      tableBand(v, data, bits, cols, r0, r1, bc, gc, scheme, scaling.k!, max, rounding, saturate, codes);
      continue;
    }
    for (let c0 = r0; c0 < r1; c0 += chunkRows) {
      const c1 = Math.min(c0 + chunkRows, r1);
      const n = (c1 - c0) * cols;
      const s = scratch!.subarray(0, n);
      scaleRows(v, s, cols, c0, c1, bc, scaling.factor, divide, saturate ? max : Number.POSITIVE_INFINITY);
      const out = codes.subarray(0, n);
      const opts =
        rounding === "stochastic"
          ? { ...encodeOptions, seed: (seed + chunkIndex * 0x9e3779b9) >>> 0 }
          : encodeOptions;
      encodeInto(scheme.element, s, out, opts);
      if (ctSignedZero) plusZeroForMinusZero(s, out);
      storeCodes(data, bits, c0 * cols, out, n);
      chunkIndex++;
    }
  }

  const result: QuantizedTensor = {
    data,
    shape: [...shape],
    scales,
    scaleShape: scaleShapeFor(shape, scheme.block),
    scheme,
  };
  return globalScale === undefined ? result : { ...result, globalScale };
}

/**
 * The NVFP4 two-level per-tensor scale (undefined for other schemes): the calibrated one given, or
 * torchao's fl32(amax(tensor) / 2688).
 */
function globalScaleOf(
  scheme: Scheme,
  options: QuantizeOptions,
  tensorAmax: () => number,
): number | undefined {
  if (scheme.rule !== "nvfp4" || !(scheme.globalScale ?? true)) return undefined;
  const g = options.globalScale;
  if (g === undefined) return nvfp4GlobalScale(tensorAmax());
  if (!(g > 0) || !Number.isFinite(g)) {
    throw new QuantError(
      "invalid-input",
      `${where(options.name)}globalScale ${g} must be a positive finite number`,
    );
  }
  return Math.fround(g);
}

/** Scaled, clamped float32 values of rows [r0, r1) into `out`. */
function scaleRows(
  v: InputView,
  out: Float32Array,
  cols: number,
  r0: number,
  r1: number,
  bc: number,
  factor: Float64Array,
  divide: boolean,
  limit: number,
): void {
  const src = v.bits;
  const f16 = v.kind === "float16" ? valuesOf("float16") : null;
  const asF32 = v.kind === "float32" ? new Float32Array(src.buffer, src.byteOffset, src.length) : null;
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  let o = 0;
  for (let r = r0; r < r1; r++) {
    const rowStart = r * cols;
    // Widen the row into `out` first (float32 values), then scale in place.
    if (asF32) out.set(asF32.subarray(rowStart, rowStart + cols), o);
    else if (f16) for (let c = 0; c < cols; c++) out[o + c] = f16[src[rowStart + c]];
    else for (let c = 0; c < cols; c++) outBits[o + c] = src[rowStart + c] << 16;
    for (let j = 0, c0 = 0; c0 < cols; j++, c0 += bc) {
      const f = factor[j];
      const end = o + Math.min(c0 + bc, cols);
      // A NaN scale makes its block NaN (never NaN * NaN, whose sign JavaScript leaves open).
      if (Number.isNaN(f)) out.fill(Number.NaN, o + c0, end);
      else if (divide) {
        for (let i = o + c0; i < end; i++) {
          let y = Math.fround(out[i] / f);
          if (y > limit) y = limit;
          else if (y < -limit) y = -limit;
          out[i] = y;
        }
      } else {
        for (let i = o + c0; i < end; i++) {
          let y = Math.fround(out[i] * f);
          if (y > limit) y = limit;
          else if (y < -limit) y = -limit;
          out[i] = y;
        }
      }
    }
    o += cols;
  }
}

/** The lookup-table path: one 65536-entry table per block scale. */
function tableBand(
  v: InputView,
  data: Uint8Array,
  bits: number,
  cols: number,
  r0: number,
  r1: number,
  bc: number,
  gc: number,
  scheme: Scheme,
  k: Float64Array,
  max: number,
  rounding: NonNullable<Scheme["rounding"]>,
  saturate: boolean,
  rowCodes: Uint8Array,
): void {
  const dtype = v.kind as "bfloat16" | "float16";
  const tables: Uint8Array[] = new Array(gc);
  for (let j = 0; j < gc; j++) {
    tables[j] = pow2CodeTable(dtype, scheme.element, k[j], max, rounding, saturate);
    // compressed-tensors' E2M1: -0.0 becomes +0 (`isCtE2m1`); the tables are shared, so copy first.
    if (isCtE2m1(scheme)) {
      tables[j] = tables[j].slice();
      tables[j][0x8000] = 0;
    }
  }
  const src = v.bits as Uint16Array;
  if (
    bits === 8 &&
    cols % 4 === 0 &&
    bc % 4 === 0 &&
    src.byteOffset % 4 === 0 &&
    data.byteOffset % 4 === 0 &&
    LITTLE_ENDIAN
  ) {
    // 2 input codes per 32-bit load, 4 output codes per 32-bit store.
    const src32 = new Uint32Array(src.buffer, src.byteOffset, src.length >> 1);
    const dst32 = new Uint32Array(data.buffer, data.byteOffset, data.length >> 2);
    for (let r = r0; r < r1; r++) {
      const rowStart = r * cols;
      for (let j = 0, c0 = 0; j < gc; j++, c0 += bc) {
        const t = tables[j];
        const end = Math.min(c0 + bc, cols);
        for (let w = (rowStart + c0) >> 2, e = (rowStart + end) >> 2; w < e; w++) {
          const a = src32[2 * w];
          const b = src32[2 * w + 1];
          dst32[w] = t[a & 0xffff] | (t[a >>> 16] << 8) | (t[b & 0xffff] << 16) | (t[b >>> 16] << 24);
        }
      }
    }
    return;
  }
  for (let r = r0; r < r1; r++) {
    const rowStart = r * cols;
    const dst = bits === 4 ? rowCodes : data;
    const base = bits === 4 ? 0 : rowStart;
    for (let j = 0, c0 = 0; j < gc; j++, c0 += bc) {
      const t = tables[j];
      const end = Math.min(c0 + bc, cols);
      for (let c = c0; c < end; c++) dst[base + c] = t[src[rowStart + c]];
    }
    if (bits === 4) storeCodes(data, bits, rowStart, rowCodes, cols);
  }
}

/** Scales of a tensor under a scheme, without quantizing the data. */
export interface ComputedScales {
  readonly scales: ScaleArray;
  readonly scaleShape: number[];
  /** Per-block amax, row-major over the grid (NaN for blocks containing NaN). */
  readonly amax: Float32Array;
  readonly globalScale?: number;
}

/**
 * The stored scales `quantize` would produce for `x` (same rules, same storage), plus the block
 * amaxes they came from.
 */
export function computeScales(
  x: QuantInput,
  shape: readonly number[],
  schemeOrPreset: Scheme | PresetName,
  options: Omit<QuantizeOptions, "kernel"> = {},
): ComputedScales {
  const scheme = resolveScheme(schemeOrPreset);
  const amax = blockAmax(x, shape, scheme.block, options.name);
  // Math.max propagates NaN, as torch.amax does.
  const globalScale = globalScaleOf(scheme, options, () => amax.reduce((t, a) => Math.max(t, a), 0));
  const scales = allocScales(scheme.scale, amax.length);
  const pow2 = isPowerOfTwoRule(scheme.rule);
  computeBlockScaling(scheme, amax, amax.length, scales, 0, globalScale, {
    factor: new Float64Array(amax.length),
    k: pow2 ? new Float64Array(amax.length) : null,
  });
  const out: ComputedScales = { scales, scaleShape: scaleShapeFor(shape, scheme.block), amax };
  return globalScale === undefined ? out : { ...out, globalScale };
}

/**
 * compressed-tensors' E2M1 (`cast_to_fp4`) multiplies the rounded magnitude by torch.sign(x), which
 * is +0 for -0.0: a scaled -0.0 is code 0x0, while a negative value rounding to zero stays 0x8 (the
 * band encoder does the same, src/quant/kernels/encode-band.ts `encodeMx`).
 */
const isCtE2m1 = (scheme: Scheme) => scheme.rule === "ct" && scheme.element === "float4_e2m1fn";

/** Code 0 where the scaled value is exactly -0.0 (see `isCtE2m1`). */
function plusZeroForMinusZero(scaled: Float32Array, codes: Uint8Array): void {
  const bits = new Uint32Array(scaled.buffer, scaled.byteOffset, scaled.length);
  for (let i = 0; i < bits.length; i++) if (bits[i] === 0x80000000) codes[i] = 0;
}
