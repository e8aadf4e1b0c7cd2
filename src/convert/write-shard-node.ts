/**
 * Writing one output shard (Node): its planned layout is opened as a `PositionalSafetensorsWriter`
 * (a temporary file renamed into place when complete); copied tensors are streamed in chunks and
 * converted ones in bands through the worker pool, a bounded window of reads, conversions and
 * writes in flight at once; then the shard's completion marker is written. Memory stays at the
 * window (a few tens of MB per worker), whatever the tensor or shard size.
 */

import { join } from "node:path";
import { type ErrorStats, emptyStats, mergeStats } from "../quant/error-stats.js";
import { relabelTensorScale } from "../quant/kernels/relabel-band.js";
import type { BandSpec } from "../quant/kernels/types.js";
import { type Checkpoint, SafetensorsError } from "../safetensors/index.js";
import { PositionalSafetensorsWriter } from "../safetensors/node.js";
import { bandsOf } from "./bands.js";
import { ConvertError } from "./errors.js";
import { type ShardMarker, type TensorReport, writeMarker } from "./journal.js";
import { outputFailure } from "./output-node.js";
import type { ConvertPlan, PlannedShard, TensorOp } from "./plan.js";
import type { BandPool } from "./pool.js";
import { readTensorScale, reciprocalF32 } from "./tensor-scale.js";

/** Bytes per read-and-write of a copied tensor. */
const COPY_CHUNK = 8 << 20;

/**
 * A background fsync of the shard being written after every this many bytes (`AtomicFile`'s
 * `flushEvery`), so the disk writes the shard while the rest is computed and the final fsync has
 * little left to do. `FP8KIT_FLUSH_MB` overrides it (0 turns it off; benchmarks compare the two).
 */
const FLUSH_EVERY = flushEvery();

function flushEvery(): number {
  const mb = Number(process.env.FP8KIT_FLUSH_MB ?? 64);
  return Number.isFinite(mb) && mb >= 0 ? mb * (1 << 20) : 64 << 20;
}

/** Tensors and input bytes done so far in this run, and in all. */
type ProgressCounts = {
  tensorsDone: number;
  tensorsTotal: number;
  bytesDone: number;
  bytesTotal: number;
};

/** Progress and result events (the CLI prints them; `--json` writes them one per line). */
export type ConvertEvent =
  | { type: "plan"; plan: ConvertPlan; shardsToWrite: string[]; inProcess: string | null }
  | { type: "shard-start"; shard: string; tensors: number; bytes: number }
  | { type: "shard-skip"; shard: string; reason: string }
  | { type: "shard-done"; shard: string; bytes: number; seconds: number }
  | { type: "tensor"; report: TensorReport }
  | ({ type: "progress"; seconds: number } & ProgressCounts)
  | { type: "finalized"; index: string; totalSize: number };

/** Everything writing shards needs, shared by the shards of one run. */
export interface RunContext {
  out: string;
  plan: ConvertPlan;
  jobId: string;
  input: Checkpoint;
  pool: BandPool;
  allowNonfinite: boolean;
  emit: (e: ConvertEvent) => void;
  afterTensor: (done: number) => void;
  /** Stops the run between bands (RunOptions.signal). */
  signal?: AbortSignal;
  /** The per-tensor scalar of each NVFP4 op that is quantized or requantized, by op index (nvfp4-globals.ts). */
  nvfp4TensorScales: ReadonlyMap<number, number>;
  progress: ProgressCounts & { start: number };
  bytesWritten: number;
}

/**
 * At most `limit` tasks in flight; `launch` waits for room. The first failure is kept and stops
 * new launches (`failed`); `drain` waits for every task and rethrows it.
 */
class TaskWindow {
  private readonly running = new Set<Promise<void>>();
  private firstError: { e: unknown } | null = null;

  constructor(
    private readonly limit: number,
    private readonly signal?: AbortSignal,
  ) {}

  get failed(): boolean {
    return this.firstError !== null;
  }

  /** Start `task` once there is room; after a failure or an abort, nothing more starts. */
  async launch(task: () => Promise<void>): Promise<void> {
    if (this.firstError !== null || this.signal?.aborted) return;
    const p: Promise<void> = task()
      .catch((e) => {
        this.firstError ??= { e };
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
    while (this.running.size >= this.limit) await Promise.race(this.running);
  }

  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.firstError !== null) throw this.firstError.e;
  }
}

