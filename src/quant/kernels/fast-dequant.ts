/**
 * Fast path: 8-bit quantized source (block or per-tensor scale) -> BF16/F16/F32, bit-identical to
 * decode-then-encode. Within a block the output depends only on the code, so each block gets a
 * 256-entry table `code -> output`, and the error statistics come from a code histogram. The
 * element loop (lookup, store, count) runs in WebAssembly where the backend switch picks it
 * (./code-map-wasm.ts); the loop here is the specification and the fallback.
 */
import { LITTLE_ENDIAN } from "../../formats/endian.js";
import { valuesOf } from "../element-codes.js";
import { addPairs, emptyStats } from "../error-stats.js";
import { f32Bits } from "../float32.js";
import { outBytes } from "./buffers.js";
import { codeMapWasm, dequantRowsWasm } from "./code-map-wasm.js";
import { bandScales, tensorScaleOf } from "./decode-band.js";
import type { EncodedBand } from "./encode-band.js";
import { bf16FromBits, F16_MAX, f16Of } from "./tables.js";
import type { BandSpec, PlainDtype } from "./types.js";

/** Whether `dequantBand` converts `spec`: unpacked 8-bit codes to a plain dtype. */
export function dequantApplies(spec: BandSpec, scale: Uint8Array | null): boolean {
  const s = spec.source;
  if (spec.target.kind !== "plain") return false;
  return s.kind === "tensor" || (s.kind === "block" && !s.packed && scale !== null);
}

export function dequantBand(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): EncodedBand {
  const src = spec.source;
  if (src.kind === "plain" || src.kind === "int-channel") throw new Error(`dequantBand: ${src.kind} source`);
  const dtype = (spec.target as { dtype: PlainDtype }).dtype;
  const overflow = spec.overflow ?? "saturate";
  const { rows, cols } = spec;
  // A per-tensor scale is one block covering the band.
  const [br, bc] = src.kind === "block" ? src.block : [Math.max(1, rows), Math.max(1, cols)];
  const sr = Math.ceil(rows / br);
  const sc = Math.ceil(cols / bc);
  const s =
    src.kind === "block"
      ? bandScales(src, scale!, rows, cols, spec.tensorScale)
      : Float32Array.of(tensorScaleOf(src, spec.tensorScale));
  const values = valuesOf(src.element);
  const n = rows * cols;
  const outU8 = outBytes(n * (dtype === "F32" ? 4 : 2));
  const out16 = dtype === "F32" ? null : new Uint16Array(outU8.buffer, 0, n);
  const out32 = dtype === "F32" ? new Float32Array(outU8.buffer, 0, n) : null;
  const out32w = new Uint32Array(outU8.buffer, 0, n >>> 1);
  const tbl16 = new Uint16Array(sc * 256);
  const tbl32 = new Float32Array(sc * 256);
  const hist = new Int32Array(sc * 256);
  const st = emptyStats();
  // The element loop in WebAssembly (same outputs and counts; its memory is little-endian, as the
  // tables must be), or the TypeScript loop below.
  const wasm = LITTLE_ENDIAN && codeMapWasm(n, Math.min(rows, br) * Math.min(cols, bc));
  for (let bi = 0; bi < sr; bi++) {
    for (let bj = 0; bj < sc; bj++) {
      const sv = s[bi * sc + bj];
      for (let c = 0; c < 256; c++) {
        const x = Number.isNaN(sv) ? Number.NaN : Math.fround(values[c] * sv); // as decodeBand
        tbl32[bj * 256 + c] = x;
        if (out16)
          tbl16[bj * 256 + c] = dtype === "BF16" ? bf16FromBits(f32Bits(x)) : f16Of(f32Bits(x), overflow);
      }
    }
    const r1 = Math.min(rows, (bi + 1) * br);
    if (wasm) dequantRowsWasm(data, cols, bi * br, r1, bc, out16 ? tbl16 : tbl32, outU8, hist);
    else {
      hist.fill(0);
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
    }
    const f16 = dtype === "F16" ? valuesOf("float16") : values;
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
      } else if (dtype === "F16") {
        y = f16[tbl16[k]];
        if (Math.abs(x) > F16_MAX && Number.isFinite(y)) st.saturated += cnt;
      }
      addPairs(st, x, y, cnt);
    }
  }
  return { data: outU8, scale: null, stats: st };
}
