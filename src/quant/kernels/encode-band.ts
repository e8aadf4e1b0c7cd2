/**
 * Encoding float32 band values into a target codec, fused with the error statistics of the
 * conversion: the second half of every band conversion, and the specification the fast paths are
 * tested against. Block scales come from the one implementation of each rule (target-scales.ts) on
 * the block amax of block-amax.ts, so a band encodes exactly as `quantize()` does.
 */
import type { Overflow } from "../../formats/index.js";
import { amaxFromBits, bandAmaxBits, inputView } from "../block-amax.js";
import { valuesOf } from "../element-codes.js";
import { addPairs, type ErrorStats, emptyStats } from "../error-stats.js";
import { pow2CodeTable } from "../fast-tables.js";
import { outBytes } from "./buffers.js";
import { encodeIntChannel } from "./encode-int-channel.js";
import { encodeNvfp4 } from "./encode-nvfp4.js";
import {
  bf16FromBits,
  E2M1_VALUES,
  E4M3_MAX,
  E4M3_VALUES,
  e2m1FromBits,
  e2m1Nan,
  e4m3FromBits,
  e4m3Nan,
  F16_MAX,
  f16Of,
} from "./tables.js";
import {
  ctFp8BlockScale,
  fp8BlockScale,
  fp8BlockScaleBytes,
  isCtFp8Block,
  mxScaleByte,
  mxTiesAway,
} from "./target-scales.js";
import type { PlainDtype, TargetCodec } from "./types.js";

/** Result of encoding a band. */
export interface EncodedBand {
  data: Uint8Array;
  scale: Uint8Array | null;
  /** A per-row companion of the codes (W4A8's `scale_bias`, float32 bytes), when the target has one. */
  aux?: Uint8Array | null;
  stats: ErrorStats;
}

/**
 * Encode float32 values into a plain float dtype, RNE. Finite values beyond the range: ±Inf for
 * BF16 (torch), ±65504 or ±Inf for F16 by `overflow` (`f16Of`). F32 is exact: its statistics are
 * those of y = x (count, xx = xy = yy, ee = 0).
 */
function encodePlain(dtype: PlainDtype, x: Float32Array, overflow: Overflow): EncodedBand {
  const n = x.length;
  const st = emptyStats();
  const xb = new Uint32Array(x.buffer, x.byteOffset, n);
  if (dtype === "F32") {
    let xx = 0;
    for (let i = 0; i < n; i++) {
      const v = x[i];
      if (Number.isFinite(v)) xx += v * v;
      else st.nonfinite++;
    }
    st.count = n - st.nonfinite;
    st.xx = st.xy = st.yy = xx;
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
      addPairs(st, x[i], tmp[0], 1);
    }
  } else {
    const f16 = valuesOf("float16");
    for (let i = 0; i < n; i++) {
      const h = f16Of(xb[i], overflow);
      out[i] = h;
      const v = x[i];
      const y = f16[h];
      if (Math.abs(v) > F16_MAX && Number.isFinite(y)) st.saturated++; // v NaN or Inf: false
      addPairs(st, v, y, 1);
    }
  }
  return { data: new Uint8Array(out.buffer, 0, 2 * n), scale: null, stats: st };
}

/**
 * DeepGEMM `per_block_cast_to_fp8` over a band: per block the amax (NaN-propagating, as
 * `torch.amax`), the scale by `fp8BlockScale`, codes `e4m3(x * fl32(1 / sf))` (RNE, saturating).
 * Scales are stored as float32 `sf` (DeepSeek's `weight_scale_inv`) or as the E8M0 byte of `sf`.
 * Float scales stored as BF16 are compressed-tensors' FP8_BLOCK quantizer instead (`isCtFp8Block`,
 * vllm-project/compressed-tensors `lifecycle/forward.py` `_quantize`): the scale by
 * `ctFp8BlockScale`, codes `e4m3(clamp(bf16(bf16(x) / sf), +-448))`, a true division in BF16
 * arithmetic (float32 quotient rounded to BF16, then RNE to E4M3: two roundings), on the weight
 * cast to BF16 (exact for BF16 input).
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
  const view = inputView(x, [rows, cols]);
  const amaxBits = new Uint32Array(sc);
  const tmp = new Float32Array(1);
  const tb = new Uint32Array(tmp.buffer);
  const ct = isCtFp8Block(t);
  for (let bi = 0; bi < sr; bi++) {
    const r0 = bi * br;
    const r1 = Math.min(rows, r0 + br);
    bandAmaxBits(view, cols, r0, r1, bc, amaxBits);
    for (let bj = 0; bj < sc; bj++) {
      const c0 = bj * bc;
      const c1 = Math.min(cols, c0 + bc);
      const amax = amaxFromBits(view, amaxBits[bj]);
      tmp[0] = ct ? ctFp8BlockScale(amax) : fp8BlockScale(t.scaleFmt, amax);
      const sf = tmp[0];
      sfs[bi * sc + bj] = sf;
      tmp[0] = 1 / sf;
      const inv = tmp[0];
      if (Number.isNaN(sf)) {
        nanBlock(x, data, cols, r0, r1, c0, c1, e4m3Nan(), false, st);
        continue;
      }
      for (let r = r0; r < r1; r++) {
        const o = r * cols;
        for (let c = c0; c < c1; c++) {
          const v = x[o + c];
          if (ct) {
            // bf16(bf16(v) / sf): the weight cast to BF16, the quotient rounded to BF16.
            tmp[0] = v;
            tb[0] = bf16FromBits(tb[0]) << 16;
            tmp[0] /= sf;
            tb[0] = bf16FromBits(tb[0]) << 16;
          } else tmp[0] = v * inv;
          const q = Math.abs(tmp[0]);
          const code = e4m3FromBits(tb[0]);
          data[o + c] = code;
          if (q > E4M3_MAX && Number.isFinite(v)) st.saturated++;
          addPairs(st, v, E4M3_VALUES[code] * sf, 1);
        }
      }
    }
  }
  // F32 as computed, or their E8M0 bytes (the quantization layer checks they are powers of two).
  const scale = fp8BlockScaleBytes(t, sfs);
  return { data, scale, stats: st };
}

/**
 * A block whose scale is NaN: every element becomes the positive NaN code (not `x * NaN`, whose
 * sign JavaScript leaves open when x is NaN too), and every finite input counts as an error of NaN.
 */
