// Worker thread of the audit pool: measures the tensors it is sent (see audit-pool-node.ts).
import { parentPort } from "node:worker_threads";
import { measureTensor, type TensorJob } from "../quant/kernels/requant-measure.js";

parentPort?.on("message", (m: { id: number; job: TensorJob }) => {
  const r = measureTensor(m.job);
  parentPort?.postMessage({ id: m.id, r }, r.codes ? [r.codes.buffer as ArrayBuffer] : []);
});
