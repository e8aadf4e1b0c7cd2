/**
 * Fast path: block E4M3 -> block FP8 with the same block (requantization, e.g. DeepSeek-V3 float
 * scales to V3.1 UE8M0 scales), bit-identical to decode-then-encode: per block a code histogram
 * (`bandHistograms`), a 256-entry code map from `E4m3Requantizer`, then one lookup per element
 * (in WebAssembly where the backend switch picks it, ./code-map-wasm.ts; the loop here is the
 * specification and the fallback).
 */
import { emptyStats } from "../error-stats.js";
import { outBytes } from "./buffers.js";
import { bandHistograms } from "./code-histogram.js";
import { WasmHistogram } from "./code-histogram-wasm.js";
import { codeMapWasm, mapRowsWasm } from "./code-map-wasm.js";
import { bandScales } from "./decode-band.js";
import type { EncodedBand } from "./encode-band.js";
import { E4m3Requantizer } from "./requant-block.js";
import { fp8BlockScaleBytes } from "./target-scales.js";
import type { BandSpec } from "./types.js";

/** Whether `requantBand` converts `spec`. */
export function requantApplies(spec: BandSpec, scale: Uint8Array | null): boolean {
  const { source: s, target: t } = spec;
  return (
    s.kind === "block" &&
    s.element === "float8_e4m3fn" &&
    !s.packed &&
    scale !== null &&
    t.kind === "fp8-block" &&
    (t.scaleDtype !== "BF16" || t.scaleFmt === "ue8m0") &&
    !spec.via &&
    s.block[0] === t.block[0] &&
    s.block[1] === t.block[1]
  );
}

const requantizers = {
  ue8m0: new E4m3Requantizer("ue8m0"),
  float: new E4m3Requantizer("float"),
} as const;

export function requantBand(spec: BandSpec, data: Uint8Array, scale: Uint8Array): EncodedBand {
  const src = spec.source as Extract<BandSpec["source"], { kind: "block" }>;
  const t = spec.target as Extract<BandSpec["target"], { kind: "fp8-block" }>;
  const { rows, cols } = spec;
  const [br, bc] = t.block;
  const sr = Math.ceil(rows / br);
  const sc = Math.ceil(cols / bc);
  const sIn = bandScales(src, scale, rows, cols, spec.tensorScale);
  const out = outBytes(rows * cols);
  const sfs = new Float32Array(sr * sc);
  const st = emptyStats();
  const hist = new Uint32Array(sc * 256);
  const map = new Uint8Array(256);
  const requantizer = requantizers[t.scaleFmt];
  // The lookup pass in WebAssembly (a map per block column, then one pass over the block row), or
  // the TypeScript loop below; the histograms, maps, scales and statistics are the same.
  const maps = codeMapWasm(rows * cols, Math.min(rows, br) * Math.min(cols, bc))
    ? new Uint8Array(sc * 256)
    : null;
  for (let bi = 0; bi < sr; bi++) {
    const r0 = bi * br;
    const r1 = Math.min(rows, r0 + br);
    // With the WebAssembly lookup pass, the histograms too (same counts as `bandHistograms`).
    const wh = maps && (cols & 3) === 0 && (bc & 3) === 0 ? WasmHistogram.shared() : null;
    if (wh) hist.set(wh.band(data, 0, cols, r0, r1, bc));
    else {
      hist.fill(0);
      bandHistograms(data, 0, cols, r0, r1, bc, hist);
    }
    if (maps) {
      for (let bj = 0; bj < sc; bj++) {
        const m = maps.subarray(bj * 256, bj * 256 + 256);
        sfs[bi * sc + bj] = requantizer.requantize(hist, bj * 256, sIn[bi * sc + bj], st, m);
      }
      mapRowsWasm(data, cols, r0, r1, bc, maps, out);
      continue;
    }
    for (let bj = 0; bj < sc; bj++) {
      const c0 = bj * bc;
      const c1 = Math.min(cols, c0 + bc);
      sfs[bi * sc + bj] = requantizer.requantize(hist, bj * 256, sIn[bi * sc + bj], st, map);
      for (let r = r0; r < r1; r++) {
        const o = r * cols;
        for (let c = c0; c < c1; c++) out[o + c] = map[data[o + c]];
      }
    }
  }
  // F32 as computed, or their E8M0 bytes (the quantization layer checks they are powers of two).
  const sc8 = fp8BlockScaleBytes(t, sfs);
  return { data: out, scale: sc8, stats: st };
}