function nanBlock(
  x: Float32Array,
  data: Uint8Array,
  cols: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
  code: number,
  packed: boolean,
  st: ErrorStats,
): void {
  for (let r = r0; r < r1; r++) {
    const o = r * cols;
    for (let c = c0; c < c1; c++) {
      if (packed) {
        const k = (o + c) >> 1;
        data[k] = (o + c) & 1 ? data[k] | (code << 4) : code;
      } else data[o + c] = code;
      addPairs(st, x[o + c], Number.NaN, 1);
    }
  }
}

/** Largest magnitude of each MX element format. */
const MX_MAX = { float8_e4m3fn: E4M3_MAX, float4_e2m1fn: 6 } as const;

/**
 * MX quantization over a band (OCP MX v1.0, torchao `to_mx`): groups of 32 along the row, scale
 * byte by `rule` from the group amax (NaN-propagating), elements `x * 2^-k` RNE saturating. That
 * element path is also compressed-tensors' (`x / 2^k`, clamp, RNE: exact division by a power of
 * two) and ModelOpt's (`x * 2^(127 - byte)`, clamp, RNE). The `triton` rule takes `encodeMxTriton`.
 */
function encodeMx(
  t: Extract<TargetCodec, { kind: "mx" }>,
  x: Float32Array,
  rows: number,
  cols: number,
): EncodedBand {
  if (t.rule === "triton") return encodeMxTriton(t, x, rows, cols);
  const ctZero = t.rule === "ct";
  const groups = cols / 32;
  const fp4 = t.element === "float4_e2m1fn";
  const data = outBytes(fp4 ? (rows * cols) / 2 : rows * cols);
  const scale = new Uint8Array(rows * groups);
  const st = emptyStats();
  const max = MX_MAX[t.element];
  const view = inputView(x, [rows, cols]);
  const amaxBits = new Uint32Array(groups);
  const tmp = new Float32Array(1);
  const tb = new Uint32Array(tmp.buffer);
  for (let r = 0; r < rows; r++) {
    bandAmaxBits(view, cols, r, r + 1, 32, amaxBits);
    for (let g = 0; g < groups; g++) {
      const o = r * cols + g * 32;
      const byte = mxScaleByte(t.rule, amaxFromBits(view, amaxBits[g]), t.element);
      scale[r * groups + g] = byte;
      if (byte === 0xff) {
        nanBlock(x, data, cols, r, r + 1, g * 32, g * 32 + 32, fp4 ? e2m1Nan() : e4m3Nan(), fp4, st);
        continue;
      }
      const s = 2 ** (byte - 127);
      const inv = 2 ** (127 - byte);
      for (let i = 0; i < 32; i++) {
        const v = x[o + i];
        tmp[0] = v * inv;
        const q = tmp[0];
        if (Math.abs(q) > max && Number.isFinite(v)) st.saturated++;
        let y: number;
        if (fp4) {
          // compressed-tensors' `cast_to_fp4` restores the sign with torch.sign(x): a scaled -0.0
          // becomes +0 (code 0x0); a negative value rounding to zero stays -0 (0x8).
          const code = ctZero && tb[0] === 0x80000000 ? 0 : e2m1FromBits(tb[0]);
          const k = (o + i) >> 1;
          data[k] = (o + i) & 1 ? data[k] | (code << 4) : code;
          y = E2M1_VALUES[code] * s;
        } else {
          const code = e4m3FromBits(tb[0]);
          data[o + i] = code;
          y = E4M3_VALUES[code] * s;
        }
        addPairs(st, v, y, 1);
      }
    }
  }
  return { data, scale, stats: st };
}

