/**
 * Running a conversion on Node: open and validate the input, plan, check the output directory,
 * convert shards (streaming bands of rows through the worker pool, each shard written to a temp
 * file then renamed), record completion, finalize (copy other files, config.json, index last) and
 * optionally verify. Memory stays at a window of bands (a few tens of MB per worker), whatever the
 * tensor, shard or checkpoint size.
 *
 *   convertCheckpoint(options: RunOptions) -> Promise<ConvertResult>
 */
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { parseConfigJson } from "../checkpoint/index.js";
import { buildIndexJson, INDEX_FILE_NAME } from "../safetensors/index.js";
import { openCheckpoint } from "../safetensors/node.js";
import { bandsOf } from "./bands.js";
import { ConvertError } from "./errors.js";
import { InputFiles } from "./files-node.js";
import {
  type InputFile,
  JOURNAL_FILE,
  type Journal,
  MARKER_DIR,
  makeJournal,
  readJournal,
  readMarker,
  removeQuiet,
  type ShardMarker,
  type TensorReport,
  writeFileAtomic,
  writeJournal,
  writeMarker,
} from "./journal.js";
import { type ErrorStats, emptyStats, mergeStats } from "./kernels.js";
import {
  type ConvertOptions,
  type ConvertPlan,
  type InputTensor,
  type PlannedShard,
  planConversion,
  shardsOfPart,
} from "./plan.js";
import { BandPool } from "./pool.js";
import { type VerifyResult, verifyOutput } from "./verify.js";

/** Progress and result events (the CLI prints them; `--json` writes them one per line). */
export type ConvertEvent =
  | { type: "plan"; plan: ConvertPlan; shardsToWrite: string[]; inProcess: string | null }
  | { type: "shard-start"; shard: string; tensors: number; bytes: number }
  | { type: "shard-skip"; shard: string; reason: string }
  | { type: "shard-done"; shard: string; bytes: number; seconds: number }
  | { type: "tensor"; report: TensorReport }
  | {
      type: "progress";
      tensorsDone: number;
      tensorsTotal: number;
      bytesDone: number;
      bytesTotal: number;
      seconds: number;
    }
  | { type: "finalized"; index: string; totalSize: number };

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

const COPY_CHUNK = 8 << 20;

/** Files never copied from the input (rewritten or replaced by the conversion). */
function isCopied(name: string): boolean {
  return (
    !name.startsWith(".") &&
    !name.endsWith(".safetensors") &&
    name !== INDEX_FILE_NAME &&
    name !== "config.json"
  );
}

interface InputInfo {
  dir: string;
  isDir: boolean;
  config: Record<string, unknown> | null;
  tensors: (InputTensor & { fileOffsets: [number, number] })[];
  files: InputFile[];
}

async function openInput(path: string): Promise<InputInfo> {
  const abs = resolve(path);
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(abs);
  } catch {
    throw new ConvertError("input-missing", `${path}: no such file or directory`);
  }
  const isDir = st.isDirectory();
  const dir = isDir ? abs : dirname(abs);
  let config: Record<string, unknown> | null = null;
  if (isDir) {
    let text: string | null = null;
    try {
      text = await readFile(join(dir, "config.json"), "utf8");
    } catch {
      text = null;
    }
    if (text !== null) config = parseConfigJson(text, join(path, "config.json"));
  } else if (!abs.endsWith(".safetensors")) {
    throw new ConvertError(
      "invalid-input",
      `${path}: input must be a checkpoint directory or a .safetensors file`,
    );
  }
  const ck = await openCheckpoint(abs);
  const tensors = ck.tensors;
  const shards = ck.shards;
  await ck.close();
  const files: InputFile[] = [];
  const names = isDir ? [...shards, ...(config ? ["config.json"] : [])] : shards;
  for (const n of names) {
    const s = await stat(join(dir, n));
    files.push({ name: n, size: s.size, mtimeMs: Math.floor(s.mtimeMs) });
  }
  return { dir, isDir, config, tensors, files };
}

