/**
 * The output directory of a conversion (Node): whether it may be written (new, empty, the same
 * unfinished job, or replaced with --force), which shards are already complete, and the final step
 * that copies the input's side files and writes config.json and the index last (its presence marks
 * the output complete). Every file is written atomically (safetensors/atomic-node.ts); a file
 * system failure is a `ConvertError` naming the path, with a hint, and the Node error as `cause`.
 */
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join, sep } from "node:path";
import { buildIndexJson, INDEX_FILE_NAME, SafetensorsError } from "../safetensors/index.js";
import { copyFileAtomic, targetOfTempName, writeFileAtomic } from "../safetensors/node.js";
import { ConvertError } from "./errors.js";
import { HF_QUANT_CONFIG, type InputInfo } from "./input-node.js";
import {
  JOURNAL_FILE,
  type Journal,
  MARKER_DIR,
  readJournal,
  readMarker,
  removeQuiet,
  type ShardMarker,
  type TensorReport,
  writeJournal,
} from "./journal.js";
import type { ConvertPlan, PlannedShard } from "./plan.js";

/** What a failed write of the output needs to be retried. */
const RETRY_HINT = "check free space and permissions, then run again with --resume";

/** A failure writing `path` in the output directory, as a `ConvertError` with the retry hint. */
export function outputFailure(path: string, what: string, e: unknown): ConvertError {
  if (e instanceof ConvertError) return e;
  // The safetensors layer's write errors already start with the path and say what failed.
  if (e instanceof SafetensorsError && e.code === "write-failed")
    return new ConvertError("write-failed", `${e.message}; ${RETRY_HINT}`, { cause: e });
  const why = e instanceof Error ? e.message : String(e);
  return new ConvertError("write-failed", `${path}: ${what} failed (${why}); ${RETRY_HINT}`, { cause: e });
}

/** Input files the conversion rewrites or replaces, so never copies (nor hidden files, nor shards). */
const NOT_COPIED = new Set([INDEX_FILE_NAME, "config.json", HF_QUANT_CONFIG]);
const isCopied = (name: string) =>
  !name.startsWith(".") && !name.endsWith(".safetensors") && !NOT_COPIED.has(name);

/** The entries of directory `path` (only its files with `filesOnly`); a failure is a `read-failed` ConvertError. */
async function listDir(path: string, filesOnly = false): Promise<string[]> {
  try {
    const entries = await readdir(path, { withFileTypes: true });
    return entries.filter((e) => !filesOnly || e.isFile()).map((e) => e.name);
  } catch (e) {
    throw new ConvertError("read-failed", `${path}: cannot list the directory (${(e as Error).message})`, {
      cause: e,
    });
  }
}

function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

export type OutputState = "new" | "empty" | "resume" | "replace";

/**
 * Whether `out` may receive this job: it must not overlap the input; an existing directory must be
 * empty, hold an unfinished run of the same job (resume) or be replaced with `force`.
 */
export async function checkOutput(
  out: string,
  input: InputInfo,
  journal: Journal,
  o: { input: string; output: string; force?: boolean },
): Promise<OutputState> {
  const inside = input.isDir ? isInside(out, input.dir) : out === input.dir;
  if (inside || isInside(input.dir, out)) {
    const where = inside ? "be inside" : "contain";
    throw new ConvertError(
      "output-in-input",
      `${o.output}: the output directory must not ${where} the input ${o.input}`,
    );
  }
  const st = await stat(out).catch(() => null);
  if (st === null) return "new";
  if (!st.isDirectory())
    throw new ConvertError("output-exists", `${o.output}: exists and is not a directory`);
  const existing = await readJournal(out);
  if (existing && existing.jobId === journal.jobId) return "resume";
  // A parallel --part run may be writing the journal right now (its temporary file).
  const entries = (await listDir(out)).filter((e) => targetOfTempName(e) !== JOURNAL_FILE);
  if (entries.length === 0) return "empty";
  if (o.force) return "replace";
  if (existing) {
    throw new ConvertError(
      "output-exists",
      `${o.output}: holds an unfinished conversion of a different job (other input or options); use --force to replace it`,
    );
  }
  const complete = entries.includes(INDEX_FILE_NAME) || entries.some((e) => e.endsWith(".safetensors"));
  const holds = complete ? " (it holds a checkpoint)" : "";
  throw new ConvertError(
    "output-exists",
    `${o.output}: exists and is not an unfinished conversion of this job${holds}; use --force to replace it`,
  );
}

