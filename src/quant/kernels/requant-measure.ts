/**
 * The error UE8M0 requantization adds to block-FP8 E4M3 weights, measured from code histograms
 * without writing any codes: what vLLM's `requant_weight_ue8m0_inplace` and SGLang do at load on
 * Blackwell (dequantize, then DeepGEMM `per_block_cast_to_fp8(use_ue8m0=True)`). Pure and
 * synchronous, so it runs the same in the main thread and in a worker.
 */
import { type ErrorStats, emptyStats } from "../error-stats.js";
import { bandHistograms } from "./code-histogram.js";
import { WasmHistogram } from "./code-histogram-wasm.js";
import { E4m3Requantizer } from "./requant-block.js";

/** Requantizes blocks to UE8M0 scales and adds their error, block count and changed-scale count. */
export class BlockRequantizer {
  private readonly core = new E4m3Requantizer("ue8m0");

  /** Adds the error of one block (code histogram `hist[at .. at+256)`, stored scale `s`) to `out`. */
  block(hist: Uint32Array, at: number, s: number, out: ErrorStats): void {
    const before = out.count + out.nonfinite;
    const sf = this.core.requantize(hist, at, s, out, null);
    if (out.count + out.nonfinite === before) return; // an empty block
    out.blocks++;
    if (sf !== Math.fround(s)) out.changedBlocks++;
  }
}

/** One block-FP8 tensor to measure: E4M3 codes, decoded float32 scales, logical shape and block. */
export interface TensorJob {
  codes: Uint8Array;
  scales: Float32Array;
  shape: number[];
  block: [number, number];
  /** Also return the 256-bin code histogram of the whole tensor. */
  wantCodes: boolean;
}

export interface TensorJobResult {
  sums: ErrorStats;
  codes: Float64Array | null;
}

/**
 * The UE8M0 requantization error of every block of a tensor (per matrix for stacked experts), one
 * band of block rows at a time: code histograms per block (WebAssembly when available, `kernel:
 * "js"` forces the TypeScript reference), then `BlockRequantizer` per block.
 */
export function measureTensor(job: TensorJob, kernel: "auto" | "js" = "auto"): TensorJobResult {
  const { codes, scales, shape } = job;
  const [br, bc] = job.block;
  const rows = shape[shape.length - 2];
  const cols = shape[shape.length - 1];
  const mats = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const gr = Math.ceil(rows / br);
  const gc = Math.ceil(cols / bc);
  const req = new BlockRequantizer();
  const sums = emptyStats();
  const jsHist = new Uint32Array(gc * 256);
  const all = job.wantCodes ? new Float64Array(256) : null;
  const w = kernel === "auto" && (cols & 3) === 0 && (bc & 3) === 0 ? WasmHistogram.shared() : null;
  for (let m = 0; m < mats; m++) {
    for (let bi = 0; bi < gr; bi++) {
      const r0 = bi * br;
      const r1 = Math.min(rows, (bi + 1) * br);
      let hist: Uint32Array = jsHist;
      if (w) hist = w.band(codes, m * rows * cols, cols, r0, r1, bc);
      else {
        hist.fill(0);
        bandHistograms(codes, m * rows * cols, cols, r0, r1, bc, hist);
      }
      for (let bj = 0; bj < gc; bj++) req.block(hist, bj * 256, scales[(m * gr + bi) * gc + bj], sums);
      if (all) for (let i = 0; i < hist.length; i++) all[i & 255] += hist[i];
    }
  }
  return { sums, codes: all };
}
