/**
 * `--verify`: re-read the finished output and compare every tensor with the input. Copied tensors
 * must be byte-identical; converted ones are decoded from the output file (with the layout's own
 * decoding, not the conversion kernel) and compared with the input values: the error statistics
 * must match what the conversion reported, and a conversion to F32 must be exact.
 */
import {
  addPairs,
  type ErrorStats,
  emptyStats,
  summarizeErrorStats as summarize,
} from "../quant/error-stats.js";
import { decodeBand } from "../quant/kernels/decode-band.js";
import { targetAsSource } from "../quant/kernels/types.js";
import type { Checkpoint } from "../safetensors/index.js";
import { bandsOf, readBandValues } from "./bands.js";
import type { TensorReport } from "./journal.js";
import type { TensorOp } from "./plan.js";
import { readTensorScale, reciprocalF32 } from "./tensor-scale.js";

export interface VerifyResult {
  tensors: number;
  /** Tensors copied and found byte-identical. */
  identical: number;
  /** Converted tensors whose decoded values match the reported error. */
  withinError: number;
  mismatches: { tensor: string; reason: string }[];
  /** Largest relative Frobenius error over converted tensors. */
  maxRelFrob: number;
}

/** Bytes compared per read of a copied tensor. */
const COMPARE_CHUNK = 8 << 20;

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b)) + 1e-300;
const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
/** 9 significant digits: enough to tell apart two sums that `close` finds different. */
const sig = (v: number) => v.toExponential(8);

/**
 * The fields of the measured statistics `st` that differ from the reported `rep`, each with both
 * values ("ee 1.23456789e-5 measured, 1.23456780e-5 reported"); empty when they agree. The sums
 * must agree to 1e-9 (they are added in another order), the counts exactly.
 */
function statsDiffer(st: ErrorStats, rep: ErrorStats): string[] {
  const out: string[] = [];
  for (const k of ["count", "nonfinite"] as const)
    if (st[k] !== rep[k]) out.push(`${k} ${st[k]} measured, ${rep[k]} reported`);
  for (const k of ["xx", "ee"] as const)
    if (!close(st[k], rep[k])) out.push(`${k} ${sig(st[k])} measured, ${sig(rep[k])} reported`);
  return out;
}

/** True when the copied tensor's bytes are the same in input and output. */
async function sameBytes(input: Checkpoint, output: Checkpoint, op: TensorOp): Promise<boolean> {
  const n = input.get(op.input.data).byteLength;
  for (let off = 0; off < n; off += COMPARE_CHUNK) {
    const len = Math.min(COMPARE_CHUNK, n - off);
    const a = await input.readRange(op.input.data, off, len);
    const b = await output.readRange(op.output.data.name, off, len);
    if (Buffer.compare(a, b) !== 0) return false;
  }
  return true;
}

/** Error statistics of a converted tensor: input decoded by its source codec, output by its target's. */
async function measureConverted(input: Checkpoint, output: Checkpoint, op: TensorOp): Promise<ErrorStats> {
  const st = emptyStats();
  const { cols, bands } = bandsOf(op);
  const outSource = targetAsSource(op.target!);
  const tensorScale = await readTensorScale(input, op);
  // NVFP4 outputs: their own per-tensor scalar, read back from the output (F32).
  const ts = op.output.tensorScale;
  const tsBytes = ts ? await output.readBytes(ts.name) : null;
  const outTensorScale = tsBytes
    ? new DataView(tsBytes.buffer, tsBytes.byteOffset, tsBytes.byteLength).getFloat32(0, true)
    : undefined;
  const outScale = op.output.scale;
  const outBytes = (rows: number) => (op.output.data.byteLength * rows * cols) / product(op.shape);
  const [br] = outSource.kind === "block" ? outSource.block : [1];
  const scaleRowBytes = outScale ? outScale.byteLength / (product(outScale.shape.slice(0, -1)) || 1) : 0;
  for (const band of bands) {
    const x = await readBandValues(input, op, band, cols, tensorScale);
    const od = await output.readRange(op.output.data.name, band.outData, outBytes(band.rows));
    const os =
      outScale && band.outScale !== null
        ? await output.readRange(outScale.name, band.outScale, Math.ceil(band.rows / br) * scaleRowBytes)
        : null;
    const y = decodeBand(outSource, od, os, band.rows, cols, outTensorScale);
    if (op.transposeInput) {
      // The input holds the band's matrix transposed (`TensorOp.transposeInput`).
      const rows = band.rows;
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) addPairs(st, x[c * rows + r], y[r * cols + c], 1);
    } else if (op.transpose) {
      // The output holds the band's matrix transposed (`TensorOp.transpose`).
      const rows = band.rows;
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) addPairs(st, x[r * cols + c], y[c * rows + r], 1);
    } else for (let i = 0; i < x.length; i++) addPairs(st, x[i], y[i], 1);
  }
  return st;
}

/**
 * Compare the tensors of `ops` in the written (not yet finalized) `output` with `input` (see the
 * file header); `reports` are the statistics the conversion recorded. Neither checkpoint is closed.
 */
export async function verifyOutput(
  input: Checkpoint,
  output: Checkpoint,
  ops: readonly TensorOp[],
  reports: readonly TensorReport[],
): Promise<VerifyResult> {
  const res: VerifyResult = { tensors: 0, identical: 0, withinError: 0, mismatches: [], maxRelFrob: 0 };
  const repByName = new Map(reports.map((r) => [r.name, r]));
  for (const op of ops) {
    res.tensors++;
    const tensor = op.output.data.name;
    const ot = output.has(tensor) ? output.get(tensor) : null;
    if (!ot || ot.dtype !== op.output.data.dtype || ot.byteLength !== op.output.data.byteLength) {
      res.mismatches.push({ tensor, reason: "missing or wrong dtype/shape in the output" });
    } else if (op.action === "copy" && op.reciprocal) {
      const want = reciprocalF32(await input.readBytes(op.input.data));
      const have = await output.readBytes(tensor);
      if (Buffer.compare(want, have) === 0) res.identical++;
      else
        res.mismatches.push({
          tensor,
          reason: "activation scale is not the float32 reciprocal of the input's",
        });
    } else if (op.action === "copy") {
      if (await sameBytes(input, output, op)) res.identical++;
      else res.mismatches.push({ tensor, reason: "copied tensor differs from the input" });
    } else {
      const st = await measureConverted(input, output, op);
      const rep = repByName.get(op.input.data)?.stats;
      const { relFrob } = summarize(st);
      res.maxRelFrob = Math.max(res.maxRelFrob, relFrob);
      // Conversions to F32 and lossless relabels must give back every value exactly.
      const exact =
        (op.target!.kind === "plain" && op.target!.dtype === "F32") || op.note === "relabel (lossless)";
      const differs = rep ? statsDiffer(st, rep) : [];
      if (exact && st.ee !== 0) {
        res.mismatches.push({
          tensor,
          reason: `${op.action === "relabel" ? "relabel" : "conversion to F32"} is not exact: sum of squared errors ${sig(st.ee)}, max |error| ${sig(st.maxAbsErr)}`,
        });
      } else if (differs.length > 0) {
        res.mismatches.push({
          tensor,
          reason: `the output's error differs from the reported one: relFrob ${sig(relFrob)} measured, ${sig(summarize(rep!).relFrob)} reported; ${differs.join("; ")}`,
        });
      } else res.withinError++;
    }
  }
  return res;
}
