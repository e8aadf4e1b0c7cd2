/**
 * Running a conversion on Node: open and validate the input, plan, check the output directory and
 * take its lock (lock-node.ts), write the shards this run owns (write-shard-node.ts), record their
 * completion, optionally verify them, then finalize (side files, config.json, index last;
 * output-node.ts). Every run of the same job
 * recomputes the same plan, which is what makes `--resume` and `--part i/n` possible.
 *
 *   convertCheckpoint(options: RunOptions) -> Promise<ConvertResult>
 */
import { stat, statfs } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { Checkpoint, formatBytes, INDEX_FILE_NAME } from "../safetensors/index.js";
import { errnoOf, NodeFileSource } from "../safetensors/node.js";
import { ConvertError } from "./errors.js";
import { type InputInfo, openInput } from "./input-node.js";
import { type Journal, makeJournal, type TensorReport } from "./journal.js";
import { lockOutput } from "./lock-node.js";
import { nvfp4TensorScales } from "./nvfp4-globals.js";
import {
  checkOutput,
  completedReports,
  finalizeOutput,
  forgetShards,
  makeOutputDir,
  type OutputState,
  prepareOutput,
  removeStaleTemps,
  shardIsComplete,
} from "./output-node.js";
import {
  type ConvertOptions,
  type ConvertPlan,
  type PlannedShard,
  planConversion,
  shardsOfPart,
} from "./plan.js";
import { BandPool } from "./pool.js";
import { checkRelabels } from "./relabel-check.js";
import { refuseBadScales } from "./scale-policy.js";
import { type VerifyResult, verifyOutput } from "./verify.js";
import { type ConvertEvent, type RunContext, writeShard } from "./write-shard-node.js";

export interface RunOptions extends ConvertOptions {
  input: string;
  output: string;
  dryRun?: boolean;
  force?: boolean;
  resume?: boolean;
  /** `[i, n]`: convert only part i (1-based) of n. */
  part?: [number, number] | null;
  /** Only check every shard is complete and write the index (after `--part` runs). */
  finalize?: boolean;
  /** Worker threads (default: available cores; 0 = in-process). */
  workers?: number;
  allowNonfinite?: boolean;
  verify?: boolean;
  onEvent?: (e: ConvertEvent) => void;
  /**
   * Called after each tensor is converted, with the count done in this run (before its shard is
   * renamed into place). Tests use it to kill a run at an arbitrary point and prove it resumes.
   */
  afterTensor?: (done: number) => void;
  /**
   * Stops the run (SIGINT/SIGTERM in the CLI): no new band starts, the shard being written is
   * deleted, the lock released, and the call rejects with the signal's reason. Completed shards
   * stay, so running the same job again resumes.
   */
  signal?: AbortSignal;
}

export interface ConvertResult {
  plan: ConvertPlan;
  /** "verify-failed": `--verify` found mismatches; the output is left unfinished (no index). */
  status: "dry-run" | "part-done" | "verify-failed" | "complete";
  tensors: TensorReport[];
  shardsWritten: string[];
  shardsSkipped: string[];
  bytesRead: number;
  bytesWritten: number;
  seconds: number;
  verify: VerifyResult | null;
}

function checkPartOptions(o: RunOptions): void {
  if (!o.part) return;
  const [i, n] = o.part;
  if (!Number.isSafeInteger(i) || !Number.isSafeInteger(n) || n < 1 || i < 1 || i > n) {
    throw new ConvertError("invalid-option", `--part must be i/n with 1 <= i <= n, got ${i}/${n}`);
  }
  if (o.finalize) throw new ConvertError("invalid-option", "--part and --finalize are separate runs");
}

/** Write the shards of `mine` not already complete, recording in `result` those written and skipped. */
async function writeShards(ctx: RunContext, mine: PlannedShard[], result: ConvertResult): Promise<void> {
  const { out, plan, emit } = ctx;
  const todo: PlannedShard[] = [];
  for (const s of mine) {
    if (await shardIsComplete(out, ctx.jobId, s)) {
      result.shardsSkipped.push(s.fileName);
      emit({ type: "shard-skip", shard: s.fileName, reason: "complete (resumed)" });
      continue;
    }
    todo.push(s);
    ctx.progress.tensorsTotal += s.ops.length;
    for (const k of s.ops) ctx.progress.bytesTotal += plan.ops[k].bytesIn;
  }
  result.shardsWritten = todo.map((s) => s.fileName);
  emit({ type: "plan", plan, shardsToWrite: result.shardsWritten, inProcess: ctx.pool.inProcessReason });
  for (const s of todo) {
    ctx.signal?.throwIfAborted();
    await writeShard(ctx, s);
  }
}

/**
 * `--verify` of the written shards `mine`, before anything marks them complete: a shard with a
 * mismatch loses its completion marker, so the output stays unfinished and the next run rewrites it.
 */
async function verifyShards(
  out: string,
  input: InputInfo,
  plan: ConvertPlan,
  mine: readonly PlannedShard[],
  reports: readonly TensorReport[],
): Promise<VerifyResult> {
  const output = await Checkpoint.open({
    shards: mine.map((s) => s.fileName),
    opener: (f) => NodeFileSource.open(join(out, f), f),
    name: out,
  });
  try {
    const ops = mine.flatMap((s) => s.ops.map((k) => plan.ops[k]));
    const res = await verifyOutput(input.checkpoint, output, ops, reports);
    const bad = new Set(res.mismatches.map((m) => ops.find((op) => op.output.data.name === m.tensor)!.shard));
    await forgetShards(out, [...bad]);
    return res;
  } finally {
    await output.close();
  }
}

