import type { CheckpointDir } from "./checkpoint-dir.js";
import { SafetensorsError } from "./errors.js";
import type { ParsedHeader, TensorInfo } from "./header.js";
import { INDEX_FILE_NAME, parseIndexJson, type ShardIndex } from "./index-json.js";
import { MAX_INDEX_SIZE } from "./limits.js";
import { readTensorRange, SafetensorsFile, TensorTable } from "./reader.js";
import type { ByteSource } from "./source.js";

/** A tensor of a checkpoint: its header entry plus where it lives. */
export interface CheckpointTensor extends TensorInfo {
  /** Shard file name (relative to the checkpoint directory). */
  shard: string;
  /** Absolute `[begin, end)` byte range in the shard file. */
  fileOffsets: [number, number];
}

/** Opens a shard by its file name; the Node entry point opens files, a browser one wraps `File`s. */
export type ShardOpener = (shard: string) => Promise<ByteSource>;

/** At most this many shard headers are read at once when a checkpoint opens. */
const HEADER_READ_CONCURRENCY = 16;

/**
 * A checkpoint of one or more safetensors shards, read tensor by tensor. Opening reads every
 * shard's header (closing it again), checks the index against the shards in both directions (each
 * mapped tensor is in its shard; each shard tensor is mapped to that shard) or, without an index,
 * that no tensor name appears twice. Data reads reopen a shard lazily and keep it open until
 * `close()`. This class is browser-safe; `openCheckpoint` (Node) finds shards in a directory.
 */
export class Checkpoint extends TensorTable<CheckpointTensor> {
  private readonly metadataOf = new Map<string, Record<string, string> | null>();
  /** Shards opened for data reads (a rejected open is forgotten, so the next read retries). */
  private readonly opened = new Map<string, Promise<ByteSource>>();
  /** Tensor data bytes read so far (`readBytes`, `readRange`; headers not counted). */
  bytesRead = 0;

  private constructor(
    readonly name: string,
    readonly index: ShardIndex | null,
    private readonly opener: ShardOpener,
  ) {
    super();
  }

  /** Open shards `shards` (file names passed to `opener`), validating against `index` when given. */
  static async open(options: {
    shards: readonly string[];
    opener: ShardOpener;
    index?: ShardIndex | null;
    name?: string;
  }): Promise<Checkpoint> {
    const { shards, index = null } = options;
    const name = options.name ?? (index ? INDEX_FILE_NAME : "checkpoint");
    const ck = new Checkpoint(name, index, options.opener);
    const headers: ParsedHeader[] = [];
    let next = 0;
    const worker = async () => {
      while (next < shards.length) {
        const i = next++;
        headers[i] = await ck.readShardHeader(shards[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(HEADER_READ_CONCURRENCY, shards.length) }, worker));
    const fail = (what: string) => {
      throw new SafetensorsError("invalid-index", `${name}: ${what}`);
    };
    shards.forEach((shard, i) => {
      const { tensors, dataStart, metadata } = headers[i];
      ck.metadataOf.set(shard, metadata);
      for (const t of tensors) {
        const prev = ck.byName.get(t.name);
        if (prev !== undefined) fail(`tensor "${t.name}" is in both ${prev.shard} and ${shard}`);
        const mapped = index?.weightMap.get(t.name);
        if (index && mapped !== shard) {
          const where = mapped === undefined ? "is not in the weight_map" : `is mapped to ${mapped}`;
          fail(`tensor "${t.name}" found in ${shard} but ${where}`);
        }
        const fileOffsets: [number, number] = [dataStart + t.dataOffsets[0], dataStart + t.dataOffsets[1]];
        ck.byName.set(t.name, { ...t, shard, fileOffsets });
      }
    });
    for (const [tensor, shard] of index?.weightMap ?? []) {
      if (!ck.byName.has(tensor))
        fail(`tensor "${tensor}" is mapped to ${shard} but that shard does not hold it`);
    }
    return ck;
  }

  private async readShardHeader(shard: string): Promise<ParsedHeader> {
    let source: ByteSource;
    try {
      source = await this.opener(shard);
    } catch (e) {
      if (e instanceof SafetensorsError && e.code !== "read-failed" && e.code !== "not-found") throw e;
      throw new SafetensorsError(
        "invalid-index",
        `${this.name}: shard ${shard} cannot be opened (${(e as Error).message})`,
        { cause: e },
      );
    }
    try {
      return (await SafetensorsFile.open(source)).header;
    } finally {
      await source.close?.();
    }
  }

  /** Every tensor, in shard order and then data order. */
  get tensors(): CheckpointTensor[] {
    return [...this.byName.values()];
  }

  /** Shard file names in the order given at open. */
  get shards(): string[] {
    return [...this.metadataOf.keys()];
  }

  /** Sum of tensor bytes (what `metadata.total_size` should hold). */
  get totalSize(): number {
    return this.tensors.reduce((s, t) => s + t.byteLength, 0);
  }

  /** `__metadata__` of one shard. */
  shardMetadata(shard: string): Record<string, string> | null {
    const m = this.metadataOf.get(shard);
    if (m === undefined)
      throw new SafetensorsError("invalid-argument", `${this.name}: no shard named ${shard}`);
    return m;
  }

  /** See `TensorTable.readRange`; reads the tensor's shard and adds to `bytesRead`. */
  async readRange(name: string, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const t = this.get(name);
    let source = this.opened.get(t.shard);
    if (source === undefined) {
      source = this.opener(t.shard).catch((e) => {
        this.opened.delete(t.shard);
        throw e;
      });
      this.opened.set(t.shard, source);
    }
    const bytes = await readTensorRange(await source, t.shard, t, t.fileOffsets[0], offset, length, into);
    this.bytesRead += length;
    return bytes;
  }

  /** Close every shard opened for reading. */
  async close(): Promise<void> {
    const opened = [...this.opened.values()];
    this.opened.clear();
    for (const p of opened) await (await p.catch(() => null))?.close?.();
  }
}

/**
 * Open the checkpoint in `dir`: the index `indexFile` when given, else `model.safetensors.index.json`
 * when the directory holds one, else a single `model.safetensors`, else every `*.safetensors` in it
 * (sorted by name, hidden files skipped) — the order transformers' `from_pretrained` looks in. Shard
 * names from an index must be plain names inside the directory.
 */
export async function openCheckpointIn(dir: CheckpointDir, indexFile?: string | null): Promise<Checkpoint> {
  const names = await dir.list();
  const indexName = indexFile ?? (names.includes(INDEX_FILE_NAME) ? INDEX_FILE_NAME : null);
  let index: ShardIndex | null = null;
  let shards: string[];
  if (indexName !== null) {
    const text = await dir.readText(indexName, MAX_INDEX_SIZE);
    if (text === null) throw new SafetensorsError("not-found", `${dir.name}: ${indexName} does not exist`);
    index = parseIndexJson(text, indexName);
    shards = index.shards;
  } else if (names.includes("model.safetensors")) {
    shards = ["model.safetensors"];
  } else {
    shards = names.filter((n) => n.endsWith(".safetensors") && !n.startsWith(".")).sort();
    if (shards.length === 0) {
      throw new SafetensorsError("not-found", `${dir.name}: no ${INDEX_FILE_NAME} and no .safetensors files`);
    }
  }
  return Checkpoint.open({
    shards,
    index,
    name: indexName ?? (shards.length === 1 ? shards[0] : dir.name),
    opener: (shard) => dir.open(shard),
  });
}
