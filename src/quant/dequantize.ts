import { LITTLE_ENDIAN } from "../formats/endian.js";
import { encodeInto, formatInfo } from "../formats/index.js";
import { storedScaleValue } from "./block-scales.js";
import { dataLength, loadCodes, valuesOf } from "./element-codes.js";
import { QuantError, where } from "./errors.js";
import { f32Bits } from "./float32.js";
import {
  BlockRows,
  checkLength,
  checkScaleShape,
  checkShape,
  resolveBlock,
  scaleGrid,
  scaleShapeFor,
  view2d,
} from "./layout.js";
import type { QuantizedTensor } from "./quantize.js";
import { checkScaleArray } from "./scale-storage.js";
import { presets, resolveScheme } from "./schemes.js";

export interface DequantizeOptions {
  /** Output dtype: Float32Array (`float32`, default) or BF16/F16 codes in a Uint16Array. */
  to?: "float32" | "bfloat16" | "float16";
  /** Tensor name for error messages. */
  name?: string;
}

/** Blocks with at least this many elements get a per-block 256-entry output table. */
const TABLE_MIN_BLOCK = 512;
/** Rows decoded at once on the direct path. */
const CHUNK_ELEMENTS = 1 << 16;

/**
 * Dequantizes: every element is fl32(decode(code) * scale) (NVFP4: scale = fl32(e4m3 * global)),
 * then, for `to: "bfloat16" | "float16"`, rounded to nearest-even into 16-bit codes: the same
 * numbers as DeepSeek's `fp8_cast_bf16.py` and torchao's `to_dtype`. A NaN scale (E8M0 0xFF) makes
 * its whole block NaN. For 16-bit output, large blocks go through a 256-entry table per block (the
 * output of every code under that block's scale); small blocks with E8M0/E4M3 scales share tables by scale.
 */
export function dequantize(q: QuantizedTensor, options: DequantizeOptions = {}): Float32Array | Uint16Array {
  const name = options.name;
  const to = options.to ?? "float32";
  if (to !== "float32" && to !== "bfloat16" && to !== "float16") {
    throw new QuantError("invalid-input", `${where(name)}dequantize: unknown output dtype "${String(to)}"`);
  }
  const scheme = resolveScheme(q.scheme);
  const info = formatInfo(scheme.element);
  const n = checkShape(q.shape, name);
  const bits = info.bits;
  if (!(q.data instanceof Uint8Array) || q.data.length !== dataLength(n, bits)) {
    throw new QuantError(
      "invalid-shape",
      `${where(name)}data of ${q.data?.length} bytes does not match shape [${q.shape.join(", ")}] of ` +
        `${scheme.element}: expected ${dataLength(n, bits)} bytes`,
    );
  }
  checkScaleArray(q.scales, scheme.scale, name);
  checkScaleShape(q.scaleShape, q.scales.length, q.shape, scheme.block, name);
  if (scheme.scale === "e4m3" && (scheme.globalScale ?? true) && q.globalScale === undefined) {
    throw new QuantError("invalid-scales", `${where(name)}NVFP4 two-level tensor has no globalScale`);
  }
  const scaleOf = (i: number) => storedScaleValue(scheme, q.scales, i, q.globalScale);
  const { data, shape } = q;
  const block = scheme.block;
  const dec = valuesOf(scheme.element);
  // E8M0/E4M3 scales take few distinct values, so even small blocks share their tables.
  const fewScales = scheme.scale === "ue8m0" || scheme.scale === "e4m3";
  const [rows, cols] = view2d(shape);
  const [br, bc] = resolveBlock(shape, block);
  const [gr, gc] = scaleGrid(shape, block);
  const codeCount = 1 << bits;
  const wide = to !== "float32";
  const out = wide ? new Uint16Array(n) : new Float32Array(n);
  const blockElems = br * Math.min(bc, cols);
  // Float32 output multiplies directly: a table lookup is no faster than the product.
  const useTables = wide && (blockElems >= TABLE_MIN_BLOCK || fewScales);
  const blockRows = new BlockRows(shape, block);
  const rowCodes = new Uint8Array(bits === 4 ? cols : 0);

  if (useTables) {
    const words =
      bits === 8 &&
      LITTLE_ENDIAN &&
      cols % 4 === 0 &&
      (bc % 4 === 0 || bc >= cols) &&
      data.byteOffset % 4 === 0;
    const src32 = words ? new Uint32Array(data.buffer, data.byteOffset, data.length >> 2) : null;
    const out32 = words ? new Uint32Array(out.buffer, out.byteOffset, out.length >> 1) : null;
    const cache = new Map<number, Uint16Array>();
    const tmp = new Float32Array(codeCount);
    const tables: Uint16Array[] = new Array(gc);
    for (let g = 0; g < gr; g++) {
      for (let j = 0; j < gc; j++) {
        const s = scaleOf(g * gc + j);
        const key = f32Bits(s);
        let t = cache.get(key);
        if (t === undefined) {
          // A NaN scale makes its block NaN (never NaN * NaN, whose sign JavaScript leaves open).
          if (Number.isNaN(s)) tmp.fill(Number.NaN);
          else for (let c = 0; c < codeCount; c++) tmp[c] = dec[c] * s;
          t = new Uint16Array(codeCount);
          encodeInto(to, tmp, t);
          if (cache.size > 4096) cache.clear();
          cache.set(key, t);
        }
        tables[j] = t;
      }
      const r1 = blockRows.end(g);
      for (let r = blockRows.start(g); r < r1; r++) {
        const rowStart = r * cols;
        let src: Uint8Array = data;
        let base = rowStart;
        if (bits === 4) {
          loadCodes(data, 4, rowStart, rowCodes, cols);
          src = rowCodes;
          base = 0;
        }
        lookupRow(out as Uint16Array, out32, tables, src, src32, rowStart, base, cols, bc, gc);
      }
    }
    return out;
  }

  // Direct path: products in float32, then one encode per chunk of rows for 16-bit output.
  const chunkRows = Math.max(1, Math.floor(CHUNK_ELEMENTS / Math.max(cols, 1)));
  const scratch = new Float32Array(wide ? chunkRows * cols : 0);
  const codes = new Uint8Array(chunkRows * cols);
  const rowScales = new Float64Array(gc);
  let lastBand = -1;
  for (let r0 = 0; r0 < rows; r0 += chunkRows) {
    const r1 = Math.min(r0 + chunkRows, rows);
    const m = (r1 - r0) * cols;
    loadCodes(data, bits, r0 * cols, codes, m);
    const dst = wide ? scratch : (out as Float32Array);
    const base = wide ? -r0 * cols : 0;
    for (let r = r0; r < r1; r++) {
      const g = blockRows.of(r);
      if (g !== lastBand) {
        for (let j = 0; j < gc; j++) rowScales[j] = scaleOf(g * gc + j);
        lastBand = g;
      }
      const rowStart = r * cols;
      const k = (r - r0) * cols;
      for (let j = 0, c0 = 0; j < gc; j++, c0 += bc) {
        const s = rowScales[j];
        const end = Math.min(c0 + bc, cols);
        if (Number.isNaN(s)) dst.fill(Number.NaN, base + rowStart + c0, base + rowStart + end);
        else for (let c = c0; c < end; c++) dst[base + rowStart + c] = dec[codes[k + c]] * s;
      }
    }
    if (wide) encodeInto(to, scratch.subarray(0, m), (out as Uint16Array).subarray(r0 * cols, r1 * cols));
  }
  return out;
}

