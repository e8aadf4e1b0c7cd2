import { ASCEND_DESCRIPTION_FILE } from "../checkpoint/index.js";
import {
  type CheckpointDir,
  INDEX_FILE_NAME,
  parseIndexJson,
  SafetensorsError,
  SafetensorsFile,
  type ShardIndex,
  type TensorInfo,
} from "../safetensors/index.js";
import { ReportError, type ReportErrorCode } from "./errors.js";
import { type Finding, finding } from "./findings.js";

/** One shard whose header could be read. */
export interface ShardHeader {
  file: string;
  /** File size in bytes. */
  size: number;
  /** Length N of the JSON header. */
  headerLength: number;
  /** Absolute offset of the data buffer (8 + N). */
  dataStart: number;
  metadata: Record<string, string> | null;
  tensors: TensorInfo[];
}

/** A tensor of the checkpoint with the shard it lives in and its absolute byte range there. */
export interface SnapshotTensor extends TensorInfo {
  shard: string;
  fileOffsets: [number, number];
}

/**
 * Everything the headers of a checkpoint say, read leniently: unlike `Checkpoint.open`, which
 * throws on the first inconsistency, a snapshot keeps going and records each problem as a finding,
 * so `lint` can list them all. Only headers, config.json, hf_quant_config.json, Ascend's
 * quant_model_description.json and the index are read.
 */
export interface Snapshot {
  name: string;
  files: string[];
  config: Record<string, unknown> | null;
  /** NVIDIA ModelOpt's `hf_quant_config.json`, when present. */
  hfQuantConfig: Record<string, unknown> | null;
  /**
   * Ascend's `quant_model_description.json` as parsed (any JSON value; `checkAscendDescription`
   * judges it), or null when absent or not JSON (then a `bad-description` problem says why).
   */
  ascendDescription: unknown;
  index: ShardIndex | null;
  shards: ShardHeader[];
  tensors: SnapshotTensor[];
  byName: Map<string, SnapshotTensor>;
  /** Problems met while reading (unreadable files, index/shard disagreements...). */
  problems: Finding[];
}

/** Records one problem (the arguments of `finding`). */
type ProblemSink = (...f: Parameters<typeof finding>) => void;

/** Failures of a remote server rather than of a file: fatal, never a finding per shard. */
const ACCESS_FAILURES: ReadonlySet<string> = new Set([
  "range-ignored",
  "unauthorized",
  "timeout",
  "http-error",
]);

/** Shard headers read at once (as `Checkpoint.open` does). */
const HEADER_READ_CONCURRENCY = 16;

/** An error's message, without the `file: ` it may start with (a finding names its file already). */
function message(e: unknown, file?: string): string {
  const m = e instanceof Error ? e.message : String(e);
  return file !== undefined && m.startsWith(`${file}: `) ? m.slice(file.length + 2) : m;
}

/** Reads config, index and every shard header of `dir` into a snapshot (see `Snapshot`). */
export async function readSnapshot(dir: CheckpointDir): Promise<Snapshot> {
  const problems: Finding[] = [];
  const problem: ProblemSink = (...f) => problems.push(finding(...f));
  const files = await dir.list();
  const fileSet = new Set(files);
  const readJson = async (file: string) => {
    if (!fileSet.has(file)) return null;
    let text: string | null;
    try {
      text = await dir.readText(file);
    } catch (e) {
      problem("error", "unreadable-file", file, null, `cannot read (${message(e, file)})`, "check the file");
      return null;
    }
    if (text === null) return null;
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
      return v as Record<string, unknown>;
    } catch (e) {
      problem("error", "bad-config", file, null, `not valid JSON (${message(e)})`, `fix or restore ${file}`);
      return null;
    }
  };
  const config = await readJson("config.json");
  const hfQuantConfig = await readJson("hf_quant_config.json");
  const ascendDescription = await readDescription(dir, fileSet, problem);

  let index: ShardIndex | null = null;
  if (fileSet.has(INDEX_FILE_NAME)) {
    try {
      const text = await dir.readText(INDEX_FILE_NAME);
      if (text !== null) index = parseIndexJson(text, INDEX_FILE_NAME);
    } catch (e) {
      const fix = `rewrite ${INDEX_FILE_NAME} from the shards`;
      problem("error", "bad-index", INDEX_FILE_NAME, null, message(e, INDEX_FILE_NAME), fix);
    }
  }
  const onDisk = files.filter((f) => f.endsWith(".safetensors") && !f.startsWith(".")).sort();
  const shardNames = index ? [...index.shards] : onDisk;
  if (index) {
    const listed = new Set(index.shards);
    for (const f of onDisk.filter((f) => !listed.has(f))) {
      const fix = "delete it or add its tensors to the weight_map";
      problem("warning", "unindexed-shard", f, null, `not referenced by ${INDEX_FILE_NAME}`, fix);
    }
  }
  if (shardNames.length === 0 && !problems.some((p) => p.code === "bad-index")) {
    const what = `no ${INDEX_FILE_NAME} and no .safetensors files`;
    problem("error", "no-safetensors", dir.name, null, what, "point fp8kit at a checkpoint directory");
  }

  // Headers are read HEADER_READ_CONCURRENCY at a time; results (and problems) keep shard order.
  const slots: (ShardHeader | Finding)[] = [];
  const readOne = async (file: string): Promise<ShardHeader | Finding> => {
    if (!fileSet.has(file)) {
      const what = `names shard ${file}, which does not exist`;
      const fix = `restore ${file} or rebuild the index`;
      return finding("error", "index-missing-shard", INDEX_FILE_NAME, null, what, fix);
    }
    let source: Awaited<ReturnType<CheckpointDir["open"]>> | null = null;
    try {
      source = await dir.open(file);
      const f = await SafetensorsFile.open(source);
      return {
        file,
        size: source.size,
        headerLength: f.header.headerLength,
        dataStart: f.dataStart,
        metadata: f.metadata,
        tensors: [...f.tensors],
      };
    } catch (e) {
      // A server that refuses us (no token, Range ignored, silent, failing) is no fault of the shard.
      if (e instanceof SafetensorsError && ACCESS_FAILURES.has(e.code)) throw e;
      const code = source === null ? "unreadable-file" : "bad-header";
      return finding("error", code, file, null, message(e, file), "re-download or rewrite the shard");
    } finally {
      await source?.close?.();
    }
  };
  let next = 0;
  const worker = async () => {
    for (let k = next++; k < shardNames.length; k = next++) slots[k] = await readOne(shardNames[k]);
  };
  await Promise.all(Array.from({ length: Math.min(HEADER_READ_CONCURRENCY, shardNames.length) }, worker));
  const shards: ShardHeader[] = [];
  for (const slot of slots) {
    if ("code" in slot) problems.push(slot);
    else shards.push(slot);
  }

  const byName = new Map<string, SnapshotTensor>();
  const tensors: SnapshotTensor[] = [];
  for (const sh of shards) {
    for (const t of sh.tensors) {
      const prev = byName.get(t.name);
      if (prev) {
        const fix = "keep one copy and rebuild the index";
        problem("error", "duplicate-tensor", sh.file, t.name, `also in ${prev.shard}`, fix);
        continue;
      }
      const st: SnapshotTensor = {
        ...t,
        shard: sh.file,
        fileOffsets: [sh.dataStart + t.dataOffsets[0], sh.dataStart + t.dataOffsets[1]],
      };
      byName.set(t.name, st);
      tensors.push(st);
    }
  }
  if (index) checkIndex(index, shards, byName, problem);
  return {
    name: dir.name,
    files,
    config,
    hfQuantConfig,
    ascendDescription,
    index,
    shards,
    tensors,
    byName,
    problems,
  };
}

