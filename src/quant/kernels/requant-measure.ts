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

/** The shape of a block-FP8 tensor to measure, and its decoded float32 scales. */
export interface TensorShapeJob {
  scales: Float32Array;
  shape: number[];
  block: [number, number];
  /** Also return the 256-bin code histogram of the whole tensor. */
  wantCodes: boolean;
}

/** One block-FP8 tensor to measure: its E4M3 codes, decoded float32 scales, logical shape and block. */
export interface TensorJob extends TensorShapeJob {
  codes: Uint8Array;
}

export interface TensorJobResult {
  sums: ErrorStats;
  codes: Float64Array | null;
}

/**
 * Puts the tensor's codes `[at, at + dst.length)` (byte offsets into the tensor) into `dst`: a copy
 * from memory, or a read from a file straight into the histogram kernel's memory.
 */
export type FillCodes = (dst: Uint8Array, at: number) => void;

/**
 * The UE8M0 requantization error of every block of a tensor (per matrix for stacked experts), one
 * band of block rows at a time: code histograms per block (WebAssembly when available, `kernel:
 * "js"` forces the TypeScript reference), then `BlockRequantizer` per block.
 */
export function measureTensor(job: TensorJob, kernel: "auto" | "js" = "auto"): TensorJobResult {
  const { codes } = job;
  return measureBands(job, (dst, at) => dst.set(codes.subarray(at, at + dst.length)), kernel, codes);
}

/**
 * `measureTensor` with the codes delivered band by band by `fill` (one block row of one matrix at a
 * time, in order), so a worker can read a file straight into the kernel's memory. `codes`, when the
 * whole tensor is in memory, spares the TypeScript kernel a copy.
 */
export function measureBands(
  job: TensorShapeJob,
  fill: FillCodes,
  kernel: "auto" | "js" = "auto",
  codes: Uint8Array | null = null,
): TensorJobResult {
  const { scales, shape } = job;
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
  let band: Uint8Array | null = null;
  for (let m = 0; m < mats; m++) {
    for (let bi = 0; bi < gr; bi++) {
      const r0 = bi * br;
      const r1 = Math.min(rows, (bi + 1) * br);
      const at = (m * rows + r0) * cols;
      const n = (r1 - r0) * cols;
      let hist: Uint32Array = jsHist;
      if (w) {
        fill(w.target(n, cols, bc), at);
        hist = w.run(r1 - r0, cols, bc);
      } else {
        hist.fill(0);
        if (codes) bandHistograms(codes, at, cols, 0, r1 - r0, bc, hist);
        else {
          if (band === null || band.length < n) band = new Uint8Array(br * cols);
          fill(band.subarray(0, n), at);
          bandHistograms(band, 0, cols, 0, r1 - r0, bc, hist);
        }
      }
      for (let bj = 0; bj < gc; bj++) req.block(hist, bj * 256, scales[(m * gr + bi) * gc + bj], sums);
      if (all) for (let i = 0; i < hist.length; i++) all[i & 255] += hist[i];
    }
  }
  return { sums, codes: all };
}
