/**
 * Band kernels: convert a band of whole rows of one weight from its source encoding to its target
 * encoding, through float32 values, and accumulate the error the conversion adds. Pure functions on
 * typed arrays, run in worker threads (worker.ts) or in-process.
 *
 * A band is `rows x cols` elements of one matrix (leading dimensions already split off); when a block
 * has more than one row, the band starts on a block row, so its scale rows are
 * `ceil(rows / blockRows)` rows of the scale grid.
 */

import {
  amaxScale,
  ceilScaleExponent,
  evenScaleExponent,
  floorScaleExponent,
  rceilScaleExponent,
  ue8m0BytesOfF32,
} from "../quant/index.js";
import type { BandSpec, MxRule, PlainDtype, SourceCodec, TargetCodec } from "../quant/kernels/types.js";
import type { ScaleStorage } from "../quant/scale-encoding.js";
import { outBytes } from "./buffers.js";
import {
  bf16FromBits,
  deepseekUe8m0Scale,
  E2M1_TABLE,
  E4M3_TABLE,
  e2m1FromBits,
  e4m3FromBits,
  F16_TABLE,
  f16FromBits,
  fromBits,
} from "./codecs.js";
import { convertBandFast } from "./fast.js";

export type { BandSpec, MxRule, PlainDtype, SourceCodec, TargetCodec } from "../quant/kernels/types.js";
export { blockOf, rowBytes, scaleBytes } from "../quant/kernels/types.js";

/** Additive error statistics of one tensor (x = input values, y = output values decoded). */
export interface ErrorStats {
  count: number;
  /** sum x^2, sum (x - y)^2, sum x*y, sum y^2 over finite x. */
  xx: number;
  ee: number;
  xy: number;
  yy: number;
  maxAbsErr: number;
  /** NaN/Inf values in the input. */
  nonfinite: number;
  /** Elements clipped to the element format's largest magnitude. */
  saturated: number;
  /** Nonzero inputs that became zero. */
  flushed: number;
}

export function emptyStats(): ErrorStats {
  return { count: 0, xx: 0, ee: 0, xy: 0, yy: 0, maxAbsErr: 0, nonfinite: 0, saturated: 0, flushed: 0 };
}

export function mergeStats(a: ErrorStats, b: ErrorStats): ErrorStats {
  return {
    count: a.count + b.count,
    xx: a.xx + b.xx,
    ee: a.ee + b.ee,
    xy: a.xy + b.xy,
    yy: a.yy + b.yy,
    maxAbsErr: Math.max(a.maxAbsErr, b.maxAbsErr),
    nonfinite: a.nonfinite + b.nonfinite,
    saturated: a.saturated + b.saturated,
    flushed: a.flushed + b.flushed,
  };
}

/** Relative Frobenius error ||x-y|| / ||x||, SQNR in dB and cosine similarity. */
export function summarize(s: ErrorStats): { relFrob: number; sqnrDb: number; cosine: number } {
  const relFrob = s.xx > 0 ? Math.sqrt(s.ee / s.xx) : s.ee > 0 ? Number.POSITIVE_INFINITY : 0;
  const sqnrDb = s.ee > 0 ? 10 * Math.log10(s.xx / s.ee) : Number.POSITIVE_INFINITY;
  const cosine = s.xx > 0 && s.yy > 0 ? s.xy / Math.sqrt(s.xx * s.yy) : s.xx === s.yy ? 1 : 0;
  return { relFrob, sqnrDb, cosine };
}

function u8view(b: Uint8Array, n: number, bytesPer: number): Uint8Array {
  // Copy when unaligned so typed views below can be used.
  if (b.byteOffset % bytesPer !== 0) return b.slice(0, n * bytesPer);
  return b;
}