/** Create (or clear, for "replace") the output directory and record the job in it. */
export async function prepareOutput(out: string, state: OutputState, journal: Journal): Promise<void> {
  try {
    if (state === "replace") await rm(out, { recursive: true, force: true });
    await mkdir(out, { recursive: true });
  } catch (e) {
    throw outputFailure(out, "creating the output directory", e);
  }
  if (state === "resume") return;
  try {
    await writeJournal(out, journal);
  } catch (e) {
    throw outputFailure(join(out, JOURNAL_FILE), "writing the job journal", e);
  }
}

/** The marker of `shard` when the shard is complete for job `jobId` (marker and file size agree). */
export async function shardIsComplete(
  out: string,
  jobId: string,
  shard: PlannedShard,
): Promise<ShardMarker | null> {
  const m = await readMarker(out, shard.fileName);
  if (!m || m.jobId !== jobId || m.fileSize !== shard.layout.fileSize) return null;
  const s = await stat(join(out, shard.fileName)).catch(() => null);
  return s?.size === shard.layout.fileSize ? m : null;
}

/** Remove temporary files a killed run left for `shards` (only theirs: other parts may be writing). */
export async function removeStaleTemps(out: string, shards: readonly PlannedShard[]): Promise<void> {
  const names = new Set(shards.map((s) => s.fileName));
  for (const e of await listDir(out, true)) {
    const target = targetOfTempName(e);
    if (target !== null && names.has(target)) await removeQuiet(join(out, e));
  }
}

/**
 * Check every shard is complete, copy the input directory's side files (tokenizer, generation
 * config, README...), write config.json, then the index, and remove the journal and markers.
 * Returns the tensor reports of all shards in op order.
 */
export async function finalizeOutput(
  out: string,
  plan: ConvertPlan,
  input: InputInfo,
  journal: Journal,
  shownOutput: string,
): Promise<TensorReport[]> {
  const reports: TensorReport[] = [];
  const missing: string[] = [];
  for (const s of plan.shards) {
    const m = await shardIsComplete(out, journal.jobId, s);
    if (!m) missing.push(s.fileName);
    else reports.push(...m.tensors);
  }
  if (missing.length > 0) {
    throw new ConvertError(
      "incomplete",
      `${shownOutput}: ${missing.length} of ${plan.shards.length} shards are not complete (${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ", ..." : ""}); run the missing --part jobs (or --resume) first`,
    );
  }
  const write = async (name: string, fill: (path: string) => Promise<void>) => {
    try {
      await fill(join(out, name));
    } catch (e) {
      if (e instanceof SafetensorsError && e.code !== "write-failed") throw e; // reading the input
      throw outputFailure(join(out, name), `writing ${name}`, e);
    }
  };
  if (input.isDir) {
    for (const name of (await listDir(input.dir, true)).filter(isCopied)) {
      await write(name, (p) => copyFileAtomic(join(input.dir, name), p));
    }
  }
  const config = plan.config;
  if (config) await write("config.json", (p) => writeFileAtomic(p, `${JSON.stringify(config, null, 2)}\n`));
  const weightMap = new Map<string, string>();
  for (const s of plan.shards) for (const t of s.layout.tensors) weightMap.set(t.name, s.fileName);
  // The index is written last: its presence marks the output complete.
  await write(INDEX_FILE_NAME, (p) => writeFileAtomic(p, buildIndexJson(weightMap, plan.totalSize)));
  await rm(join(out, MARKER_DIR), { recursive: true, force: true }).catch((e) => {
    throw outputFailure(join(out, MARKER_DIR), "removing the completion markers", e);
  });
  await removeQuiet(join(out, JOURNAL_FILE));
  const order = new Map(plan.ops.map((op, i) => [op.input.data, i]));
  return reports.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
}
