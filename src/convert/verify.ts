/**
 * `--verify`: re-read the finished output and compare every tensor with the input. Copied tensors
 * must be byte-identical; converted ones are decoded from the output file (with the layout's own
 * decoding, not the conversion kernel) and compared with the input values: the error statistics
 * must match what the conversion reported, and a conversion to F32 must be exact.
 */
import { openCheckpoint } from "../safetensors/node.js";
import { bandsOf } from "./bands.js";
import { InputFiles } from "./files-node.js";
import type { TensorReport } from "./journal.js";
import { accumulate, decodeBand, emptyStats, summarize, targetAsSource } from "./kernels.js";
import type { ConvertPlan, InputTensor } from "./plan.js";

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

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b)) + 1e-300;

export async function verifyOutput(
  inputDir: string,
  inputTensors: readonly (InputTensor & { fileOffsets: [number, number] })[],
  outDir: string,
  plan: ConvertPlan,
  reports: readonly TensorReport[],
): Promise<VerifyResult> {
  const res: VerifyResult = { tensors: 0, identical: 0, withinError: 0, mismatches: [], maxRelFrob: 0 };
  const inByName = new Map(inputTensors.map((t) => [t.name, t]));
  const repByName = new Map(reports.map((r) => [r.name, r]));
  const ck = await openCheckpoint(outDir);
  const outT = new Map(ck.tensors.map((t) => [t.name, t]));
  await ck.close();
  const inFiles = new InputFiles(inputDir);
  const outFiles = new InputFiles(outDir);
  try {
    for (const op of plan.ops) {
      res.tensors++;
      const it = inByName.get(op.input.data)!;
      const ot = outT.get(op.output.data.name);
      if (!ot || ot.dtype !== op.output.data.dtype || ot.byteLength !== op.output.data.byteLength) {
        res.mismatches.push({
          tensor: op.output.data.name,
          reason: "missing or wrong dtype/shape in the output",
        });
        continue;
      }
      if (op.action === "copy") {
        let same = true;
        for (let off = 0; off < it.byteLength && same; off += 8 << 20) {
          const len = Math.min(8 << 20, it.byteLength - off);
          const a = await inFiles.read(it.shard, it.fileOffsets[0] + off, len);
          const b = await outFiles.read(ot.shard, ot.fileOffsets[0] + off, len);
          same = Buffer.compare(a, b) === 0;
        }
        if (same) res.identical++;
        else
          res.mismatches.push({
            tensor: op.output.data.name,
            reason: "copied tensor differs from the input",
          });
        continue;
      }
      const st = emptyStats();
      const { cols, bands } = bandsOf(op);
      const outSource = targetAsSource(op.target!);
      const inScale = op.input.scale ? inByName.get(op.input.scale)! : null;
      const outScale = op.output.scale ? outT.get(op.output.scale.name)! : null;
      for (const band of bands) {
        const d = await inFiles.read(it.shard, it.fileOffsets[0] + band.inData[0], band.inData[1]);
        const s =
          band.inScale && inScale
            ? await inFiles.read(inScale.shard, inScale.fileOffsets[0] + band.inScale[0], band.inScale[1])
            : null;
        const x = decodeBand(op.source!, d, s, band.rows, cols);
        const od = await outFiles.read(
          ot.shard,
          ot.fileOffsets[0] + band.outData,
          (op.output.data.byteLength * band.rows * cols) / op.shape.reduce((a, b) => a * b, 1),
        );
        let os: Uint8Array | null = null;
        if (outScale && band.outScale !== null) {
          const [br] = outSource.kind === "block" ? outSource.block : [1];
          const perRow =
            op.output.scale!.byteLength /
            (op.output.scale!.shape.slice(0, -1).reduce((a, b) => a * b, 1) || 1);
          os = await outFiles.read(
            outScale.shard,
            outScale.fileOffsets[0] + band.outScale,
            Math.ceil(band.rows / br) * perRow,
          );
        }
        const y = decodeBand(outSource, od, os, band.rows, cols);
        for (let i = 0; i < x.length; i++) accumulate(st, x[i], y[i]);
      }
      const rep = repByName.get(op.input.data)?.stats;
      const { relFrob } = summarize(st);
      res.maxRelFrob = Math.max(res.maxRelFrob, relFrob);
      const exact = op.target!.kind === "plain" && op.target!.dtype === "F32";
      if (exact && st.ee !== 0) {
        res.mismatches.push({ tensor: op.output.data.name, reason: "conversion to F32 is not exact" });
      } else if (rep && !(close(rep.ee, st.ee) && close(rep.xx, st.xx) && rep.count === st.count)) {
        res.mismatches.push({
          tensor: op.output.data.name,
          reason: `error ${relFrob.toExponential(3)} differs from the reported ${summarize(rep).relFrob.toExponential(3)}`,
        });
      } else res.withinError++;
    }
  } finally {
    await inFiles.close();
    await outFiles.close();
  }
  return res;
}