/** Per-op bookkeeping: pieces still to finish, the merged error statistics. */
class OpProgress {
  stats: ErrorStats = emptyStats();

  constructor(
    private readonly ctx: RunContext,
    private readonly op: TensorOp,
    private left: number,
    private readonly reports: TensorReport[],
  ) {}

  /** One piece of `inBytes` input bytes is done (with its error statistics, for conversions). */
  done(inBytes: number, stats?: ErrorStats): void {
    if (stats) this.stats = mergeStats(this.stats, stats);
    this.ctx.progress.bytesDone += inBytes;
    // The tensor is counted (finish) before the progress event, so the last one reads N/N.
    if (--this.left === 0) this.finish();
    const { start, ...counts } = this.ctx.progress;
    this.ctx.emit({ type: "progress", ...counts, seconds: (Date.now() - start) / 1000 });
  }

  private finish(): void {
    const { op, ctx } = this;
    const rep: TensorReport = {
      name: op.input.data,
      output: op.output.data.name,
      action: op.action,
      stats: op.action === "copy" ? null : this.stats,
    };
    if (rep.stats && rep.stats.nonfinite > 0 && !ctx.allowNonfinite) {
      throw new ConvertError(
        "nonfinite",
        `${op.input.shard}: tensor "${op.input.data}" holds ${rep.stats.nonfinite} NaN/Inf values once converted (NaN/Inf in the input, or values beyond the target's range; use --allow-nonfinite to convert anyway)`,
      );
    }
    this.reports.push(rep);
    ctx.progress.tensorsDone++;
    ctx.emit({ type: "tensor", report: rep });
    ctx.afterTensor(ctx.progress.tensorsDone);
  }
}

/** The shard being written: its writer, the window of tasks in flight, the tensor reports so far. */
interface Shard {
  w: PositionalSafetensorsWriter;
  window: TaskWindow;
  reports: TensorReport[];
}

/** Queue the chunks of a copied tensor: input bytes to output bytes, unchanged. */
async function copyOp(ctx: RunContext, { w, window, reports }: Shard, op: TensorOp): Promise<void> {
  const { input, pool } = ctx;
  const n = input.get(op.input.data).byteLength;
  const chunks = Math.max(1, Math.ceil(n / COPY_CHUNK));
  const progress = new OpProgress(ctx, op, chunks, reports);
  for (let c = 0; c < chunks; c++) {
    const off = c * COPY_CHUNK;
    const len = Math.min(COPY_CHUNK, n - off);
    await window.launch(async () => {
      if (len > 0) {
        const buf = await input.readRange(op.input.data, off, len, pool.inputBuffer(len));
        await w.writeTensorAt(op.output.data.name, off, op.reciprocal ? reciprocalF32(buf) : buf);
        pool.recycleInput(buf);
      }
      progress.done(len);
    });
  }
}

/** Queue the bands of a converted tensor: read data (+ scales), convert in the pool, write. */
async function bandOp(ctx: RunContext, { w, window, reports }: Shard, op: TensorOp): Promise<void> {
  const { input, pool } = ctx;
  const { cols, bands } = bandsOf(op);
  const tensorScale = await readTensorScale(input, op);
  const outTensorScale = await writeOutputTensorScale(ctx, w, op, tensorScale);
  const progress = new OpProgress(ctx, op, bands.length, reports);
  const scaleName = op.input.scale;
  const outScale = op.output.scale;
  const opts = ctx.plan.options;
  // F16 saturates unless NaN/Inf may be written (docs/CONVERT.md, "Overflow and NaN/Inf").
  const base: BandSpec = {
    source: op.source!,
    target: op.target!,
    rows: 0,
    cols,
    overflow: ctx.allowNonfinite ? "nonfinite" : "saturate",
  };
  if (tensorScale !== undefined) base.tensorScale = tensorScale;
  if (outTensorScale !== undefined) base.outTensorScale = outTensorScale;
  if (op.action === "relabel") base.relabel = { lossy: opts.allowLossy };
  if (op.via !== undefined) base.via = op.via;
  if (op.transpose) base.transpose = true;
  if (op.transposeInput) base.transposeInput = true;
  for (const band of bands) {
    await window.launch(async () => {
      const [dataAt, dataLen] = band.inData;
      const data = await input.readRange(op.input.data, dataAt, dataLen, pool.inputBuffer(dataLen));
      const scale =
        band.inScale && scaleName ? await input.readRange(scaleName, band.inScale[0], band.inScale[1]) : null;
      const r = await pool.run({ ...base, rows: band.rows }, data, scale);
      await w.writeTensorAt(op.output.data.name, band.outData, r.data);
      if (r.scale && outScale && band.outScale !== null)
        await w.writeTensorAt(outScale.name, band.outScale, r.scale);
      // Ascend's `weight_offset` (zeros shaped as the scale) and W4A8's `scale_bias`.
      if (op.output.zeros && r.scale && band.outScale !== null)
        await w.writeTensorAt(op.output.zeros.name, band.outScale, new Uint8Array(r.scale.length));
      if (op.output.aux && band.outAux !== null) {
        if (!r.aux)
          throw new ConvertError(
            "invalid-layout",
            `${op.input.shard}: tensor "${op.input.data}": no ${op.output.aux.name} was computed`,
          );
        await w.writeTensorAt(op.output.aux.name, band.outAux, r.aux);
      }
      pool.recycle(r.data);
      progress.done(dataLen + (band.inScale?.[1] ?? 0), r.stats);
    });
  }
}

