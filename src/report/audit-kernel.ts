import { measureTensor, type TensorJob, type TensorJobResult } from "../quant/kernels/requant-measure.js";

/** Measures a tensor somewhere (in this thread, or in a worker): see `measureTensor`. */
export type AuditKernel = (job: TensorJob) => Promise<TensorJobResult>;

/** The in-thread kernel. */
export const inThreadKernel: AuditKernel = async (job) => measureTensor(job);