function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

type OutputState = "new" | "empty" | "resume" | "replace";

async function checkOutput(
  out: string,
  input: InputInfo,
  journal: Journal,
  o: RunOptions,
): Promise<OutputState> {
  if (input.isDir ? isInside(out, input.dir) : out === input.dir) {
    throw new ConvertError(
      "output-in-input",
      `${o.output}: the output directory must not be inside the input ${o.input}`,
    );
  }
  if (isInside(input.dir, out)) {
    throw new ConvertError(
      "output-in-input",
      `${o.output}: the output directory must not contain the input ${o.input}`,
    );
  }
  let st: Awaited<ReturnType<typeof stat>> | null = null;
  try {
    st = await stat(out);
  } catch {
    st = null;
  }
  if (st === null) return "new";
  if (!st.isDirectory())
    throw new ConvertError("output-exists", `${o.output}: exists and is not a directory`);
  const existing = await readJournal(out);
  if (existing && existing.jobId === journal.jobId) return "resume";
  // A parallel --part run may be writing the journal right now (its temporary file).
  const entries = (await readdir(out)).filter((e) => !e.startsWith(`${JOURNAL_FILE}.tmp-`));
  if (entries.length === 0) return "empty";
  if (o.force) return "replace";
  if (existing) {
    throw new ConvertError(
      "output-exists",
      `${o.output}: holds an unfinished conversion of a different job (other input or options); use --force to replace it`,
    );
  }
  const complete = entries.includes(INDEX_FILE_NAME) || entries.some((e) => e.endsWith(".safetensors"));
  throw new ConvertError(
    "output-exists",
    complete
      ? `${o.output}: exists and is not an unfinished conversion of this job (it holds a checkpoint); use --force to replace it`
      : `${o.output}: exists and is not an unfinished conversion of this job; use --force to replace it`,
  );
}

interface RunContext {
  o: RunOptions;
  out: string;
  plan: ConvertPlan;
  input: InputInfo;
  byName: Map<string, InputInfo["tensors"][number]>;
  files: InputFiles;
  pool: BandPool;
  journal: Journal;
  emit: (e: ConvertEvent) => void;
  progress: {
    tensorsDone: number;
    tensorsTotal: number;
    bytesDone: number;
    bytesTotal: number;
    start: number;
  };
  bytesWritten: number;
}

let testAbortCounter = 0;
function testAbortHook(): void {
  // Test-only: FP8KIT_TEST_ABORT_AFTER_TENSORS=N kills the process (SIGKILL, no cleanup) after N
  // tensors, to prove that a run killed at an arbitrary moment can be resumed.
  const n = Number(process.env.FP8KIT_TEST_ABORT_AFTER_TENSORS ?? "");
  if (n > 0 && ++testAbortCounter >= n) process.kill(process.pid, "SIGKILL");
}

