import {
  type CheckpointDir,
  INDEX_FILE_NAME,
  parseIndexJson,
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
 * so `lint` can list them all. Only headers, config.json, hf_quant_config.json and the index are
 * read.
 */
export interface Snapshot {
  name: string;
  files: string[];
  config: Record<string, unknown> | null;
  /** NVIDIA ModelOpt's `hf_quant_config.json`, when present. */
  hfQuantConfig: Record<string, unknown> | null;
  index: ShardIndex | null;
  shards: ShardHeader[];
  tensors: SnapshotTensor[];
  byName: Map<string, SnapshotTensor>;
  /** Problems met while reading (unreadable files, index/shard disagreements...). */
  problems: Finding[];
}

function parseJsonFile(text: string, file: string, problems: Finding[]): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (e) {
    problems.push(
      finding(
        "error",
        "bad-config",
        file,
        null,
        `not valid JSON (${(e as Error).message})`,
        `fix or restore ${file}`,
      ),
    );
    return null;
  }
}

/** Shard headers read at once (as `Checkpoint.open` does). */
const HEADER_READ_CONCURRENCY = 16;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Reads config, index and every shard header of `dir` into a snapshot (see `Snapshot`). */
export async function readSnapshot(dir: CheckpointDir): Promise<Snapshot> {
  const problems: Finding[] = [];
  const files = await dir.list();
  const fileSet = new Set(files);
  const readJson = async (file: string) => {
    if (!fileSet.has(file)) return null;
    let text: string | null;
    try {
      text = await dir.readText(file);
    } catch (e) {
      problems.push(
        finding("error", "unreadable-file", file, null, `cannot read (${message(e)})`, "check the file"),
      );
      return null;
    }
    return text === null ? null : parseJsonFile(text, file, problems);
  };
  const config = await readJson("config.json");
  const hfQuantConfig = await readJson("hf_quant_config.json");

  let index: ShardIndex | null = null;
  if (fileSet.has(INDEX_FILE_NAME)) {
    try {
      const text = await dir.readText(INDEX_FILE_NAME);
      if (text !== null) index = parseIndexJson(text, INDEX_FILE_NAME);
    } catch (e) {
      problems.push(
        finding(
          "error",
          "bad-index",
          INDEX_FILE_NAME,
          null,
          message(e),
          `rewrite ${INDEX_FILE_NAME} from the shards`,
        ),
      );
    }
  }
  const onDisk = files.filter((f) => f.endsWith(".safetensors") && !f.startsWith(".")).sort();
  const shardNames = index ? [...index.shards] : onDisk;
  if (index) {
    const listed = new Set(index.shards);
    for (const f of onDisk) {
      if (!listed.has(f)) {
        problems.push(
          finding(
            "warning",
            "unindexed-shard",
            f,
            null,
            `not referenced by ${INDEX_FILE_NAME}`,
            "delete it or add its tensors to the weight_map",
          ),
        );
      }
    }
  }
  if (shardNames.length === 0 && !problems.some((p) => p.code === "bad-index")) {
    problems.push(
      finding(
        "error",
        "no-safetensors",
        dir.name,
        null,
        `no ${INDEX_FILE_NAME} and no .safetensors files`,
        "point fp8kit at a checkpoint directory",
      ),
    );
  }

  // Headers are read HEADER_READ_CONCURRENCY at a time; results (and problems) keep shard order.
  const slots: { header: ShardHeader | null; problem: Finding | null }[] = [];
  const readOne = async (file: string): Promise<{ header: ShardHeader | null; problem: Finding | null }> => {
    if (!fileSet.has(file)) {
      return {
        header: null,
        problem: finding(
          "error",
          "index-missing-shard",
          INDEX_FILE_NAME,
          null,
          `names shard ${file}, which does not exist`,
          `restore ${file} or rebuild the index`,
        ),
      };
    }
    let source: Awaited<ReturnType<CheckpointDir["open"]>> | null = null;
    try {
      source = await dir.open(file);
      const f = await SafetensorsFile.open(source);
      const header: ShardHeader = {
        file,
        size: source.size,
        headerLength: f.header.headerLength,
        dataStart: f.dataStart,
        metadata: f.metadata,
        tensors: [...f.tensors],
      };
      return { header, problem: null };
    } catch (e) {
      const code = source === null ? "unreadable-file" : "bad-header";
      return {
        header: null,
        problem: finding("error", code, file, null, message(e), "re-download or rewrite the shard"),
      };
    } finally {
      await source?.close?.();
    }
  };
  let next = 0;
  const worker = async () => {
    while (next < shardNames.length) {
      const k = next++;
      slots[k] = await readOne(shardNames[k]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(HEADER_READ_CONCURRENCY, shardNames.length) }, worker));
  const shards: ShardHeader[] = [];
  for (const slot of slots) {
    if (slot.header) shards.push(slot.header);
    if (slot.problem) problems.push(slot.problem);
  }

  const byName = new Map<string, SnapshotTensor>();
  const tensors: SnapshotTensor[] = [];
  for (const sh of shards) {
    for (const t of sh.tensors) {
      const prev = byName.get(t.name);
      if (prev) {
        problems.push(
          finding(
            "error",
            "duplicate-tensor",
            sh.file,
            t.name,
            `also in ${prev.shard}`,
            "keep one copy and rebuild the index",
          ),
        );
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
  if (index) checkIndex(index, shards, byName, problems);
  return { name: dir.name, files, config, hfQuantConfig, index, shards, tensors, byName, problems };
}

function checkIndex(
  index: ShardIndex,
  shards: readonly ShardHeader[],
  byName: ReadonlyMap<string, SnapshotTensor>,
  problems: Finding[],
): void {
  const readable = new Set(shards.map((s) => s.file));
  for (const t of byName.values()) {
    const mapped = index.weightMap.get(t.name);
    if (mapped === undefined) {
      problems.push(
        finding(
          "error",
          "index-extra-tensor",
          t.shard,
          t.name,
          `in ${t.shard} but not in the weight_map`,
          `add "${t.name}": "${t.shard}" to the weight_map`,
        ),
      );
    } else if (mapped !== t.shard) {
      problems.push(
        finding(
          "error",
          "index-wrong-shard",
          INDEX_FILE_NAME,
          t.name,
          `mapped to ${mapped} but stored in ${t.shard}`,
          `map "${t.name}" to "${t.shard}"`,
        ),
      );
    }
  }
  for (const [tensor, shard] of index.weightMap) {
    if (!byName.has(tensor) && readable.has(shard)) {
      problems.push(
        finding(
          "error",
          "index-missing-tensor",
          INDEX_FILE_NAME,
          tensor,
          `mapped to ${shard}, which does not hold it`,
          `remove "${tensor}" from the weight_map or restore the tensor`,
        ),
      );
    }
  }
  let total = 0;
  for (const t of byName.values()) total += t.byteLength;
  const allRead = shards.length === index.shards.length;
  if (index.totalSize === null) {
    problems.push(
      finding(
        "warning",
        "index-total-size",
        INDEX_FILE_NAME,
        null,
        "metadata.total_size is missing",
        `set metadata.total_size to ${total}`,
      ),
    );
  } else if (allRead && index.totalSize !== total) {
    const files = shards.reduce((s, sh) => s + sh.size, 0);
    const why = index.totalSize === files ? " (it is the sum of file sizes, not of tensor bytes)" : "";
    problems.push(
      finding(
        "error",
        "index-total-size",
        INDEX_FILE_NAME,
        null,
        `metadata.total_size is ${index.totalSize}, the tensors hold ${total} bytes${why}`,
        `set metadata.total_size to ${total}`,
      ),
    );
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
 * config.json that is not JSON, an index that cannot be parsed or points outside the directory).
 */
export function throwIfFatal(s: Snapshot): void {
  const p = s.problems.find((f) => FATAL.has(f.code));
  if (p) throw new ReportError(FATAL.get(p.code)!, `${s.name}/${p.file}: ${p.message}`);
}