/**
 * The description file parsed, whatever JSON it holds, or null (absent, unreadable, not JSON: a
 * problem, never fatal, since the shards can still be inspected).
 */
async function readDescription(
  dir: CheckpointDir,
  fileSet: ReadonlySet<string>,
  problem: ProblemSink,
): Promise<unknown> {
  const file = ASCEND_DESCRIPTION_FILE;
  if (!fileSet.has(file)) return null;
  try {
    const text = await dir.readText(file);
    if (text === null) return null;
    const v: unknown = JSON.parse(text);
    if (v === null) problem("error", "bad-description", file, null, "not a JSON object", `rewrite ${file}`);
    return v;
  } catch (e) {
    problem("error", "bad-description", file, null, `cannot read (${message(e, file)})`, `rewrite ${file}`);
    return null;
  }
}

function checkIndex(
  index: ShardIndex,
  shards: readonly ShardHeader[],
  byName: ReadonlyMap<string, SnapshotTensor>,
  problem: ProblemSink,
): void {
  const readable = new Set(shards.map((s) => s.file));
  for (const t of byName.values()) {
    const mapped = index.weightMap.get(t.name);
    if (mapped === undefined) {
      const fix = `add "${t.name}": "${t.shard}" to the weight_map`;
      problem("error", "index-extra-tensor", t.shard, t.name, `in ${t.shard} but not in the weight_map`, fix);
    } else if (mapped !== t.shard) {
      const what = `mapped to ${mapped} but stored in ${t.shard}`;
      const fix = `map "${t.name}" to "${t.shard}"`;
      problem("error", "index-wrong-shard", INDEX_FILE_NAME, t.name, what, fix);
    }
  }
  for (const [tensor, shard] of index.weightMap) {
    if (!byName.has(tensor) && readable.has(shard)) {
      const what = `mapped to ${shard}, which does not hold it`;
      const fix = `remove "${tensor}" from the weight_map or restore the tensor`;
      problem("error", "index-missing-tensor", INDEX_FILE_NAME, tensor, what, fix);
    }
  }
  let total = 0;
  for (const t of byName.values()) total += t.byteLength;
  const allRead = shards.length === index.shards.length;
  const fix = `set metadata.total_size to ${total}`;
  if (index.totalSize === null) {
    problem("warning", "index-total-size", INDEX_FILE_NAME, null, "metadata.total_size is missing", fix);
  } else if (allRead && index.totalSize !== total) {
    const files = shards.reduce((s, sh) => s + sh.size, 0);
    const why = index.totalSize === files ? " (it is the sum of file sizes, not of tensor bytes)" : "";
    const what = `metadata.total_size is ${index.totalSize}, the tensors hold ${total} bytes${why}`;
    problem("error", "index-total-size", INDEX_FILE_NAME, null, what, fix);
  }
}

/** Findings that leave nothing to inspect, and the error code each is thrown with. */
const FATAL: ReadonlyMap<string, ReportErrorCode> = new Map([
  ["no-safetensors", "no-safetensors"],
  ["bad-config", "invalid-config"],
  ["bad-index", "invalid-index"],
]);

/**
 * Throws the first problem that leaves nothing sensible to inspect or audit (no shards, a
 * config.json that is not JSON, an index that cannot be parsed or points outside the directory);
 * returns the snapshot otherwise.
 */
export function throwIfFatal(s: Snapshot): Snapshot {
  const p = s.problems.find((f) => FATAL.has(f.code));
  if (p) throw new ReportError(FATAL.get(p.code)!, `${s.name}/${p.file}: ${p.message}`);
  return s;
}