async function writeShard(ctx: RunContext, shard: PlannedShard): Promise<ShardMarker> {
  const { plan, out, files, pool } = ctx;
  const started = Date.now();
  ctx.emit({
    type: "shard-start",
    shard: shard.fileName,
    tensors: shard.ops.length,
    bytes: shard.layout.fileSize,
  });
  const tmp = join(out, `.${shard.fileName}.tmp-${process.pid}`);
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(tmp, "w");
  } catch (e) {
    throw new ConvertError(
      "write-failed",
      `${shard.fileName}: cannot create ${tmp} (${(e as Error).message})`,
    );
  }
  const where = new Map(
    shard.layout.tensors.map((t) => [t.name, shard.layout.header.length + t.dataOffsets[0]]),
  );
  const reports: TensorReport[] = [];
  let failed = false;
  const write = async (buf: Uint8Array, pos: number, what: string) => {
    try {
      let done = 0;
      while (done < buf.length) {
        const { bytesWritten } = await fh.write(buf, done, buf.length - done, pos + done);
        done += bytesWritten;
      }
      ctx.bytesWritten += buf.length;
    } catch (e) {
      throw new ConvertError(
        "write-failed",
        `${shard.fileName}: writing ${what} failed (${(e as Error).message}); run again with --resume once fixed`,
      );
    }
  };
  const running = new Set<Promise<void>>();
  const limit = Math.max(3, pool.size * 2 + 1);
  let firstError: unknown = null;
  const launch = async (task: () => Promise<void>) => {
    const p = task()
      .catch((e) => {
        if (firstError === null) firstError = e;
      })
      .finally(() => running.delete(p));
    running.add(p);
    while (running.size >= limit) await Promise.race(running);
  };
  try {
    await write(shard.layout.header, 0, "the header");
    for (const k of shard.ops) {
      if (firstError !== null) break;
      const op = plan.ops[k];
      const inT = ctx.byName.get(op.input.data)!;
      const outPos = where.get(op.output.data.name)!;
      let left: number;
      let stats: ErrorStats = emptyStats();
      const finishOp = () => {
        const rep: TensorReport = {
          name: op.input.data,
          output: op.output.data.name,
          action: op.action,
          stats: op.action === "copy" ? null : stats,
        };
        if (rep.stats && rep.stats.nonfinite > 0 && !ctx.o.allowNonfinite) {
          throw new ConvertError(
            "nonfinite",
            `${op.input.shard}: tensor "${op.input.data}" holds ${rep.stats.nonfinite} NaN/Inf values (use --allow-nonfinite to convert anyway)`,
          );
        }
        reports.push(rep);
        ctx.progress.tensorsDone++;
        ctx.emit({ type: "tensor", report: rep });
        testAbortHook();
      };
      const tick = (bytes: number) => {
        const p = ctx.progress;
        p.bytesDone += bytes;
        ctx.emit({
          type: "progress",
          tensorsDone: p.tensorsDone,
          tensorsTotal: p.tensorsTotal,
          bytesDone: p.bytesDone,
          bytesTotal: p.bytesTotal,
          seconds: (Date.now() - p.start) / 1000,
        });
      };
      if (op.action === "copy") {
        const n = inT.byteLength;
        const chunks = Math.max(1, Math.ceil(n / COPY_CHUNK));
        left = chunks;
        for (let c = 0; c < chunks; c++) {
          const off = c * COPY_CHUNK;
          const len = Math.min(COPY_CHUNK, n - off);
          await launch(async () => {
            if (len > 0) {
              const buf = await files.read(
                op.input.shard,
                inT.fileOffsets[0] + off,
                len,
                pool.inputBuffer(len),
              );
              await write(buf, outPos + off, `tensor "${op.output.data.name}"`);
              pool.recycleInput(buf);
            }
            tick(len);
            if (--left === 0) finishOp();
          });
        }
        continue;
      }
      const { cols, bands } = bandsOf(op);
      left = bands.length;
      const scaleT = op.input.scale ? ctx.byName.get(op.input.scale)! : null;
      const outScalePos = op.output.scale ? where.get(op.output.scale.name)! : 0;
      for (const band of bands) {
        await launch(async () => {
          const data = await files.read(
            op.input.shard,
            inT.fileOffsets[0] + band.inData[0],
            band.inData[1],
            pool.inputBuffer(band.inData[1]),
          );
          const scale =
            band.inScale && scaleT
              ? await files.read(scaleT.shard, scaleT.fileOffsets[0] + band.inScale[0], band.inScale[1])
              : null;
          const inBytes = band.inData[1] + (band.inScale?.[1] ?? 0);
          const r = await pool.run(
            { source: op.source!, target: op.target!, rows: band.rows, cols },
            data,
            scale,
          );
          await write(r.data, outPos + band.outData, `tensor "${op.output.data.name}"`);
          if (r.scale && op.output.scale && band.outScale !== null) {
            await write(r.scale, outScalePos + band.outScale, `tensor "${op.output.scale.name}"`);
          }
          pool.recycle(r.data);
          stats = mergeStats(stats, r.stats);
          tick(inBytes);
          if (--left === 0) finishOp();
        });
      }
    }
    await Promise.all(running);
    if (firstError !== null) throw firstError;
    await fh.sync();
    await fh.close();
    await rename(tmp, join(out, shard.fileName));
  } catch (e) {
    failed = true;
    await Promise.allSettled(running);
    await fh.close().catch(() => {});
    await removeQuiet(tmp);
    throw e;
  } finally {
    if (!failed)
      ctx.emit({
        type: "shard-done",
        shard: shard.fileName,
        bytes: shard.layout.fileSize,
        seconds: (Date.now() - started) / 1000,
      });
  }
  const marker: ShardMarker = {
    jobId: ctx.journal.jobId,
    fileName: shard.fileName,
    fileSize: shard.layout.fileSize,
    tensors: reports,
  };
  try {
    await writeMarker(out, marker);
  } catch (e) {
    throw new ConvertError(
      "write-failed",
      `${shard.fileName}: writing its completion marker failed (${(e as Error).message}); run again with --resume`,
    );
  }
  return marker;
}

