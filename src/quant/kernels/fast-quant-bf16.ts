/**
 * Fast path: BF16 -> block FP8 with UE8M0 (power-of-two) scales, bit-identical to
 * decode-then-encode. The scale is 2^-k, so `x * (1/sf)` only shifts the exponent and the E4M3
 * code is a lookup of the shifted BF16 bits in a 65536-entry table.
 */
import { amaxFromBits, bandAmaxBits, inputView } from "../block-amax.js";
import { valuesOf } from "../element-codes.js";
import { type ErrorStats, emptyStats } from "../error-stats.js";
import { pow2CodeTable } from "../fast-tables.js";
import { f32Bits } from "../float32.js";
import { outBytes } from "./buffers.js";
import type { EncodedBand } from "./encode-band.js";
import { E4M3_MAX, E4M3_VALUES } from "./tables.js";
import { fp8BlockScale, fp8BlockScaleBytes } from "./target-scales.js";
import type { BandSpec } from "./types.js";

/** Whether `quantBf16Band` converts `spec`. */
export function quantBf16Applies(spec: BandSpec): boolean {
  const { source: s, target: t } = spec;
  return (
    s.kind === "plain" && s.dtype === "BF16" && t.kind === "fp8-block" && t.scaleFmt === "ue8m0" && !spec.via
  );
}

/** BF16 bits of the largest E4M3 magnitude: shifted magnitudes above it saturate. */
const BF16_E4M3_MAX = f32Bits(E4M3_MAX) >>> 16;

/**
 * One block of `quantBf16Band` (a function of its own so V8 optimizes it as a whole instead of
 * on-stack-replacing the inner loop). With the block's power-of-two scale 2^-k fixed, both the
 * E4M3 code and the error of an element depend only on its BF16 code, so the element loop only
 * encodes and counts codes (`hist`, with the codes seen listed in `seen`); the error statistics
 * are then summed once per distinct code, weighted by its count, into `st`.
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
  st: ErrorStats,
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
  const E = E4M3_VALUES;
  let xx = 0;
  let ee = 0;
  let xy = 0;
  let yy = 0;
  let maxErr = st.maxAbsErr;
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
      if ((sh & 0x7fff) > BF16_E4M3_MAX) sat += n;
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
  st.count += cnt;
  st.xx += xx;
  st.ee += ee;
  st.xy += xy;
  st.yy += yy;
  st.maxAbsErr = maxErr;
  st.saturated += sat;
  st.flushed += flushed;
  st.nonfinite += nonfinite;
}

export function quantBf16Band(spec: BandSpec, data: Uint8Array): EncodedBand {
  const t = spec.target as Extract<BandSpec["target"], { kind: "fp8-block" }>;
  const { rows, cols } = spec;
  const [br, bc] = t.block;
  const sr = Math.ceil(rows / br);
  const sc = Math.ceil(cols / bc);
  const n = rows * cols;
  const b = data.byteOffset % 2 === 0 ? data : data.slice();
  const h = new Uint16Array(b.buffer, b.byteOffset, n);
  // The E4M3 code of every BF16 pattern at scale 2^0 (the quantizer's own table: RNE, saturating).
  const T = pow2CodeTable("bfloat16", "float8_e4m3fn", 0, E4M3_MAX, "rne", true);
  const BF = valuesOf("bfloat16");
  const out = outBytes(n);
  const sfs = new Float32Array(sr * sc);
  const st = emptyStats();
  const hist = new Int32Array(65536);
  const seen = new Uint16Array(65536);
  const view = inputView({ dtype: "bfloat16", codes: h }, [rows, cols]);
  const amaxBits = new Uint32Array(sc);
  for (let bi = 0; bi < sr; bi++) {
    const r0 = bi * br;
    const r1 = Math.min(rows, r0 + br);
    bandAmaxBits(view, cols, r0, r1, bc, amaxBits);
    for (let bj = 0; bj < sc; bj++) {
      const sf = fp8BlockScale("ue8m0", amaxFromBits(view, amaxBits[bj]));
      sfs[bi * sc + bj] = sf;
      const k = 127 - ((f32Bits(sf) >>> 23) & 0xff); // x * (1/sf) = x * 2^k
      quantBlockBf16(
        h,
        out,
        cols,
        r0,
        r1,
        bj * bc,
        Math.min(cols, (bj + 1) * bc),
        k,
        sf,
        T,
        BF,
        st,
        hist,
        seen,
      );
    }
  }
  // F32 powers of two as stored, or their E8M0 bytes (the quantization layer checks they are powers of two).
  const scale = fp8BlockScaleBytes(t, sfs);
  return { data: out, scale, stats: st };
}
