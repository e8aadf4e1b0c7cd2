/**
 * A small pool of worker threads running `convertBand` (worker.ts compiled to JS), or in-process
 * when `workers` is 0 or the compiled worker is not there (under vitest/tsx the sources are .ts).
 *
 * Band bytes live in shared memory: the main thread reads each band's input into a slot (a
 * `SharedArrayBuffer`) and the worker writes its output into another; a job names its slots by
 * number, and each slot's memory is sent to a worker once, the first time that worker uses it. No
 * band buffer is copied, transferred or freshly allocated once the slots exist. Transferring
 * buffers back and forth (the earlier design) made every band new external memory for V8, which
 * answered with a full garbage collection about every 30 MB moved: 176 of them, 1.8 s of main-thread
 * pauses, in one FP8->BF16 run of 1.8 GB (docs/CONVERT.md). A band whose output does not fit its
 * slot, or that a kernel writes elsewhere, comes back transferred as before.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { BufferList, setBufferSource } from "../quant/kernels/buffers.js";
import { convertBand } from "../quant/kernels/convert-band.js";
import type { EncodedBand } from "../quant/kernels/encode-band.js";
import type { BandSpec } from "../quant/kernels/types.js";
import { ConvertError } from "./errors.js";

/** A job for a worker: input and output slots by number, with the memory of slots it has not seen. */
export interface PoolRequest {
  id: number;
  spec: BandSpec;
  /** The input: a slot and its length, or bytes transferred with the message. */
  input: { slot: number; length: number } | { data: Uint8Array };
  scale: Uint8Array | null;
  /** The slot the output should be written to, and its size. */
  out: { slot: number; size: number };
  /** Slots this worker has not been sent yet. */
  slots: [number, SharedArrayBuffer][];
}

/** A worker's answer: the output in its slot (offset, length) or transferred, or the error. */
export type PoolReply = {
  id: number;
  error?: string;
  out?: { offset: number; length: number };
  data?: Uint8Array;
  scale?: Uint8Array | null;
  aux?: Uint8Array | null;
  stats?: EncodedBand["stats"];
};

interface Pending {
  resolve: (r: EncodedBand) => void;
  reject: (e: Error) => void;
  inSlot: number;
  outSlot: number;
}

/** Slot sizes are whole MiB, so a slot serves later bands of similar size. */
const SLOT_GRAIN = 1 << 20;

/**
 * Shared-memory slots: `take(bytes)` a free slot of at least `bytes` (at most 4x, so a small band does
 * not pin a large one), `give` it back. Slots are never freed while the pool lives; their number is
 * bounded by the bands in flight (reads ahead, in workers, and awaiting their write).
 */
class Slots {
  readonly mem: SharedArrayBuffer[] = [];
  private readonly free: number[] = [];
  private readonly ids = new Map<ArrayBufferLike, number>();

  take(bytes: number): number {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.mem[this.free[i]].byteLength;
      if (
        size >= bytes &&
        size <= 4 * Math.max(bytes, SLOT_GRAIN) &&
        (best < 0 || size < this.mem[this.free[best]].byteLength)
      )
        best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0];
    const sab = new SharedArrayBuffer(Math.max(SLOT_GRAIN, Math.ceil(bytes / SLOT_GRAIN) * SLOT_GRAIN));
    this.mem.push(sab);
    this.ids.set(sab, this.mem.length - 1);
    return this.mem.length - 1;
  }

  give(slot: number): void {
    if (slot >= 0) this.free.push(slot);
  }

  /** The slot whose memory `a` views, or -1. */
  of(a: Uint8Array): number {
    return this.ids.get(a.buffer) ?? -1;
  }
}

/** The most bytes a band's output can take: four per element (F32), plus room for small extras. */
const outputBound = (spec: BandSpec) => spec.rows * spec.cols * 4 + 4096;

