import {
  measureTensor,
  type TensorJob,
  type TensorJobResult,
  type TensorShapeJob,
} from "../quant/kernels/requant-measure.js";

/** Measures a tensor somewhere (in this thread, or in a worker): see `measureTensor`. */
export type AuditKernel = (job: TensorJob) => Promise<TensorJobResult>;

/** A tensor whose codes the kernel reads itself, from a local shard file. */
export interface FileTensorJob extends TensorShapeJob {
  /** The shard's path on this machine, its file name (for messages), and the tensor's name. */
  path: string;
  file: string;
  tensor: string;
  /** The tensor's absolute offset in the file and its size in bytes. */
  offset: number;
  byteLength: number;
}

/** Measures a tensor read from its file by whoever measures it (a worker reads straight into its kernel). */
export type AuditFileKernel = (job: FileTensorJob) => Promise<TensorJobResult>;

/** The in-thread kernel. */
export const inThreadKernel: AuditKernel = async (job) => measureTensor(job);