/**
 * One row through the block tables: four codes per 32-bit load and two outputs per 32-bit store
 * when `words` (everything 4-aligned), else one code at a time from `src` (at `base` for the row).
 */
function lookupRow(
  out: Uint16Array,
  out32: Uint32Array | null,
  tables: Uint16Array[],
  src: Uint8Array,
  src32: Uint32Array | null,
  rowStart: number,
  base: number,
  cols: number,
  bc: number,
  gc: number,
): void {
  for (let j = 0, c0 = 0; j < gc; j++, c0 += bc) {
    const t = tables[j];
    const end = Math.min(c0 + bc, cols);
    if (out32 !== null && src32 !== null) {
      for (let w = (rowStart + c0) >> 2, e = (rowStart + end) >> 2; w < e; w++) {
        const x = src32[w];
        out32[2 * w] = t[x & 0xff] | (t[(x >>> 8) & 0xff] << 16);
        out32[2 * w + 1] = t[(x >>> 16) & 0xff] | (t[x >>> 24] << 16);
      }
    } else {
      const shift = base - rowStart;
      for (let i = rowStart + c0, e = rowStart + end; i < e; i++) out[i] = t[src[i + shift]];
    }
  }
}

/**
 * DeepSeek's `fp8_cast_bf16.py` (`weight_dequant`): BF16 RNE of fl32(float32(e4m3) * scale_inv) per
 * block, partial edge blocks included. `scaleInv` is the `[ceil(M/128), ceil(N/128)]` grid of float32
 * `weight_scale_inv` (row-major); `data` the E4M3 codes of the `[M, N]` weight.
 */
export function dequantizeBlockFp8ToBf16(
  data: Uint8Array,
  shape: readonly number[],
  scaleInv: Float32Array,
  block: readonly [number, number] = [128, 128],
): Uint16Array {
  checkLength(data.length, shape, undefined, "FP8 data");
  const [gr, gc] = scaleGrid(shape, block);
  if (!(scaleInv instanceof Float32Array) || scaleInv.length !== gr * gc) {
    throw new QuantError(
      "invalid-scales",
      `weight_scale_inv of ${scaleInv?.length} values does not match shape [${shape.join(", ")}] in ` +
        `[${block.join(", ")}] blocks: expected [${gr}, ${gc}] (${gr * gc} values)`,
    );
  }
  return dequantize(
    {
      data,
      shape: [...shape],
      scales: scaleInv,
      scaleShape: scaleShapeFor(shape, block),
      scheme: { ...presets["deepseek-v3"], block },
    },
    { to: "bfloat16" },
  ) as Uint16Array;
}

/**
 * Per block, the largest magnitude a block can dequantize to (element max x block scale): inputs
 * beyond it were saturated. Feed it to the metrics as `limits`.
 */
export function blockLimits(q: QuantizedTensor): Float64Array {
  const scheme = resolveScheme(q.scheme);
  const max = formatInfo(scheme.element).max;
  const out = new Float64Array(q.scales.length);
  for (let i = 0; i < out.length; i++) out[i] = max * storedScaleValue(scheme, q.scales, i, q.globalScale);
  return out;
}
