import { decode, decodeTable } from "../formats/index.js";
import { type Dtype, formatOfDtype } from "../safetensors/index.js";
import type { ReportQuantizedWeight } from "./layout.js";
import { decodeScaleValues } from "./scale-values.js";

/** Float tensors (F32, BF16, F16, and FP8 codes as their unscaled values) decoded to float32; null for other dtypes. */
export function decodeFloatTensor(dtype: Dtype, bytes: Uint8Array): Float32Array | null {
  if (dtype === "F32" || dtype === "BF16" || dtype === "F16") return decodeScaleValues(dtype, bytes);
  if (dtype === "F8_E4M3" || dtype === "F8_E5M2") return decode(formatOfDtype(dtype)!, bytes);
  return null;
}

/** The block grid of a quantized weight: `gr` x `gc` blocks of `br` x `bc` in each of `mats` matrices. */
export function blockGrid(q: ReportQuantizedWeight) {
  const [rows, cols] = q.shape.slice(-2);
  const [br, bc] = q.block;
  const mats = q.shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { rows, cols, mats, br, bc, gr: Math.ceil(rows / br), gc: Math.ceil(cols / bc) };
}

/**
 * Dequantizes a block-FP8 weight (E4M3/E5M2 codes, float scales, 2-D blocks) to float32: element
 * (r, c) is fl32(decode(code) * scale[r/br][c/bc]), as DeepSeek's `weight_dequant` computes it.
 * Returns null for layouts it does not handle (packed FP4, E8M0/E4M3 scales).
 */
export function dequantizeBlockWeight(
  q: ReportQuantizedWeight,
  codes: Uint8Array,
  scaleBytes: Uint8Array,
): Float32Array | null {
  if (q.packed || q.shape.length < 2 || q.scaleStorage === "e4m3") return null;
  const scales = decodeScaleValues(q.scaleDtype, scaleBytes);
  if (scales === null) return null;
  const table = decodeTable(q.element === "float8_e5m2" ? "float8_e5m2" : "float8_e4m3fn");
  const { rows, cols, mats, br, bc, gr, gc } = blockGrid(q);
  if (scales.length !== mats * gr * gc || codes.length !== mats * rows * cols) return null;
  const out = new Float32Array(codes.length);
  for (let m = 0; m < mats; m++) {
    for (let r = 0; r < rows; r++) {
      const srow = (m * gr + Math.floor(r / br)) * gc;
      const base = (m * rows + r) * cols;
      for (let c = 0; c < cols; c++)
        out[base + c] = table[codes[base + c]] * scales[srow + Math.floor(c / bc)];
    }
  }
  return out;
}