/** Decode scales of a block source into float32 values. */
export function decodeScales(storage: ScaleStorage, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  if (storage === "f32") {
    const b = u8view(bytes, n, 4);
    out.set(new Float32Array(b.buffer, b.byteOffset, n));
  } else if (storage === "ue8m0") {
    for (let i = 0; i < n; i++) out[i] = bytes[i] === 0xff ? Number.NaN : 2 ** (bytes[i] - 127);
  } else {
    const b = u8view(bytes, n, 2);
    const h = new Uint16Array(b.buffer, b.byteOffset, n);
    if (storage === "bf16") {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = h[i] << 16;
    } else {
      for (let i = 0; i < n; i++) out[i] = F16_TABLE[h[i]];
    }
  }
  return out;
}

/**
 * Decode a source band into float32 values (`rows * cols`). Block sources compute
 * `float32(decode(code)) * float32(scale)` rounded to float32, as DeepSeek's Triton
 * `weight_dequant` does (`x.to(float32) * s`).
 */
export function decodeBand(
  src: SourceCodec,
  data: Uint8Array,
  scale: Uint8Array | null,
  rows: number,
  cols: number,
): Float32Array {
  const n = rows * cols;
  const out = new Float32Array(n);
  if (src.kind === "plain") {
    if (src.dtype === "F32") {
      const b = u8view(data, n, 4);
      out.set(new Float32Array(b.buffer, b.byteOffset, n));
    } else {
      const b = u8view(data, n, 2);
      const h = new Uint16Array(b.buffer, b.byteOffset, n);
      if (src.dtype === "BF16") {
        const u = new Uint32Array(out.buffer);
        for (let i = 0; i < n; i++) u[i] = h[i] << 16;
      } else {
        for (let i = 0; i < n; i++) out[i] = F16_TABLE[h[i]];
      }
    }
    return out;
  }
  if (src.kind === "tensor") throw new Error("per-tensor sources are not decoded yet");
  const [br, bc] = src.block;
  const sc = Math.ceil(cols / bc);
  const sr = Math.ceil(rows / br);
  const s = decodeScales(src.scaleStorage, scale!, sr * sc);
  const fp4 = src.element === "float4_e2m1fn";
  for (let r = 0; r < rows; r++) {
    const srow = Math.floor(r / br) * sc;
    const o = r * cols;
    if (fp4) {
      const rb = (r * cols) / 2;
      for (let c = 0; c < cols; c += 2) {
        const byte = data[rb + c / 2];
        const sv = s[srow + Math.floor(c / bc)];
        out[o + c] = E2M1_TABLE[byte & 15] * sv;
        out[o + c + 1] = E2M1_TABLE[byte >> 4] * sv;
      }
    } else {
      for (let cb = 0; cb < sc; cb++) {
        const sv = s[srow + cb];
        const c1 = Math.min(cols, (cb + 1) * bc);
        for (let c = cb * bc; c < c1; c++) out[o + c] = E4M3_TABLE[data[o + c]] * sv;
      }
    }
  }
  return out;
}

/** Result of encoding a band. */
export interface EncodedBand {
  data: Uint8Array;
  scale: Uint8Array | null;
  stats: ErrorStats;
}

const FP8_MAX = 448;

export function accumulate(st: ErrorStats, x: number, y: number): void {
  if (!Number.isFinite(x)) {
    st.nonfinite++;
    return;
  }
  const e = x - y;
  st.count++;
  st.xx += x * x;
  st.ee += e * e;
  st.xy += x * y;
  st.yy += y * y;
  const ae = Math.abs(e);
  if (ae > st.maxAbsErr) st.maxAbsErr = ae;
  if (y === 0 && x !== 0) st.flushed++;
}

