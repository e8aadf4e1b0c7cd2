import { addSums, BlockRequantizer, bandHistograms, emptySums, type RequantSums } from "./block-requant.js";
import { WasmHistogram } from "./histogram-wasm.js";

let wasm: WasmHistogram | null | undefined;

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
  sums: RequantSums;
  codes: Float64Array | null;
}

/** Measures a tensor somewhere (in this thread, or in a worker): see `measureTensor`. */
export type AuditKernel = (job: TensorJob) => Promise<TensorJobResult>;

/**
 * The UE8M0 requantization error of every block of a tensor, one band of block rows at a time:
 * code histograms per block (`bandHistograms`), then `BlockRequantizer` per block. Pure and
 * synchronous, so it runs the same in the main thread and in a worker.
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
  const sums = emptySums();
  const jsHist = new Uint32Array(gc * 256);
  const all = job.wantCodes ? new Float64Array(256) : null;
  if (wasm === undefined) wasm = WasmHistogram.create();
  const w = kernel === "auto" && (cols & 3) === 0 && (bc & 3) === 0 ? wasm : null;
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

/** The in-thread kernel. */
export const inThreadKernel: AuditKernel = async (job) => measureTensor(job);

export { addSums };
