import { SafetensorsError } from "./errors.js";
import { isPlainObject, scanJson } from "./json-scan.js";
import { MAX_INDEX_SIZE, MAX_SHARDS } from "./limits.js";

/** The standard name of a sharded checkpoint's index. */
export const INDEX_FILE_NAME = "model.safetensors.index.json";

/** A validated `model.safetensors.index.json`. */
export interface ShardIndex {
  /** The `metadata` object as written (usually `{ total_size }`; may be empty or absent). */
  metadata: Record<string, unknown>;
  /** `metadata.total_size` when present and a non-negative integer. */
  totalSize: number | null;
  /** Tensor name to shard file name, in file order. */
  weightMap: Map<string, string>;
  /** Distinct shard file names, in order of first appearance. */
  shards: string[];
}

/**
 * Throws unless `shard` is a plain file name inside the checkpoint directory: no path separators,
 * no `..`, not absolute, no URL scheme (`://`), no NUL. huggingface.js rejects the same names;
 * a hostile index must not make us open files outside the directory.
 */
export function checkShardName(shard: string, indexName = INDEX_FILE_NAME): void {
  // empty, ".", "..", a separator (a URL's "://" has one), a NUL or a drive letter
  if (/^\.{0,2}$|[/\\\0]|^[a-zA-Z]:/.test(shard)) {
    throw new SafetensorsError(
      "invalid-index",
      `${indexName}: shard name ${JSON.stringify(shard)} is not a plain file name in the checkpoint directory`,
    );
  }
}

/**
 * Parse and validate index JSON text: an object with a `weight_map` of tensor name to shard file
 * name (strings; no duplicate keys; safe shard names; at most MAX_SHARDS shards) and an optional
 * `metadata` object.
 */
export function parseIndexJson(text: string, indexName = INDEX_FILE_NAME): ShardIndex {
  function fail(what: string, cause?: unknown): never {
    throw new SafetensorsError(
      "invalid-index",
      `${indexName}: ${what}`,
      cause === undefined ? undefined : { cause },
    );
  }
  if (text.length > MAX_INDEX_SIZE) fail(`index is larger than the limit of ${MAX_INDEX_SIZE} bytes`);
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    fail(`not valid JSON (${(e as Error).message})`, e);
  }
  if (!isPlainObject(root)) fail("not a JSON object");
  const problem = scanJson(text);
  if (problem?.kind === "duplicate-key") fail(`duplicate key "${problem.key}"`);
  const metadata = root.metadata ?? {};
  if (!isPlainObject(metadata)) fail("metadata is not an object");
  if (!isPlainObject(root.weight_map)) fail("weight_map is missing or not an object");
  const weightMap = new Map<string, string>();
  const shards = new Set<string>();
  for (const [tensor, shard] of Object.entries(root.weight_map)) {
    if (typeof shard !== "string") fail(`weight_map entry "${tensor}" is not a string`);
    if (!shards.has(shard)) {
      checkShardName(shard, indexName);
      shards.add(shard);
      if (shards.size > MAX_SHARDS) fail(`more than ${MAX_SHARDS} shards`);
    }
    weightMap.set(tensor, shard);
  }
  const ts = metadata.total_size;
  const totalSize = typeof ts === "number" && Number.isSafeInteger(ts) && ts >= 0 ? ts : null;
  return { metadata, totalSize, weightMap, shards: [...shards] };
}

/**
 * Build index JSON the way transformers' `save_pretrained` writes it: `{"metadata": {...,
 * "total_size": N}, "weight_map": {...}}` with keys sorted, 2-space indent and a final newline.
 * `totalSize` is the sum of tensor bytes (not file sizes), as huggingface_hub computes it.
 */
export function buildIndexJson(
  weightMap: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
  totalSize: number,
  extraMetadata: Readonly<Record<string, unknown>> = {},
): string {
  const entries = weightMap instanceof Map ? [...weightMap.entries()] : Object.entries(weightMap);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const metaKeys = Object.keys({ ...extraMetadata, total_size: 0 }).sort();
  const metadata = Object.fromEntries(
    metaKeys.map((k) => [k, k === "total_size" ? totalSize : extraMetadata[k]]),
  );
  const lines = entries.map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  const metaText = JSON.stringify(metadata, null, 2).replace(/\n/g, "\n  ");
  const mapText = lines.length === 0 ? "{}" : `{\n${lines.join(",\n")}\n  }`;
  return `{\n  "metadata": ${metaText},\n  "weight_map": ${mapText}\n}\n`;
}