/** Encode float32 values into a plain float dtype. */
function encodePlain(dtype: PlainDtype, x: Float32Array): EncodedBand {
  const n = x.length;
  const st = emptyStats();
  const xb = new Uint32Array(x.buffer, x.byteOffset, n);
  if (dtype === "F32") {
    for (let i = 0; i < n; i++) if (!Number.isFinite(x[i])) st.nonfinite++;
    st.count = n - st.nonfinite;
    return {
      data: new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + n * 4)),
      scale: null,
      stats: st,
    };
  }
  const out = new Uint16Array(outBytes(2 * n).buffer, 0, n);
  const tmp = new Float32Array(1);
  const tb = new Uint32Array(tmp.buffer);
  if (dtype === "BF16") {
    for (let i = 0; i < n; i++) {
      const h = bf16FromBits(xb[i]);
      out[i] = h;
      tb[0] = h << 16;
      accumulate(st, x[i], tmp[0]);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const h = f16FromBits(xb[i]);
      out[i] = h;
      accumulate(st, x[i], F16_TABLE[h]);
    }
  }
  return { data: new Uint8Array(out.buffer, 0, 2 * n), scale: null, stats: st };
}

/**
 * DeepGEMM `per_block_cast_to_fp8` over a band: per block amax (finite values), clamped to 1e-4;
 * `sf = amax / 448` in float32, with `ue8m0` rounded up to a power of two (`ceil_to_ue8m0`); codes
 * `e4m3(x * float32(1 / sf))` (RNE, saturating). Scales are stored as float32 `sf` (DeepSeek's
 * `weight_scale_inv`) or as the E8M0 byte of `sf`.
 */
function encodeFp8Block(
  t: Extract<TargetCodec, { kind: "fp8-block" }>,
  x: Float32Array,
  rows: number,
  cols: number,
): EncodedBand {
  const [br, bc] = t.block;
  const sr = Math.ceil(rows / br);
  const sc = Math.ceil(cols / bc);
  const data = outBytes(rows * cols);
  const sfs = new Float32Array(sr * sc);
  const st = emptyStats();
  const tmp = new Float32Array(1);
  const tb = new Uint32Array(tmp.buffer);
  for (let bi = 0; bi < sr; bi++) {
    const r0 = bi * br;
    const r1 = Math.min(rows, r0 + br);
    for (let bj = 0; bj < sc; bj++) {
      const c0 = bj * bc;
      const c1 = Math.min(cols, c0 + bc);
      let amax = 0;
      for (let r = r0; r < r1; r++) {
        const o = r * cols;
        for (let c = c0; c < c1; c++) {
          const a = Math.abs(x[o + c]);
          if (a > amax && a !== Number.POSITIVE_INFINITY) amax = a;
        }
      }
      tmp[0] = t.scaleFmt === "ue8m0" ? deepseekUe8m0Scale(amax) : amaxScale(amax, "float8_e4m3fn");
      const sf = tmp[0];
      sfs[bi * sc + bj] = sf;
      tmp[0] = 1 / sf;
      const inv = tmp[0];
      for (let r = r0; r < r1; r++) {
        const o = r * cols;
        for (let c = c0; c < c1; c++) {
          const v = x[o + c];
          tmp[0] = v * inv;
          const q = Math.abs(tmp[0]);
          const code = e4m3FromBits(tb[0]);
          data[o + c] = code;
          if (q > FP8_MAX && Number.isFinite(v)) st.saturated++;
          accumulate(st, v, E4M3_TABLE[code] * sf);
        }
      }
    }
  }
  // F32 powers of two as stored, or their E8M0 bytes (the quantization layer checks they are powers of two).
  const scale = t.scaleDtype === "F32" ? new Uint8Array(sfs.buffer) : ue8m0BytesOfF32(sfs);
  return { data, scale, stats: st };
}

/** Largest magnitude of each MX element format. */
const MX_ELEMENT = {
  float8_e4m3fn: { max: 448 },
  float4_e2m1fn: { max: 6 },
} as const;

const MX_RULES = {
  floor: floorScaleExponent,
  ceil: ceilScaleExponent,
  even: evenScaleExponent,
  rceil: rceilScaleExponent,
} as const;

/**
 * The E8M0 scale byte of an MX group from its amax (float32 bits), by the quantization layer's
 * torchao `ScaleCalculationMode` rules (docs/SCALE-RULES.md): FLOOR (OCP; = compressed-tensors'
 * `127 + floor(log2(amax / 2^emax))`), CEIL, EVEN, RCEIL. Non-finite amax gives 0xFF.
 */