/** Write (or finalize) the output; `result` receives the shards, tensors and status. */
async function run(
  o: RunOptions,
  input: InputInfo,
  plan: ConvertPlan,
  journal: Journal,
  result: ConvertResult,
  tensorScales: ReadonlyMap<number, number>,
) {
  const out = resolve(o.output);
  const emit = o.onEvent ?? (() => {});
  const mine = o.part ? shardsOfPart(plan.shards, o.part[0], o.part[1]) : plan.shards;
  const pool = new BandPool(o.finalize ? 0 : (o.workers ?? availableParallelism()));
  const ctx: RunContext = {
    out,
    plan,
    jobId: journal.jobId,
    input: input.checkpoint,
    pool,
    allowNonfinite: o.allowNonfinite ?? false,
    emit,
    afterTensor: o.afterTensor ?? (() => {}),
    signal: o.signal,
    nvfp4TensorScales: tensorScales,
    progress: { tensorsDone: 0, tensorsTotal: 0, bytesDone: 0, bytesTotal: 0, start: Date.now() },
    bytesWritten: 0,
  };
  try {
    // Holding the directory's lock: a whole run or finalize owns every temporary file in it.
    await removeStaleTemps(out, mine, !o.part);
    if (!o.finalize) await writeShards(ctx, mine, result);
  } finally {
    await pool.close();
    result.bytesRead = input.checkpoint.bytesRead;
    result.bytesWritten = ctx.bytesWritten;
  }
  result.tensors = await completedReports(out, plan, mine, journal.jobId, o.output);
  if (o.verify) {
    result.verify = await verifyShards(out, input, plan, mine, result.tensors);
    if (result.verify.mismatches.length > 0) {
      result.status = "verify-failed";
      return;
    }
  }
  if (o.part) {
    result.status = "part-done";
    return;
  }
  o.signal?.throwIfAborted();
  await finalizeOutput(out, plan, input, journal);
  result.status = "complete";
  emit({ type: "finalized", index: join(out, INDEX_FILE_NAME), totalSize: plan.totalSize });
}

/** A disk-full failure, with how much more the output needs and how much the disk has. */
async function withSpaceNeeded(e: unknown, out: string, plan: ConvertPlan): Promise<unknown> {
  if (!(e instanceof ConvertError) || e.code !== "write-failed") return e;
  const errno = errnoOf(e);
  if (errno !== "ENOSPC" && errno !== "EDQUOT") return e;
  // Shards not yet in place, whole (their file size, header included; plan.totalSize counts only data).
  let missing = 0;
  for (const s of plan.shards) {
    const st = await stat(join(out, s.fileName)).catch(() => null);
    if (st?.size !== s.layout.fileSize) missing += s.layout.fileSize;
  }
  const fs = await statfs(out).catch(() => null);
  const free = fs ? `, ${formatBytes(fs.bavail * fs.bsize)} free` : "";
  const need = `the output needs about ${formatBytes(missing)} more${free}`;
  return new ConvertError("write-failed", `${e.message} (${need})`, { cause: e.cause });
}

/** Convert a checkpoint; see the file header and docs/CONVERT.md. */
export async function convertCheckpoint(o: RunOptions): Promise<ConvertResult> {
  const started = Date.now();
  checkPartOptions(o);
  const input = await openInput(o.input);
  try {
    const plan = planConversion(input, o);
    const journal = makeJournal(plan, input.files);
    const result: ConvertResult = {
      plan,
      status: "dry-run",
      tensors: [],
      shardsWritten: [],
      shardsSkipped: [],
      bytesRead: 0,
      bytesWritten: 0,
      seconds: 0,
      verify: null,
    };
    const out = resolve(o.output);
    // Checked before anything is created, and again under the lock.
    let state: OutputState = await checkOutput(out, input, journal, o);
    if (o.dryRun) {
      const mine = o.part ? shardsOfPart(plan.shards, o.part[0], o.part[1]) : plan.shards;
      o.onEvent?.({ type: "plan", plan, shardsToWrite: mine.map((s) => s.fileName), inProcess: null });
      result.seconds = (Date.now() - started) / 1000;
      return result;
    }
    if (o.finalize && state !== "resume") {
      throw new ConvertError(
        "incomplete",
        `${o.output}: no unfinished conversion of this job to finalize (same input and options?)`,
      );
    }
    let tensorScales: ReadonlyMap<number, number> = new Map();
    if (!o.finalize) {
      await refuseBadScales(input.checkpoint, plan, o.part);
      await checkRelabels(input.checkpoint, plan, o.part);
      // NVFP4 scalars need whole tensors (and fusion groups): computed from the input before the
      // output directory exists, so a bad input fails with nothing created (nvfp4-globals.ts).
      tensorScales = await nvfp4TensorScales(input.checkpoint, plan, o.part);
    }
    await makeOutputDir(out).catch(async (e) => {
      throw await withSpaceNeeded(e, out, plan);
    });
    const lock = await lockOutput(out, o.part ?? null);
    try {
      state = await checkOutput(out, input, journal, o);
      await prepareOutput(out, state, journal);
      await run(o, input, plan, journal, result, tensorScales);
    } catch (e) {
      throw await withSpaceNeeded(e, out, plan);
    } finally {
      await lock.release();
    }
    result.seconds = (Date.now() - started) / 1000;
    return result;
  } finally {
    await input.checkpoint.close();
  }
}
