/**
 * Fast paths of `convertBand` for the three conversions that matter most, each bit-identical to
 * the generic decode-to-float32-then-encode path in kernels.ts (the specification; the tests run
 * both on the same inputs):
 * - block E4M3 -> BF16/F16/F32: per block a 256-entry table `code -> output`, and error statistics
 *   from a code histogram (the output only depends on the code within a block);
 * - BF16 -> FP8 UE8M0: the scale is a power of two, so `x * (1/sf)` only shifts the exponent and the
 *   E4M3 code is a lookup of the shifted BF16 bits in a 65536-entry table;
 * - block E4M3 -> block E4M3 with the same block (requantization): per block a 256-entry code map,
 *   statistics from the code histogram.
 */

import { decodeTable } from "../formats/index.js";
import { amaxScale, ue8m0BytesOfF32 } from "../quant/index.js";
import { outBytes } from "./buffers.js";
import {
  bf16FromBits,
  bitsOf,
  deepseekUe8m0Scale,
  E4M3_TABLE,
  e4m3FromBits,
  F16_TABLE,
  f16FromBits,
} from "./codecs.js";
import { type BandSpec, decodeScales, type EncodedBand, type ErrorStats, emptyStats } from "./kernels.js";

const FP8_MAX = 448;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Add `n` copies of the pair (x, y) to the statistics (same rules as `accumulate`). */
function addPair(st: ErrorStats, x: number, y: number, n: number): void {
  if (!Number.isFinite(x)) {
    st.nonfinite += n;
    return;
  }
  const e = x - y;
  st.count += n;
  st.xx += n * x * x;
  st.ee += n * e * e;
  st.xy += n * x * y;
  st.yy += n * y * y;
  const ae = Math.abs(e);
  if (ae > st.maxAbsErr) st.maxAbsErr = ae;
  if (y === 0 && x !== 0) st.flushed += n;
}

/** DeepGEMM's block scale: `max(amax, 1e-4) / 448` in float32, optionally rounded up to a power of two. */
function blockScale(amax: number, ue8m0: boolean): number {
  return ue8m0 ? deepseekUe8m0Scale(amax) : amaxScale(amax, "float8_e4m3fn");
}

function dequantE4m3(
  spec: BandSpec,
  data: Uint8Array,
  scale: Uint8Array,
  dtype: "BF16" | "F16" | "F32",
): EncodedBand {
  const src = spec.source as Extract<BandSpec["source"], { kind: "block" }>;
  const { rows, cols } = spec;
  const [br, bc] = src.block;
  const sr = Math.ceil(rows / br);
  const sc = Math.ceil(cols / bc);
  const s = decodeScales(src.scaleStorage, scale, sr * sc);
  const n = rows * cols;
  const outU8 = outBytes(n * (dtype === "F32" ? 4 : 2));
  const out16 = dtype === "F32" ? null : new Uint16Array(outU8.buffer, 0, n);
  const out32 = dtype === "F32" ? new Float32Array(outU8.buffer, 0, n) : null;
  const out32w = new Uint32Array(outU8.buffer, 0, n >>> 1);
  const tbl16 = new Uint16Array(sc * 256);
  const tbl32 = new Float32Array(sc * 256);
  const hist = new Int32Array(sc * 256);
  const st = emptyStats();
  for (let bi = 0; bi < sr; bi++) {
    for (let bj = 0; bj < sc; bj++) {
      const sv = s[bi * sc + bj];
      for (let c = 0; c < 256; c++) {
        const x = Math.fround(E4M3_TABLE[c] * sv);
        tbl32[bj * 256 + c] = x;
        if (out16) tbl16[bj * 256 + c] = dtype === "BF16" ? bf16FromBits(bitsOf(x)) : f16FromBits(bitsOf(x));
      }
    }
    hist.fill(0);
    const r1 = Math.min(rows, (bi + 1) * br);
    for (let r = bi * br; r < r1; r++) {
      const o = r * cols;
      for (let bj = 0; bj < sc; bj++) {
        const t = bj * 256;
        const c1 = Math.min(cols, (bj + 1) * bc);
        if (out16) {
          let c = bj * bc;
          // Two codes per step (32-bit output stores) where the row offset allows it.
          if (LITTLE_ENDIAN && ((o + c) & 1) === 0) {
            for (; c + 1 < c1; c += 2) {
              const c0 = data[o + c];
              const c1c = data[o + c + 1];
              out32w[(o + c) >>> 1] = tbl16[t + c0] | (tbl16[t + c1c] << 16);
              hist[t + c0]++;
              hist[t + c1c]++;
            }
          }
          for (; c < c1; c++) {
            const code = data[o + c];
            out16[o + c] = tbl16[t + code];
            hist[t + code]++;
          }
        } else {
          for (let c = bj * bc; c < c1; c++) {
            const code = data[o + c];
            out32![o + c] = tbl32[t + code];
            hist[t + code]++;
          }
        }
      }
    }
    const yb = new Float32Array(1);
    const yu = new Uint32Array(yb.buffer);
    for (let k = 0; k < sc * 256; k++) {
      const cnt = hist[k];
      if (cnt === 0) continue;
      const x = tbl32[k];
      let y = x;
      if (dtype === "BF16") {
        yu[0] = tbl16[k] << 16;
        y = yb[0];
      } else if (dtype === "F16") y = F16_TABLE[tbl16[k]];
      addPair(st, x, y, cnt);
    }
  }
  if (dtype === "F32") {
    // The generic F32 path counts finite values only (no error statistics beyond the count).
    const f = emptyStats();
    f.nonfinite = st.nonfinite;
    f.count = st.count;
    return { data: outU8, scale: null, stats: f };
  }
  return { data: outU8, scale: null, stats: st };
}