export class BandPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: {
    id: number;
    spec: BandSpec;
    input: PoolRequest["input"];
    scale: Uint8Array | null;
    out: number;
  }[] = [];
  private readonly pending = new Map<number, Pending>();
  /** For each worker, the slots whose memory it has been sent. */
  private readonly known = new Map<Worker, Set<number>>();
  private nextId = 0;
  private readonly slots = new Slots();
  /** In-process: output arrays the caller is done with, reused by the kernels (`outBytes`). */
  private readonly spares = new BufferList(8);
  /** In-process: input buffers the caller is done with, reused for reads. */
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
    if (reason !== null) {
      // In-process, the kernels take their outputs from the arrays already written.
      setBufferSource((bytes) => this.spares.take(bytes));
      return;
    }
    for (let i = 0; i < count; i++) {
      const w = new Worker(url);
      w.on("message", (m: PoolReply) => this.onMessage(w, m));
      w.on("error", (e) => this.failAll(e));
      w.unref();
      this.workers.push(w);
      this.idle.push(w);
      this.known.set(w, new Set());
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Convert one band. With threads, `data` should come from `inputBuffer` (then it is not copied);
   * any other array is transferred (and unusable afterwards).
   */
  async run(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): Promise<EncodedBand> {
    if (this.workers.length === 0) {
      const r = convertBand(spec, data, scale);
      if (r.data.buffer !== data.buffer) this.recycleInput(data);
      return r;
    }
    const id = this.nextId++;
    const inSlot = data.byteOffset === 0 ? this.slots.of(data) : -1;
    const input: PoolRequest["input"] = inSlot >= 0 ? { slot: inSlot, length: data.length } : { data };
    const out = this.slots.take(outputBound(spec));
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, inSlot, outSlot: out });
      this.queue.push({ id, spec, input, scale, out });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      const known = this.known.get(w)!;
      const slots: [number, SharedArrayBuffer][] = [];
      for (const s of [job.out, "slot" in job.input ? job.input.slot : -1])
        if (s >= 0 && !known.has(s)) {
          known.add(s);
          slots.push([s, this.slots.mem[s]]);
        }
      const transfer: ArrayBuffer[] = [];
      if ("data" in job.input) transfer.push(job.input.data.buffer as ArrayBuffer);
      if (
        job.scale &&
        !(job.scale.buffer instanceof SharedArrayBuffer) &&
        !transfer.includes(job.scale.buffer as ArrayBuffer)
      )
        transfer.push(job.scale.buffer as ArrayBuffer);
      const msg: PoolRequest = {
        id: job.id,
        spec: job.spec,
        input: job.input,
        scale: job.scale,
        out: { slot: job.out, size: this.slots.mem[job.out].byteLength },
        slots,
      };
      w.ref();
      w.postMessage(msg, transfer);
    }
  }

  /** A buffer for reading `bytes` of input: a slot's memory with threads (reused once the band is done). */
  inputBuffer(bytes: number): Uint8Array {
    if (this.workers.length === 0) return new Uint8Array(this.inputs.take(bytes), 0, bytes);
    return new Uint8Array(this.slots.mem[this.slots.take(bytes)], 0, bytes);
  }

  /** Hand back an input buffer the caller read into and did not pass to `run`. */
  recycleInput(a: Uint8Array): void {
    if (a.byteOffset !== 0) return;
    if (this.workers.length === 0) this.inputs.give(a.buffer as ArrayBuffer);
    else this.slots.give(this.slots.of(a));
  }

  /** Hand back an output array of `run` once it has been written (its memory is reused). */
  recycle(a: Uint8Array | null): void {
    if (a === null) return;
    if (this.workers.length === 0) {
      if (a.byteOffset === 0) this.spares.give(a.buffer as ArrayBuffer);
      return;
    }
    const s = this.slots.of(a);
    if (s >= 0) this.slots.give(s);
  }

  private onMessage(w: Worker, m: PoolReply): void {
    const p = this.pending.get(m.id);
    this.pending.delete(m.id);
    w.unref();
    this.idle.push(w);
    if (p) {
      // The input slot is free once the worker is done; the output slot once the caller recycles it.
      this.slots.give(p.inSlot);
      if (m.out === undefined) this.slots.give(p.outSlot);
    }
    this.pump();
    if (!p) return;
    if (m.error !== undefined) {
      p.reject(new ConvertError("worker-failed", `conversion worker failed: ${m.error}`));
      return;
    }
    const data = m.out ? new Uint8Array(this.slots.mem[p.outSlot], m.out.offset, m.out.length) : m.data!;
    p.resolve({ data, scale: m.scale ?? null, aux: m.aux ?? null, stats: m.stats! });
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values())
      p.reject(new ConvertError("worker-failed", `conversion worker crashed: ${e.message}`, { cause: e }));
    this.pending.clear();
  }

  async close(): Promise<void> {
    if (this.workers.length === 0) setBufferSource(null);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    this.idle.length = 0;
  }
}