export function mxScaleByte(rule: MxRule, amaxBits: number, element: keyof typeof MX_ELEMENT): number {
  const k = MX_RULES[rule](Math.abs(fromBits(amaxBits)), element);
  return Number.isNaN(k) ? 0xff : k + 127;
}

/** MX quantization over a band: groups of 32 along the row, scale byte by `rule`, elements RNE saturating. */
function encodeMx(
  t: Extract<TargetCodec, { kind: "mx" }>,
  x: Float32Array,
  rows: number,
  cols: number,
): EncodedBand {
  const groups = cols / 32;
  const fp4 = t.element === "float4_e2m1fn";
  const data = outBytes(fp4 ? (rows * cols) / 2 : rows * cols);
  const scale = new Uint8Array(rows * groups);
  const st = emptyStats();
  const max = MX_ELEMENT[t.element].max;
  const tmp = new Float32Array(1);
  const tb = new Uint32Array(tmp.buffer);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const o = r * cols + g * 32;
      let amax = 0;
      let nan = false;
      for (let i = 0; i < 32; i++) {
        const a = Math.abs(x[o + i]);
        if (a > amax) amax = a;
        else if (Number.isNaN(a)) nan = true;
      }
      tmp[0] = nan ? Number.NaN : amax;
      const byte = mxScaleByte(t.rule, tb[0], t.element);
      scale[r * groups + g] = byte;
      const s = byte === 0xff ? Number.NaN : 2 ** (byte - 127);
      const inv = byte === 0xff ? Number.NaN : 2 ** (127 - byte);
      for (let i = 0; i < 32; i++) {
        const v = x[o + i];
        tmp[0] = v * inv;
        const q = tmp[0];
        if (Math.abs(q) > max && Number.isFinite(v)) st.saturated++;
        let y: number;
        if (fp4) {
          const code = e2m1FromBits(tb[0]);
          const k = (o + i) >> 1;
          data[k] = (o + i) & 1 ? data[k] | (code << 4) : code;
          y = E2M1_TABLE[code] * s;
        } else {
          const code = e4m3FromBits(tb[0]);
          data[o + i] = code;
          y = E4M3_TABLE[code] * s;
        }
        accumulate(st, v, y);
      }
    }
  }
  return { data, scale, stats: st };
}

/** Encode float32 values (`rows * cols`) with `target`. */
export function encodeBand(target: TargetCodec, x: Float32Array, rows: number, cols: number): EncodedBand {
  switch (target.kind) {
    case "plain":
      return encodePlain(target.dtype, x);
    case "fp8-block":
      return encodeFp8Block(target, x, rows, cols);
    case "mx":
      return encodeMx(target, x, rows, cols);
    default:
      return target satisfies never;
  }
}

/** The source codec that reads what `target` wrote (used by `--verify`). */
export function targetAsSource(target: TargetCodec): SourceCodec {
  switch (target.kind) {
    case "plain":
      return target;
    case "fp8-block":
      return {
        kind: "block",
        element: "float8_e4m3fn",
        packed: false,
        block: target.block,
        scaleStorage: target.scaleDtype === "F32" ? "f32" : "ue8m0",
      };
    case "mx":
      return {
        kind: "block",
        element: target.element,
        packed: target.element === "float4_e2m1fn",
        block: [1, 32],
        scaleStorage: "ue8m0",
      };
    default:
      return target satisfies never;
  }
}

/** Decode then encode one band (the specification every fast path is tested against). */
export function convertBandGeneric(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): EncodedBand {
  const x = decodeBand(spec.source, data, scale, spec.rows, spec.cols);
  return encodeBand(spec.target, x, spec.rows, spec.cols);
}

/** Convert one band: a fast path when one applies (fast.ts), else `convertBandGeneric`. */
export function convertBand(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): EncodedBand {
  return convertBandFast(spec, data, scale) ?? convertBandGeneric(spec, data, scale);
}