let BF16_TO_E4M3: Uint8Array | null = null;
/** E4M3 code of every BF16 bit pattern (RNE, saturating). */
function bf16ToE4m3(): Uint8Array {
  if (BF16_TO_E4M3 === null) {
    BF16_TO_E4M3 = new Uint8Array(65536);
    for (let h = 0; h < 65536; h++) BF16_TO_E4M3[h] = e4m3FromBits(h << 16);
  }
  return BF16_TO_E4M3;
}

let BF16_VALUES: Float32Array | null = null;
/** The float32 value of every BF16 bit pattern. */
function bf16Values(): Float32Array {
  if (BF16_VALUES === null) BF16_VALUES = decodeTable("bfloat16");
  return BF16_VALUES;
}

/**
 * One block of `quantBf16Ue8m0` (a function of its own so V8 optimizes it as a whole instead of
 * on-stack-replacing the inner loop). With the block's power-of-two scale 2^-k fixed, both the
 * E4M3 code and the error of an element depend only on its BF16 code, so the element loop only
 * encodes and counts codes (`hist`, with the codes seen listed in `seen`); the error statistics
 * are then summed once per distinct code, weighted by its count.
 * `acc` = [count, xx, ee, xy, yy, maxAbsErr, saturated, flushed, nonfinite].
 */
function quantBlockBf16(
  h: Uint16Array,
  out: Uint8Array,
  cols: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
  k: number,
  sf: number,
  T: Uint8Array,
  BF: Float32Array,
  acc: Float64Array,
  hist: Int32Array,
  seen: Uint16Array,
): void {
  let nSeen = 0;
  let nonfinite = 0;
  for (let r = r0; r < r1; r++) {
    const o = r * cols;
    for (let i = o + c0; i < o + c1; i++) {
      const v = h[i];
      const e = (v >> 7) & 0xff;
      if (e === 0xff) {
        out[i] = T[v];
        nonfinite++;
        continue;
      }
      const e2 = e + k;
      out[i] = e === 0 || e2 <= 116 ? (v >> 8) & 0x80 : T[(v & 0x807f) | (e2 << 7)];
      if (hist[v]++ === 0) seen[nSeen++] = v;
    }
  }
  const E = E4M3_TABLE;
  let xx = 0;
  let ee = 0;
  let xy = 0;
  let yy = 0;
  let maxErr = acc[5];
  let cnt = 0;
  let sat = 0;
  let flushed = 0;
  for (let j = 0; j < nSeen; j++) {
    const v = seen[j];
    const n = hist[v];
    hist[v] = 0;
    const e = (v >> 7) & 0xff;
    const e2 = e + k;
    let code: number;
    if (e === 0 || e2 <= 116) code = (v >> 8) & 0x80;
    else {
      const sh = (v & 0x807f) | (e2 << 7);
      if ((sh & 0x7fff) > 0x43e0) sat += n;
      code = T[sh];
    }
    const x = BF[v];
    const y = E[code] * sf;
    const d = x - y;
    cnt += n;
    xx += n * x * x;
    ee += n * d * d;
    xy += n * x * y;
    yy += n * y * y;
    const ad = d < 0 ? -d : d;
    if (ad > maxErr) maxErr = ad;
    if (y === 0 && x !== 0) flushed += n;
  }
  acc[0] += cnt;
  acc[1] += xx;
  acc[2] += ee;
  acc[3] += xy;
  acc[4] += yy;
  acc[5] = maxErr;
  acc[6] += sat;
  acc[7] += flushed;
  acc[8] += nonfinite;
}