/**
 * The per-tensor scalar an NVFP4 output stores, written once before the bands as F32: for a
 * relabel, the source's scalar in the target dialect (`relabelTensorScale`); when quantizing or
 * requantizing, the value the pre-pass computed from the amax of the tensor or its fusion group
 * (`ctx.nvfp4TensorScales`). Undefined when the target has none.
 */
async function writeOutputTensorScale(
  ctx: RunContext,
  w: PositionalSafetensorsWriter,
  op: TensorOp,
  tensorScale: number | undefined,
): Promise<number | undefined> {
  const out = op.output.tensorScale;
  const src = op.source;
  const tgt = op.target;
  if (out === null || tgt?.kind !== "nvfp4") return undefined;
  let value: number | undefined;
  if (op.action === "relabel") {
    if (src?.kind === "block" && src.tensorScale !== undefined && tensorScale !== undefined)
      value = relabelTensorScale(tensorScale, src.tensorScale, tgt.tensorScale).value;
  } else value = ctx.nvfp4TensorScales.get(op.index);
  if (value === undefined) {
    throw new ConvertError(
      "invalid-scales",
      `${op.input.shard}: tensor "${op.input.data}": no per-tensor scale was computed for its NVFP4 output "${out.name}"`,
    );
  }
  await w.writeTensorAt(out.name, 0, new Uint8Array(new Float32Array([value]).buffer));
  return value;
}

/** Write `shard` completely (or not at all) and record its marker. */
export async function writeShard(ctx: RunContext, shard: PlannedShard): Promise<ShardMarker> {
  const started = Date.now();
  const bytes = shard.layout.fileSize;
  ctx.emit({ type: "shard-start", shard: shard.fileName, tensors: shard.ops.length, bytes });
  const reports: TensorReport[] = [];
  let w: PositionalSafetensorsWriter | null = null;
  const window = new TaskWindow(Math.max(3, ctx.pool.size * 2 + 1), ctx.signal);
  try {
    w = await PositionalSafetensorsWriter.create(join(ctx.out, shard.fileName), shard.layout, {
      flushEvery: FLUSH_EVERY,
    });
    for (const k of shard.ops) {
      if (window.failed || ctx.signal?.aborted) break;
      const op = ctx.plan.ops[k];
      await (op.action === "copy" ? copyOp : bandOp)(ctx, { w, window, reports }, op);
    }
    await window.drain();
    ctx.signal?.throwIfAborted();
    await w.finish();
  } catch (e) {
    await window.drain().catch(() => {});
    await w?.abort();
    // Only the output's write failures get the retry hint; anything else (the input) passes through.
    throw e instanceof SafetensorsError && e.code === "write-failed"
      ? outputFailure(shard.fileName, "writing", e)
      : e;
  } finally {
    ctx.bytesWritten += w?.bytesWritten ?? 0;
  }
  ctx.emit({ type: "shard-done", shard: shard.fileName, bytes, seconds: (Date.now() - started) / 1000 });
  const marker: ShardMarker = {
    jobId: ctx.jobId,
    fileName: shard.fileName,
    fileSize: bytes,
    tensors: reports,
  };
  try {
    await writeMarker(ctx.out, marker);
  } catch (e) {
    throw outputFailure(shard.fileName, "writing its completion marker", e);
  }
  return marker;
}
