/**
 * The output directory of a conversion (Node): whether it may be written (new, empty, the same
 * unfinished job, or fp8kit's own earlier output replaced with --force; never anything overlapping
 * the input, links followed), which shards are already complete, and the final step that copies
 * the input's side files and writes config.json, the output marker and the index last (its
 * presence marks the output complete). Every file is written atomically through the safetensors
 * layer's replaceable file system (fs-node.ts); a failure is a `ConvertError` naming the path,
 * saying what to do, with the Node error as `cause`.
 */
import { readdir, realpath, stat } from "node:fs/promises";
import { basename, dirname, join, sep } from "node:path";
import { ASCEND_DESCRIPTION_FILE } from "../checkpoint/index.js";
import { buildIndexJson, INDEX_FILE_NAME, SafetensorsError } from "../safetensors/index.js";
import { copyFileAtomic, fsAdvice, targetOfTempName, writeFileAtomic, writeFs } from "../safetensors/node.js";
import { ConvertError } from "./errors.js";
import { HF_QUANT_CONFIG, type InputInfo } from "./input-node.js";
import {
  JOURNAL_FILE,
  type Journal,
  MARKER_DIR,
  OUTPUT_MARKER,
  readJournal,
  readMarker,
  removeQuiet,
  type ShardMarker,
  type TensorReport,
  writeJournal,
} from "./journal.js";
import { isLockFile } from "./lock-node.js";
import type { ConvertPlan, PlannedShard } from "./plan.js";

/** What to do after a failed write of the output, by the kind of failure. */
function retryHint(e: unknown): string {
  const again = "then run the same command again (it resumes)";
  return fsAdvice(e) ? again : `check free space and permissions, ${again}`;
}

/** A failure writing `path` in the output directory, as a `ConvertError` saying what to do. */
export function outputFailure(path: string, what: string, e: unknown): ConvertError {
  if (e instanceof ConvertError) return e;
  // The safetensors layer's write errors already start with the path and say what failed.
  if (e instanceof SafetensorsError && e.code === "write-failed")
    return new ConvertError("write-failed", `${e.message}; ${retryHint(e)}`, { cause: e });
  const why = e instanceof Error ? e.message : String(e);
  const advice = fsAdvice(e);
  const message = `${path}: ${what} failed${advice ? `: ${advice}` : ""} (${why}); ${retryHint(e)}`;
  return new ConvertError("write-failed", message, { cause: e });
}

/**
 * Input files the conversion rewrites or replaces, so never copies (nor hidden files, nor shards):
 * any safetensors index (msModelSlim's `quant_model_weights.safetensors.index.json` too, which would
 * name shards that are not there) and Ascend description files, whatever their suffix (a stale one
 * beside the new one breaks vllm-ascend's lookup, ASCEND.md §1.2).
 */
const NOT_COPIED = new Set([INDEX_FILE_NAME, "config.json", HF_QUANT_CONFIG]);
const isCopied = (name: string) =>
  !name.startsWith(".") &&
  !name.endsWith(".safetensors") &&
  !name.endsWith(".safetensors.index.json") &&
  !/^quant_model_description.*\.json$/.test(name) &&
  !NOT_COPIED.has(name);

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

/**
 * `path` with every symbolic link resolved, also when it does not exist yet: the real path of its
 * nearest existing ancestor, followed by the rest.
 */
async function realPathOf(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(await realPathOf(parent), basename(path));
  }
}

/**
 * Refuse an output that overlaps the input in either direction, comparing real paths (links
 * followed): the output inside the input directory, the same directory, or an input directory or
 * file (a shard linked from elsewhere, as in the Hugging Face cache) inside the output.
 */
async function checkOverlap(out: string, input: InputInfo, o: { input: string; output: string }) {
  const outReal = await realPathOf(out);
  const inReal = await realPathOf(input.dir);
  const fail = (what: string) => {
    throw new ConvertError(
      "output-in-input",
      `${o.output}: the output directory must not ${what} (links followed: output ${outReal}, input ${inReal})`,
    );
  };
  if (outReal === inReal) fail(`be the input's own directory (${o.input})`);
  if (input.isDir && isInside(outReal, inReal)) fail(`be inside the input ${o.input}`);
  if (isInside(inReal, outReal)) fail(`contain the input ${o.input}`);
  for (const f of input.files) {
    const real = await realPathOf(join(input.dir, f.name));
    if (isInside(real, outReal)) fail(`contain the input file ${f.name} (${real})`);
  }
}

export type OutputState = "new" | "empty" | "resume" | "replace";

/** The names of `entries` for a message: the first few, then a count. */
function someOf(entries: readonly string[]): string {
  const shown = entries.slice(0, 4).join(", ");
  return entries.length > 4 ? `${shown}, and ${entries.length - 4} more` : shown;
}

/**
 * Whether `out` may receive this job: it must not overlap the input; an existing directory must be
 * empty, hold an unfinished run of the same job (resume), or be replaced with `force`, which only
 * ever replaces a directory fp8kit wrote (its job journal or output marker in it).
 */