function quantBf16Ue8m0(spec: BandSpec, data: Uint8Array, scaleF8: boolean): EncodedBand {
  const t = spec.target as Extract<BandSpec["target"], { kind: "fp8-block" }>;
  const { rows, cols } = spec;
  const [br, bc] = t.block;
  const sr = Math.ceil(rows / br);
  const sc = Math.ceil(cols / bc);
  const n = rows * cols;
  const b = data.byteOffset % 2 === 0 ? data : data.slice();
  const h = new Uint16Array(b.buffer, b.byteOffset, n);
  const T = bf16ToE4m3();
  const BF = bf16Values();
  const out = outBytes(n);
  const sfs = new Float32Array(sr * sc);
  const st = emptyStats();
  const xv = new Float32Array(1);
  const xu = new Uint32Array(xv.buffer);
  const acc = new Float64Array(9);
  const hist = new Int32Array(65536);
  const seen = new Uint16Array(65536);
  for (let bi = 0; bi < sr; bi++) {
    const r0 = bi * br;
    const r1 = Math.min(rows, r0 + br);
    for (let bj = 0; bj < sc; bj++) {
      const c0 = bj * bc;
      const c1 = Math.min(cols, c0 + bc);
      let amaxBits = 0;
      for (let r = r0; r < r1; r++) {
        const o = r * cols;
        for (let c = c0; c < c1; c++) {
          const a = h[o + c] & 0x7fff;
          if (a > amaxBits && a < 0x7f80) amaxBits = a;
        }
      }
      xu[0] = amaxBits << 16;
      const sf = blockScale(xv[0], true);
      sfs[bi * sc + bj] = sf;
      const k = 127 - ((bitsOf(sf) >>> 23) & 0xff); // x * (1/sf) = x * 2^k
      quantBlockBf16(h, out, cols, r0, r1, c0, c1, k, sf, T, BF, acc, hist, seen);
    }
  }
  st.count = acc[0];
  st.xx = acc[1];
  st.ee = acc[2];
  st.xy = acc[3];
  st.yy = acc[4];
  st.maxAbsErr = acc[5];
  st.saturated = acc[6];
  st.flushed = acc[7];
  st.nonfinite = acc[8];
  // F32 powers of two as stored, or their E8M0 bytes (the quantization layer checks they are powers of two).
  const scale = !scaleF8 ? new Uint8Array(sfs.buffer) : ue8m0BytesOfF32(sfs);
  return { data: out, scale, stats: st };
}

function requantE4m3(spec: BandSpec, data: Uint8Array, scale: Uint8Array): EncodedBand {
  const src = spec.source as Extract<BandSpec["source"], { kind: "block" }>;
  const t = spec.target as Extract<BandSpec["target"], { kind: "fp8-block" }>;
  const { rows, cols } = spec;
  const [br, bc] = t.block;
  const sr = Math.ceil(rows / br);
  const sc = Math.ceil(cols / bc);
  const sIn = decodeScales(src.scaleStorage, scale, sr * sc);
  const out = outBytes(rows * cols);
  const sfs = new Float32Array(sr * sc);
  const st = emptyStats();
  const hist = new Int32Array(256);
  const xs = new Float32Array(256);
  const map = new Uint8Array(256);
  for (let bi = 0; bi < sr; bi++) {
    const r0 = bi * br;
    const r1 = Math.min(rows, r0 + br);
    for (let bj = 0; bj < sc; bj++) {
      const c0 = bj * bc;
      const c1 = Math.min(cols, c0 + bc);
      hist.fill(0);
      for (let r = r0; r < r1; r++) {
        const o = r * cols;
        for (let c = c0; c < c1; c++) hist[data[o + c]]++;
      }
      const sv = sIn[bi * sc + bj];
      let amax = 0;
      for (let c = 0; c < 256; c++) {
        const x = Math.fround(E4M3_TABLE[c] * sv);
        xs[c] = x;
        const a = Math.abs(x);
        if (hist[c] > 0 && a > amax && a !== Number.POSITIVE_INFINITY) amax = a;
      }
      const sf = blockScale(amax, t.scaleFmt === "ue8m0");
      sfs[bi * sc + bj] = sf;
      const inv = Math.fround(1 / sf);
      for (let c = 0; c < 256; c++) {
        const q = Math.fround(xs[c] * inv);
        const code = e4m3FromBits(bitsOf(q));
        map[c] = code;
        const cnt = hist[c];
        if (cnt > 0) {
          if (Math.abs(q) > FP8_MAX && Number.isFinite(xs[c])) st.saturated += cnt;
          addPair(st, xs[c], E4M3_TABLE[code] * sf, cnt);
        }
      }
      for (let r = r0; r < r1; r++) {
        const o = r * cols;
        for (let c = c0; c < c1; c++) out[o + c] = map[data[o + c]];
      }
    }
  }
  // F32 powers of two as stored, or their E8M0 bytes (the quantization layer checks they are powers of two).
  const sc8 = t.scaleDtype === "F32" ? new Uint8Array(sfs.buffer) : ue8m0BytesOfF32(sfs);
  return { data: out, scale: sc8, stats: st };
}

/** The fast path for `spec`, or null when none applies. */
export function convertBandFast(
  spec: BandSpec,
  data: Uint8Array,
  scale: Uint8Array | null,
): EncodedBand | null {
  const { source: s, target: t } = spec;
  const e4m3Block = s.kind === "block" && s.element === "float8_e4m3fn" && !s.packed && scale !== null;
  if (e4m3Block && t.kind === "plain") return dequantE4m3(spec, data, scale!, t.dtype);
  if (
    e4m3Block &&
    t.kind === "fp8-block" &&
    s.kind === "block" &&
    s.block[0] === t.block[0] &&
    s.block[1] === t.block[1]
  ) {
    return requantE4m3(spec, data, scale!);
  }
  if (s.kind === "plain" && s.dtype === "BF16" && t.kind === "fp8-block" && t.scaleFmt === "ue8m0") {
    return quantBf16Ue8m0(spec, data, t.scaleDtype === "F8_E8M0");
  }
  return null;
}
