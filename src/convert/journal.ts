/**
 * The job journal `.fp8kit-job.json` and per-shard completion markers `.fp8kit-done/<shard>.json`
 * in the output directory. The journal records the job (options, input fingerprint, planned
 * shards); its `jobId` is a hash of exactly that, so a restarted or parallel (`--part`) run can tell
 * "the same job, unfinished" from anything else. A marker is written (atomically) only after its
 * shard was fsynced and renamed into place, and records the shard's size and per-tensor error
 * statistics; one file per shard means parts on different machines never write the same file.
 * Both disappear when the job is finalized.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ErrorStats } from "../quant/error-stats.js";
import { writeFileAtomic, writeFs } from "../safetensors/node.js";
import type { ConvertPlan, OpAction, ResolvedOptions } from "./plan.js";

export const JOURNAL_FILE = ".fp8kit-job.json";
/**
 * Written into a finished output (the journal, kept): what made it. It is how `--force` knows a
 * directory is fp8kit's own output and may be replaced.
 */
export const OUTPUT_MARKER = ".fp8kit-output.json";
export const MARKER_DIR = ".fp8kit-done";

export interface InputFile {
  name: string;
  size: number;
  mtimeMs: number;
}

export interface Journal {
  tool: "fp8kit-convert";
  version: 1;
  jobId: string;
  options: ResolvedOptions;
  input: { files: InputFile[] };
  shards: { fileName: string; fileSize: number }[];
}

export interface TensorReport {
  name: string;
  output: string;
  action: OpAction;
  stats: ErrorStats | null;
}

export interface ShardMarker {
  jobId: string;
  fileName: string;
  fileSize: number;
  tensors: TensorReport[];
}

/** Build the journal of `plan` (the jobId hashes options, input files and planned shards). */
export function makeJournal(plan: ConvertPlan, files: InputFile[]): Journal {
  const options = plan.options;
  const shards = plan.shards.map((s) => ({ fileName: s.fileName, fileSize: s.layout.fileSize }));
  const body = JSON.stringify({ options, files, shards });
  const jobId = createHash("sha256").update(body).digest("hex").slice(0, 32);
  return { tool: "fp8kit-convert", version: 1, jobId, options, input: { files }, shards };
}

export async function readJournal(dir: string): Promise<Journal | null> {
  try {
    const j = JSON.parse(await readFile(join(dir, JOURNAL_FILE), "utf8")) as Journal;
    return j && j.tool === "fp8kit-convert" && typeof j.jobId === "string" ? j : null;
  } catch {
    return null;
  }
}

export async function writeJournal(dir: string, j: Journal): Promise<void> {
  await writeFileAtomic(join(dir, JOURNAL_FILE), `${JSON.stringify(j, null, 2)}\n`);
}

export async function readMarker(dir: string, fileName: string): Promise<ShardMarker | null> {
  try {
    return JSON.parse(await readFile(join(dir, MARKER_DIR, `${fileName}.json`), "utf8")) as ShardMarker;
  } catch {
    return null;
  }
}

export async function writeMarker(dir: string, m: ShardMarker): Promise<void> {
  await writeFs().mkdir(join(dir, MARKER_DIR));
  await writeFileAtomic(join(dir, MARKER_DIR, `${m.fileName}.json`), JSON.stringify(m));
}

export async function removeQuiet(path: string): Promise<void> {
  await writeFs()
    .unlink(path)
    .catch(() => {});
}