async function shardIsComplete(out: string, jobId: string, shard: PlannedShard): Promise<ShardMarker | null> {
  const m = await readMarker(out, shard.fileName);
  if (!m || m.jobId !== jobId || m.fileSize !== shard.layout.fileSize) return null;
  try {
    const s = await stat(join(out, shard.fileName));
    return s.size === shard.layout.fileSize ? m : null;
  } catch {
    return null;
  }
}

async function removeStaleTemps(out: string, shards: PlannedShard[]): Promise<void> {
  const names = new Set(shards.map((s) => s.fileName));
  for (const e of await readdir(out)) {
    const m = /^\.(.+)\.tmp-\d+$/.exec(e);
    if (m && names.has(m[1])) await removeQuiet(join(out, e));
  }
}

async function finalize(ctx: RunContext): Promise<TensorReport[]> {
  const { out, plan, input } = ctx;
  const reports: TensorReport[] = [];
  const missing: string[] = [];
  for (const s of plan.shards) {
    const m = await shardIsComplete(out, ctx.journal.jobId, s);
    if (!m) missing.push(s.fileName);
    else reports.push(...m.tensors);
  }
  if (missing.length > 0) {
    throw new ConvertError(
      "incomplete",
      `${ctx.o.output}: ${missing.length} of ${plan.shards.length} shards are not complete (${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ", ..." : ""}); run the missing --part jobs (or --resume) first`,
    );
  }
  if (input.isDir) {
    for (const e of await readdir(input.dir, { withFileTypes: true })) {
      if (!e.isFile() || !isCopied(e.name)) continue;
      const tmp = join(out, `.${e.name}.tmp-${process.pid}`);
      await copyFile(join(input.dir, e.name), tmp);
      await rename(tmp, join(out, e.name));
    }
  }
  if (plan.config)
    await writeFileAtomic(join(out, "config.json"), `${JSON.stringify(plan.config, null, 2)}\n`);
  const weightMap = new Map<string, string>();
  for (const s of plan.shards) for (const t of s.layout.tensors) weightMap.set(t.name, s.fileName);
  // The index is written last: its presence marks the output complete.
  await writeFileAtomic(join(out, INDEX_FILE_NAME), buildIndexJson(weightMap, plan.totalSize));
  await rm(join(out, MARKER_DIR), { recursive: true, force: true });
  await removeQuiet(join(out, JOURNAL_FILE));
  ctx.emit({ type: "finalized", index: join(out, INDEX_FILE_NAME), totalSize: plan.totalSize });
  const order = new Map(plan.ops.map((op, i) => [op.input.data, i]));
  return reports.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
}