/**
 * E2M1 codes of the 65536 BF16 values, rounded by the codec ties away from zero and saturating
 * (triton_kernels' bit trick). Every rounding boundary of E2M1 (0.25, 0.75, ..., 5) is a BF16
 * value, so a float32 q has the code of its top 16 bits (q truncated to BF16): one lookup.
 */
let e2m1TiesAwayTable: Uint8Array | null = null;
/** E2M1 magnitude code 7 (6.0): what triton_kernels' bit trick gives a NaN (exponent field 255). */
const E2M1_TRITON_NAN = 0x7;

/**
 * triton_kernels `downcast_to_mxfp_torch` (ROUND_UP; triton-lang/triton
 * `python/triton_kernels/triton_kernels/numerics_details/mxfp.py`), the quantizer of gpt-oss and
 * transformers' `quantize_to_mxfp4`: per group the byte by the `triton` rule, q = fl32(x * f) with
 * f = 1 / 2^(byte - 127), or 0 when the rounded scale is 0 (byte 0: an all-zero group, or one
 * holding a NaN, whose finite elements then become +-0). E4M3: clamp to +-448 and RNE. E2M1: round
 * to nearest with ties away from zero (0.25 -> 0.5, 2.5 -> 3, 5 -> 6), saturating at 6, the sign
 * kept (-0.0 -> 0x8). The bit trick sees a NaN as magnitude code 7; NaN elements are given the
 * positive NaN codes (0x7 for E2M1, 0x7F for E4M3: CUDA's canonical NaN is positive, JavaScript's
 * sign of NaN is unspecified). A group with byte 255 (Inf amax) decodes to NaN and gets the usual
 * NaN block.
 */
function encodeMxTriton(
  t: Extract<TargetCodec, { kind: "mx" }>,
  x: Float32Array,
  rows: number,
  cols: number,
): EncodedBand {
  const groups = cols / 32;
  const fp4 = t.element === "float4_e2m1fn";
  const tiesAway = mxTiesAway(t)
    ? (e2m1TiesAwayTable ??= pow2CodeTable("bfloat16", "float4_e2m1fn", 0, 6, "ties-away", true))
    : null;
  const nanCode = fp4 ? E2M1_TRITON_NAN : e4m3Nan();
  const data = outBytes(fp4 ? (rows * cols) / 2 : rows * cols);
  const scale = new Uint8Array(rows * groups);
  const st = emptyStats();
  const max = MX_MAX[t.element];
  const view = inputView(x, [rows, cols]);
  const amaxBits = new Uint32Array(groups);
  const tmp = new Float32Array(1);
  const tb = new Uint32Array(tmp.buffer);
  for (let r = 0; r < rows; r++) {
    bandAmaxBits(view, cols, r, r + 1, 32, amaxBits);
    for (let g = 0; g < groups; g++) {
      const o = r * cols + g * 32;
      const byte = mxScaleByte(t.rule, amaxFromBits(view, amaxBits[g]), t.element);
      scale[r * groups + g] = byte;
      if (byte === 0xff) {
        nanBlock(x, data, cols, r, r + 1, g * 32, g * 32 + 32, fp4 ? e2m1Nan() : e4m3Nan(), fp4, st);
        continue;
      }
      const s = 2 ** (byte - 127);
      const f = byte === 0 ? 0 : 2 ** (127 - byte);
      for (let i = 0; i < 32; i++) {
        const v = x[o + i];
        tmp[0] = v * f;
        const q = tmp[0];
        let code: number;
        if (Number.isNaN(q)) code = nanCode;
        else code = tiesAway !== null ? tiesAway[tb[0] >>> 16] : e4m3FromBits(tb[0]);
        if (Math.abs(q) > max && Number.isFinite(v)) st.saturated++;
        if (fp4) {
          const k = (o + i) >> 1;
          data[k] = (o + i) & 1 ? data[k] | (code << 4) : code;
        } else data[o + i] = code;
        addPairs(st, v, (fp4 ? E2M1_VALUES : E4M3_VALUES)[code] * s, 1);
      }
    }
  }
  return { data, scale, stats: st };
}

/**
 * Encode float32 values (`rows * cols`) with `target` (`overflow`: see `BandSpec.overflow`;
 * `outTensorScale`: the NVFP4 target's per-tensor scalar, `BandSpec.outTensorScale`).
 */
export function encodeBand(
  target: TargetCodec,
  x: Float32Array,
  rows: number,
  cols: number,
  overflow: Overflow = "saturate",
  outTensorScale?: number,
): EncodedBand {
  switch (target.kind) {
    case "plain":
      return encodePlain(target.dtype, x, overflow);
    case "fp8-block":
      return encodeFp8Block(target, x, rows, cols);
    case "mx":
      return encodeMx(target, x, rows, cols);
    case "nvfp4":
      return encodeNvfp4(target, x, rows, cols, outTensorScale);
    case "int-channel":
      return encodeIntChannel(target, x, rows, cols);
    default:
      return target satisfies never;
  }
}