export async function checkOutput(
  out: string,
  input: InputInfo,
  journal: Journal,
  o: { input: string; output: string; force?: boolean },
): Promise<OutputState> {
  await checkOverlap(out, input, o);
  const st = await stat(out).catch(() => null);
  if (st === null) return "new";
  if (!st.isDirectory())
    throw new ConvertError("output-exists", `${o.output}: exists and is not a directory`);
  const existing = await readJournal(out);
  if (existing && existing.jobId === journal.jobId) return "resume";
  // A parallel --part run may hold its lock or be writing the journal right now.
  const entries = (await listDir(out)).filter((e) => !isLockFile(e) && targetOfTempName(e) !== JOURNAL_FILE);
  if (entries.length === 0) return "empty";
  const fp8kits = existing !== null || entries.includes(OUTPUT_MARKER);
  if (o.force && fp8kits) return "replace";
  if (existing) {
    throw new ConvertError(
      "output-exists",
      `${o.output}: holds an unfinished conversion of a different job (other input or options); use --force to replace it`,
    );
  }
  if (fp8kits) {
    throw new ConvertError(
      "output-exists",
      `${o.output}: holds an earlier fp8kit conversion; use --force to replace it`,
    );
  }
  throw new ConvertError(
    "output-exists",
    `${o.output}: exists and was not written by fp8kit (it holds ${someOf(entries)}); --force replaces only fp8kit's own output: choose an empty or new directory, or empty this one yourself`,
  );
}

/** Create the output directory (and its parents); a failure names it and says what to do. */
export async function makeOutputDir(out: string): Promise<void> {
  try {
    await writeFs().mkdir(out);
  } catch (e) {
    throw outputFailure(out, "creating the output directory", e);
  }
}

/** Clear (for "replace": everything but the lock files) and record the job in the output directory. */
export async function prepareOutput(out: string, state: OutputState, journal: Journal): Promise<void> {
  if (state === "resume") return;
  try {
    if (state === "replace") {
      for (const e of await listDir(out)) if (!isLockFile(e)) await writeFs().rm(join(out, e));
    }
    await writeJournal(out, journal);
  } catch (e) {
    throw outputFailure(join(out, JOURNAL_FILE), "recording the job", e);
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

/**
 * Remove temporary files a killed or failed run left: those of `shards` (another part may be
 * writing the others), or with `all` (a whole run or finalize, holding the directory's lock) every
 * one, the markers' included.
 */
export async function removeStaleTemps(
  out: string,
  shards: readonly PlannedShard[],
  all: boolean,
): Promise<void> {
  const names = new Set(shards.map((s) => s.fileName));
  const stale = (e: string) => {
    const target = targetOfTempName(e);
    return target !== null && (all || names.has(target));
  };
  for (const e of (await listDir(out, true)).filter(stale)) await removeQuiet(join(out, e));
  if (!all) return;
  const markers = join(out, MARKER_DIR);
  const inMarkers = await readdir(markers).catch(() => [] as string[]);
  for (const e of inMarkers.filter(stale)) await removeQuiet(join(markers, e));
}

/**
 * The tensor reports of `shards` from their completion markers, in op order; fails (`incomplete`)
 * naming the shards not complete.
 */
export async function completedReports(
  out: string,
  plan: ConvertPlan,
  shards: readonly PlannedShard[],
  jobId: string,
  shownOutput: string,
): Promise<TensorReport[]> {
  const reports: TensorReport[] = [];
  const missing: string[] = [];
  for (const s of shards) {
    const m = await shardIsComplete(out, jobId, s);
    if (!m) missing.push(s.fileName);
    else reports.push(...m.tensors);
  }
  if (missing.length > 0) {
    throw new ConvertError(
      "incomplete",
      `${shownOutput}: ${missing.length} of ${shards.length} shards are not complete (${someOf(missing)}); run the missing --part jobs (or --resume) first`,
    );
  }
  const order = new Map(plan.ops.map((op, i) => [op.input.data, i]));
  return reports.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
}

/**
 * Once every shard is complete: copy the input directory's side files (tokenizer, generation
 * config, README...), write config.json, the output marker, then the index, and remove the journal
 * and markers.
 */
export async function finalizeOutput(
  out: string,
  plan: ConvertPlan,
  input: InputInfo,
  journal: Journal,
): Promise<void> {
  const write = async (name: string, fill: (path: string) => Promise<void>) => {
    try {
      await fill(join(out, name));
    } catch (e) {
      if (e instanceof SafetensorsError && e.code !== "write-failed") throw e; // reading the input
      throw outputFailure(join(out, name), `writing ${name}`, e);
    }
  };
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  if (input.isDir) {
    for (const name of (await listDir(input.dir, true)).filter(isCopied)) {
      await write(name, (p) => copyFileAtomic(join(input.dir, name), p));
    }
  }
  const config = plan.config;
  if (config) await write("config.json", (p) => writeFileAtomic(p, json(config)));
  // ModelOpt's own file, which vLLM reads (as ModelOpt writes it, with a 4-space indent).
  const hfq = plan.hfQuantConfig;
  if (hfq) await write(HF_QUANT_CONFIG, (p) => writeFileAtomic(p, `${JSON.stringify(hfq, null, 4)}\n`));
  // Ascend's description file, which vllm-ascend reads instead of a quantization_config.
  const desc = plan.ascendDescription;
  if (desc) await write(ASCEND_DESCRIPTION_FILE, (p) => writeFileAtomic(p, json(desc)));
  await write(OUTPUT_MARKER, (p) => writeFileAtomic(p, json(journal)));
  const weightMap = new Map<string, string>();
  for (const s of plan.shards) for (const t of s.layout.tensors) weightMap.set(t.name, s.fileName);
  // The index is written last: its presence marks the output complete.
  await write(INDEX_FILE_NAME, (p) => writeFileAtomic(p, buildIndexJson(weightMap, plan.totalSize)));
  try {
    await writeFs().rm(join(out, MARKER_DIR));
  } catch (e) {
    throw outputFailure(join(out, MARKER_DIR), "removing the completion markers", e);
  }
  await removeQuiet(join(out, JOURNAL_FILE));
}

/** Forget the completion of `shards` (a failed verification): the next run writes them again. */
export async function forgetShards(out: string, shards: readonly string[]): Promise<void> {
  for (const s of shards) await removeQuiet(join(out, MARKER_DIR, `${s}.json`));
}