/** Convert a checkpoint; see the file header and docs/CONVERT.md. */
export async function convertCheckpoint(o: RunOptions): Promise<ConvertResult> {
  const started = Date.now();
  const emit = o.onEvent ?? (() => {});
  if (o.part) {
    const [i, n] = o.part;
    if (!Number.isSafeInteger(i) || !Number.isSafeInteger(n) || n < 1 || i < 1 || i > n) {
      throw new ConvertError("invalid-option", `--part must be i/n with 1 <= i <= n, got ${i}/${n}`);
    }
    if (o.finalize) throw new ConvertError("invalid-option", "--part and --finalize are separate runs");
  }
  const input = await openInput(o.input);
  const plan = planConversion({ config: input.config, tensors: input.tensors }, o);
  const out = resolve(o.output);
  const mine = o.part ? shardsOfPart(plan.shards, o.part[0], o.part[1]) : plan.shards;
  const journal = makeJournal(
    plan.options,
    input.files,
    plan.shards.map((s) => ({ fileName: s.fileName, fileSize: s.layout.fileSize })),
  );
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
  const state = await checkOutput(out, input, journal, o);
  const workers = o.workers ?? availableParallelism();
  if (o.dryRun) {
    emit({ type: "plan", plan, shardsToWrite: mine.map((s) => s.fileName), inProcess: null });
    result.seconds = (Date.now() - started) / 1000;
    return result;
  }
  if (o.finalize && state !== "resume") {
    throw new ConvertError(
      "incomplete",
      `${o.output}: no unfinished conversion of this job to finalize (same input and options?)`,
    );
  }
  if (state === "replace") await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  if (state !== "resume") {
    try {
      await writeJournal(out, journal);
    } catch (e) {
      throw new ConvertError(
        "write-failed",
        `${o.output}: cannot write the job journal (${(e as Error).message})`,
      );
    }
  }
  const pool = new BandPool(o.finalize ? 0 : workers);
  const files = new InputFiles(input.dir);
  const ctx: RunContext = {
    o,
    out,
    plan,
    input,
    byName: new Map(input.tensors.map((t) => [t.name, t])),
    files,
    pool,
    journal,
    emit,
    progress: { tensorsDone: 0, tensorsTotal: 0, bytesDone: 0, bytesTotal: 0, start: Date.now() },
    bytesWritten: 0,
  };
  try {
    if (!o.finalize) {
      await removeStaleTemps(out, mine);
      const todo: PlannedShard[] = [];
      for (const s of mine) {
        if (await shardIsComplete(out, journal.jobId, s)) {
          result.shardsSkipped.push(s.fileName);
          emit({ type: "shard-skip", shard: s.fileName, reason: "complete (resumed)" });
        } else todo.push(s);
      }
      for (const s of todo) {
        for (const k of s.ops) {
          ctx.progress.tensorsTotal++;
          ctx.progress.bytesTotal += plan.ops[k].bytesIn;
        }
      }
      emit({
        type: "plan",
        plan,
        shardsToWrite: todo.map((s) => s.fileName),
        inProcess: pool.inProcessReason,
      });
      for (const s of todo) {
        await writeShard(ctx, s);
        result.shardsWritten.push(s.fileName);
      }
    }
    if (o.part && !o.finalize) {
      result.status = "part-done";
      for (const s of mine) {
        const m = await readMarker(out, s.fileName);
        if (m) result.tensors.push(...m.tensors);
      }
    } else {
      result.tensors = await finalize(ctx);
      result.status = "complete";
      if (o.verify) result.verify = await verifyOutput(input.dir, input.tensors, out, plan, result.tensors);
    }
  } finally {
    await pool.close();
    await files.close();
  }
  result.bytesRead = files.bytesRead;
  result.bytesWritten = ctx.bytesWritten;
  result.seconds = (Date.now() - started) / 1000;
  return result;
}
