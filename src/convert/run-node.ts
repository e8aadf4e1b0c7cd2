/**
 * Running a conversion on Node: open and validate the input, plan, check the output directory,
 * write the shards this run owns (write-shard-node.ts), record completion, finalize (side files,
 * config.json, index last; output-node.ts) and optionally verify. Every run of the same job
 * recomputes the same plan, which is what makes `--resume` and `--part i/n` possible.
 *
 *   convertCheckpoint(options: RunOptions) -> Promise<ConvertResult>
 */
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { INDEX_FILE_NAME } from "../safetensors/index.js";
import { ConvertError } from "./errors.js";
import { type InputInfo, openInput } from "./input-node.js";
import { type Journal, makeJournal, readMarker, type TensorReport } from "./journal.js";
import {
  checkOutput,
  finalizeOutput,
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
}

export interface ConvertResult {
  plan: ConvertPlan;
  status: "dry-run" | "part-done" | "complete";
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
  await removeStaleTemps(out, mine);
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
  for (const s of todo) await writeShard(ctx, s);
}

/** Write (or finalize) the output; `result` receives the shards, tensors and status. */
async function run(
  o: RunOptions,
  input: InputInfo,
  plan: ConvertPlan,
  journal: Journal,
  result: ConvertResult,
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
    progress: { tensorsDone: 0, tensorsTotal: 0, bytesDone: 0, bytesTotal: 0, start: Date.now() },
    bytesWritten: 0,
  };
  try {
    if (!o.finalize) await writeShards(ctx, mine, result);
    // checkPartOptions refuses --part with --finalize.
    if (o.part) {
      result.status = "part-done";
      for (const s of mine) result.tensors.push(...((await readMarker(out, s.fileName))?.tensors ?? []));
      return;
    }
    result.tensors = await finalizeOutput(out, plan, input, journal, o.output);
    result.status = "complete";
    emit({ type: "finalized", index: join(out, INDEX_FILE_NAME), totalSize: plan.totalSize });
  } finally {
    await pool.close();
    result.bytesRead = input.checkpoint.bytesRead;
    result.bytesWritten = ctx.bytesWritten;
  }
  if (o.verify) result.verify = await verifyOutput(o.input, out, plan, result.tensors);
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
    const state: OutputState = await checkOutput(out, input, journal, o);
    if (o.dryRun) {
      const mine = o.part ? shardsOfPart(plan.shards, o.part[0], o.part[1]) : plan.shards;
      o.onEvent?.({ type: "plan", plan, shardsToWrite: mine.map((s) => s.fileName), inProcess: null });
    } else {
      if (o.finalize && state !== "resume") {
        throw new ConvertError(
          "incomplete",
          `${o.output}: no unfinished conversion of this job to finalize (same input and options?)`,
        );
      }
      await prepareOutput(out, state, journal);
      await run(o, input, plan, journal, result);
    }
    result.seconds = (Date.now() - started) / 1000;
    return result;
  } finally {
    await input.checkpoint.close();
  }
}
