import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { TensorJob, TensorJobResult } from "../quant/kernels/requant-measure.js";
import { SafetensorsError, type SafetensorsErrorCode } from "../safetensors/errors.js";
import type { AuditFileKernel, AuditKernel, FileTensorJob } from "./audit-kernel.js";

/**
 * A pool of worker threads running `measureTensor`, and how many tensors to keep in flight.
 * `fileKernel` has a worker read a local tensor itself (what `auditCheckpoint` uses for local
 * files); `kernel` takes bytes already read.
 */
export interface AuditPool {
  kernel: AuditKernel;
  fileKernel: AuditFileKernel;
  concurrency: number;
  close(): Promise<void>;
}

/**
 * Default worker count: one per core, at most 8. The workers read their tensors themselves, so the
 * main thread only hands out tensors and reads the small scale tensors.
 */
export function defaultAuditThreads(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

/** A worker's error as the main thread throws it: the same class and code for read failures. */
function rethrown(e: { name?: string; code?: string; message?: string }): Error {
  const message = e.message ?? "audit worker failed";
  if (e.name === "SafetensorsError" && e.code)
    return new SafetensorsError(e.code as SafetensorsErrorCode, message);
  return new Error(`audit worker failed: ${message}`);
}

/**
 * Starts `threads` workers. Tensor bytes are moved to a worker (transferred, not copied) when they
 * own their whole buffer. From source (`.ts`, under tsx or vitest) the workers load the TypeScript
 * worker through tsx; from the build they load the compiled `.js`.
 */
export function createAuditPool(threads = defaultAuditThreads()): AuditPool {
  const fromSource = import.meta.url.endsWith(".ts");
  const url = new URL(fromSource ? "./audit-worker-node.ts" : "./audit-worker-node.js", import.meta.url);
  // From source, a worker registers tsx's loader before importing the TypeScript worker module.
  const boot = `import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  const workers = Array.from({ length: threads }, () =>
    fromSource ? new Worker(boot, { eval: true }) : new Worker(url),
  );
  const idle = [...workers];
  const waiting: ((w: Worker) => void)[] = [];
  let next = 0;
  const pending = new Map<number, { resolve: (r: TensorJobResult) => void; reject: (e: unknown) => void }>();
  for (const w of workers) {
    w.on("message", (m: { id: number; r?: TensorJobResult; error?: { name?: string; code?: string } }) => {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p?.reject(rethrown(m.error));
      else p?.resolve(m.r!);
      const take = waiting.shift();
      if (take) take(w);
      else idle.push(w);
    });
    w.on("error", (e) => {
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    });
  }
  const acquire = () =>
    new Promise<Worker>((resolve) => {
      const w = idle.pop();
      if (w) resolve(w);
      else waiting.push(resolve);
    });
  const owns = (a: Uint8Array | Float32Array) => a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
  const post = async (message: object, transfer: ArrayBuffer[]) => {
    const w = await acquire();
    const id = next++;
    return new Promise<TensorJobResult>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      w.postMessage({ id, ...message }, transfer);
    });
  };
  const kernel: AuditKernel = (job: TensorJob) => {
    const codes = owns(job.codes) ? job.codes : job.codes.slice();
    const scales = owns(job.scales) ? job.scales : job.scales.slice();
    return post({ job: { ...job, codes, scales } }, [
      codes.buffer as ArrayBuffer,
      scales.buffer as ArrayBuffer,
    ]);
  };
  const fileKernel: AuditFileKernel = (job: FileTensorJob) => {
    const scales = owns(job.scales) ? job.scales : job.scales.slice();
    return post({ fileJob: { ...job, scales } }, [scales.buffer as ArrayBuffer]);
  };
  return {
    kernel,
    fileKernel,
    concurrency: threads + 1,
    close: async () => void (await Promise.all(workers.map((w) => w.terminate()))),
  };
}
