/**
 * A second, deliberately plain implementation of the two NVFP4 producers' rules, one element at a
 * time, written from their Python: ModelOpt `NVFP4QTensor` (`get_weights_scaling_factor`,
 * `quantize`, `_cast_fp4` with its searchsorted bounds; NVIDIA/Model-Optimizer
 * `modelopt/torch/quantization/qtensor/nvfp4_tensor.py`) and compressed-tensors (`generate_gparam`,
 * `calculate_qparams` in `quantization/utils/helpers.py`, `_quantize`, `cast_to_fp4` with its
 * interval table). E4M3 and E2M1 values come from the format definitions (reference.ts), not from
 * the library's codec. Used by the kernel test and the end-to-end convert test.
 */
import { bf16, bf16Value, E2M1_VALUES, E4M3_VALUES, nearestCode } from "./reference.js";

const f = Math.fround;
/** BF16 RNE of fl32(x), as a number. */
export const bf = (x: number) => bf16Value(bf16(f(x)));

/** torch `.to(torch.float8_e4m3fn)` of a non-negative float32: RNE, NaN from 480 up (and for NaN). */
export function e4m3Code(s: number): number {
  if (!(s < 480)) return 0x7f;
  return nearestCode(s, E4M3_VALUES, 0x80);
}
export const e4m3Value = (code: number) => (code === 0x7f ? Number.NaN : E4M3_VALUES[code & 0x7f]);

/** ModelOpt `_cast_fp4`: sign from x < 0, searchsorted (left) over the bounds, +1 on 0.75, 1.75, 3.5. */
export function modeloptFp4(x: number): number {
  const bounds = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5];
  const a = Math.abs(x);
  let ord = bounds.findIndex((b) => b >= a);
  if (ord < 0) ord = 7;
  if (a === 0.75 || a === 1.75 || a === 3.5) ord++;
  return ((x < 0 ? 1 : 0) << 3) | ord;
}

/**
 * compressed-tensors `cast_to_fp4` on a value clamped to +-6: the magnitude by its interval table,
 * times `torch.sign(x)` (which is +0 for -0.0), then `pack_fp4_to_uint8`'s sign bit (signbit). So a
 * -0.0 is code 0x0, and a negative value whose magnitude rounds to zero is 0 * -1 = -0.0: 0x8.
 */
export function ctFp4(x: number): number {
  const a = Math.abs(x);
  let v: number;
  if (a <= 0.25) v = 0;
  else if (a < 0.75) v = 0.5;
  else if (a <= 1.25) v = 1;
  else if (a < 1.75) v = 1.5;
  else if (a <= 2.5) v = 2;
  else if (a < 3.5) v = 3;
  else if (a <= 5) v = 4;
  else v = 6;
  const sign = x > 0 ? 1 : x < 0 ? -1 : 0;
  const y = v * sign;
  const negative = y < 0 || Object.is(y, -0);
  return E2M1_VALUES.indexOf(Math.abs(y)) | (negative ? 8 : 0);
}

/**
 * compressed-tensors' `weight_global_scale`, `448.0 * 6.0 / amax` on the BF16 tensor amax clamped
 * to finfo(bf16).tiny: PyTorch computes a number divided by a tensor as `amax.reciprocal() * 2688`
 * (torch/_tensor.py `__rtruediv__`), each result a BF16 tensor; then nan_to_num(posinf=1).
 */
export function ctGlobal(amax: number): number {
  const a = Math.max(bf(amax), 2 ** -126);
  const g = bf(bf(1 / a) * 2688);
  return Number.isFinite(g) ? g : 1;
}

export interface Reference {
  global: number;
  codes: number[];
  scales: number[];
  /** What each element dequantizes to: fl32(e2m1 * fl32(e4m3 * t)) or fl32(e2m1 * fl32(e4m3 / g)). */
  y: number[];
  saturated: number;
}

/** Largest finite |x| of the tensor. */
export function tensorAmax(x: Float32Array): number {
  let m = 0;
  for (const v of x) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

/** ModelOpt's export of one tensor, element by element (`global` given, or from the tensor's amax). */
export function modeloptReference(x: Float32Array, rows: number, cols: number, global?: number): Reference {
  const wsf2 = global ?? (tensorAmax(x) === 0 ? 1 : f(tensorAmax(x) / 2688));
  const ref: Reference = { global: wsf2, codes: [], scales: [], y: [], saturated: 0 };
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < cols / 16; g++) {
      const block = Array.from(x.subarray(r * cols + g * 16, r * cols + g * 16 + 16));
      const bamax = block.some(Number.isNaN) ? Number.NaN : Math.max(...block.map(Math.abs));
      let s = f(bamax / f(6 * wsf2));
      if (s === 0) s = 1;
      if (s < 2 ** -9) s = 2 ** -9;
      const sc = e4m3Code(s);
      ref.scales.push(sc);
      const den = f(e4m3Value(sc) * wsf2);
      for (const w of block) {
        const q = f(w / den);
        if (Number.isNaN(den)) {
          ref.codes.push(-1); // a NaN block: any code, the value is NaN
          ref.y.push(Number.NaN);
          continue;
        }
        if (Math.abs(q) > 6) ref.saturated++;
        const code = modeloptFp4(q);
        ref.codes.push(code);
        ref.y.push(f(E2M1_VALUES[code & 7] * (code & 8 ? -1 : 1) * den));
      }
    }
  }
  return ref;
}

/** compressed-tensors' quantization of one tensor, element by element, BF16 weight arithmetic. */
export function ctReference(x: Float32Array, rows: number, cols: number, global?: number): Reference {
  const gs = global ?? ctGlobal(tensorAmax(x));
  const ref: Reference = { global: gs, codes: [], scales: [], y: [], saturated: 0 };
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < cols / 16; g++) {
      const block = Array.from(x.subarray(r * cols + g * 16, r * cols + g * 16 + 16));
      const bamax = block.some(Number.isNaN) ? Number.NaN : Math.max(...block.map(Math.abs));
      let s = f(bf(bamax / 6) * gs);
      if (s > 448) s = 448;
      let sc = e4m3Code(s);
      if (e4m3Value(sc) === 0) sc = e4m3Code(0.125);
      ref.scales.push(sc);
      const sp = f(e4m3Value(sc) / gs);
      for (const w of block) {
        if (Number.isNaN(sp)) {
          ref.codes.push(-1);
          ref.y.push(Number.NaN);
          continue;
        }
        let q = f(w / sp);
        if (Math.abs(q) > 6 && Number.isFinite(w)) ref.saturated++;
        q = Math.min(6, Math.max(-6, q));
        const code = ctFp4(q);
        ref.codes.push(code);
        ref.y.push(f(E2M1_VALUES[code & 7] * (code & 8 ? -1 : 1) * sp));
      }
    }
  }
  return ref;
}

/** Unpacked codes of packed bytes (element 2i in the low nibble). */
export function unpack(data: Uint8Array): number[] {
  return Array.from(data).flatMap((b) => [b & 15, b >> 4]);
}
