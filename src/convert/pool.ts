/**
 * A small pool of worker threads running `convertBand` (worker.ts compiled to JS), or in-process
 * when `workers` is 0 or the compiled worker is not there (under vitest/tsx the sources are .ts).
 * Band bytes move with transfer lists, never structured-clone copies.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { BufferList } from "../quant/kernels/buffers.js";
import { convertBand } from "../quant/kernels/convert-band.js";
import type { EncodedBand } from "../quant/kernels/encode-band.js";
import type { BandSpec } from "../quant/kernels/types.js";
import { ConvertError } from "./errors.js";

/** A worker's answer: the converted band, or its error; the input buffer comes back for reuse. */
type Reply = { id: number; error?: string; input?: ArrayBuffer } & EncodedBand;

interface Pending {
  resolve: (r: EncodedBand) => void;
  reject: (e: Error) => void;
}

export class BandPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: { id: number; msg: unknown; transfer: ArrayBuffer[] }[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Output buffers the caller is done with, sent back to workers with the next jobs. */
  private readonly spares = new BufferList(8);
  /** Input buffers returned by workers, reused for reads. */
  private readonly inputs = new BufferList(8);
  /** Why the pool runs in-process, or null when it uses threads. */
  readonly inProcessReason: string | null;

  constructor(count: number) {
    const url = new URL("./worker.js", import.meta.url);
    let reason: string | null = null;
    if (count <= 0) reason = "--workers 0";
    else if (url.protocol !== "file:" || !existsSync(fileURLToPath(url)))
      reason = "compiled worker.js not found";
    this.inProcessReason = reason;
    if (reason !== null) return;
    for (let i = 0; i < count; i++) {
      const w = new Worker(url);
      w.on("message", (m: Reply) => this.onMessage(w, m));
      w.on("error", (e) => this.failAll(e));
      w.unref();
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** Convert one band (the input buffers are transferred when the pool uses threads). */
  async run(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): Promise<EncodedBand> {
    if (this.workers.length === 0) return convertBand(spec, data, scale);
    const id = this.nextId++;
    const transfer = [data.buffer as ArrayBuffer];
    if (scale && scale.buffer !== data.buffer) transfer.push(scale.buffer as ArrayBuffer);
    const spare = this.spares.drain(2);
    transfer.push(...spare);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.queue.push({ id, msg: { id, spec, data, scale, spare }, transfer });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      w.ref();
      w.postMessage(job.msg, job.transfer);
    }
  }

  /** A buffer for reading `bytes` of input (recycled from earlier bands when possible). */
  inputBuffer(bytes: number): Uint8Array {
    if (this.workers.length === 0) return new Uint8Array(bytes);
    return new Uint8Array(this.inputs.take(bytes), 0, bytes);
  }

  /** Hand back an input buffer the caller read into and no longer needs. */
  recycleInput(a: Uint8Array): void {
    if (this.workers.length === 0 || a.byteOffset !== 0) return;
    this.inputs.give(a.buffer as ArrayBuffer);
  }

  /** Hand back an output array once it has been written (its buffer is reused by a worker). */
  recycle(a: Uint8Array | null): void {
    if (this.workers.length === 0 || a === null || a.byteOffset !== 0) return;
    this.spares.give(a.buffer as ArrayBuffer);
  }

  private onMessage(w: Worker, m: Reply): void {
    if (m.input) this.inputs.give(m.input);
    const p = this.pending.get(m.id);
    this.pending.delete(m.id);
    w.unref();
    this.idle.push(w);
    this.pump();
    if (!p) return;
    if (m.error !== undefined)
      p.reject(new ConvertError("worker-failed", `conversion worker failed: ${m.error}`));
    else p.resolve({ data: m.data, scale: m.scale, stats: m.stats });
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values())
      p.reject(new ConvertError("worker-failed", `conversion worker crashed: ${e.message}`, { cause: e }));
    this.pending.clear();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    this.idle.length = 0;
  }
}
