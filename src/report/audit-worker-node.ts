// Worker thread of the audit pool: measures the tensors it is sent (see audit-pool-node.ts), either
// from bytes it is given or by reading the tensor's band of rows from its file straight into the
// histogram kernel's memory (no copy into a JavaScript buffer, no transfer between threads).
import { parentPort } from "node:worker_threads";
import { measureBands, measureTensor, type TensorJob } from "../quant/kernels/requant-measure.js";
import { SyncFileReader } from "../safetensors/source-node.js";
import type { FileTensorJob } from "./audit-kernel.js";

function measureFile(job: FileTensorJob) {
  const reader = new SyncFileReader(job.path, job.file);
  try {
    return measureBands(job, (dst, at) => {
      if (at + dst.length > job.byteLength) throw new RangeError(`band past the end of tensor ${job.tensor}`);
      reader.readInto(job.offset + at, dst);
    });
  } finally {
    reader.close();
  }
}

parentPort?.on("message", (m: { id: number; job?: TensorJob; fileJob?: FileTensorJob }) => {
  try {
    const r = m.fileJob ? measureFile(m.fileJob) : measureTensor(m.job!);
    parentPort?.postMessage({ id: m.id, r }, r.codes ? [r.codes.buffer as ArrayBuffer] : []);
  } catch (e) {
    const err = e as { name?: string; code?: string; message?: string };
    const tensor = m.fileJob ? ` (tensor ${m.fileJob.tensor})` : "";
    parentPort?.postMessage({
      id: m.id,
      error: { name: err?.name, code: err?.code, message: `${err?.message ?? String(e)}${tensor}` },
    });
  }
});
