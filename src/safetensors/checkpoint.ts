import type { CheckpointDir } from "./checkpoint-dir.js";
import { SafetensorsError } from "./errors.js";
import type { TensorInfo } from "./header.js";
import { INDEX_FILE_NAME, parseIndexJson, type ShardIndex } from "./index-json.js";
import { MAX_INDEX_SIZE } from "./limits.js";
import { readTensorRange, SafetensorsFile, type TypedTensor } from "./reader.js";
import type { ByteSource } from "./source.js";
import { viewAs } from "./views.js";

/** A tensor of a checkpoint: its header entry plus where it lives. */
export interface CheckpointTensor extends TensorInfo {
  /** Shard file name (relative to the checkpoint directory). */
  shard: string;
  /** Absolute `[begin, end)` byte range in the shard file. */
  fileOffsets: [number, number];
}

/** Opens a shard by its file name; the Node entry point opens files, a browser one wraps `File`s. */
export type ShardOpener = (shard: string) => Promise<ByteSource>;

interface ShardState {
  name: string;
  metadata: Record<string, string> | null;
  source: ByteSource | null;
  opening: Promise<ByteSource> | null;
}

/** At most this many shard headers are read at once when a checkpoint opens. */
const HEADER_READ_CONCURRENCY = 16;

/**
 * A checkpoint of one or more safetensors shards, read tensor by tensor. Opening reads every
 * shard's header (closing it again), checks the index against the shards in both directions (each
 * mapped tensor is in its shard; each shard tensor is mapped to that shard) or, without an index,
 * that no tensor name appears twice. Data reads reopen a shard lazily and keep it open until
 * `close()`. This class is browser-safe; `openCheckpoint` (Node) finds shards in a directory.
 */
export class Checkpoint {
  private readonly byName = new Map<string, CheckpointTensor>();
  private readonly shardStates = new Map<string, ShardState>();
  /** Tensor data bytes read so far (`readBytes`, `readRange`; headers not counted). */
  bytesRead = 0;

  private constructor(
    readonly name: string,
    readonly index: ShardIndex | null,
    private readonly opener: ShardOpener,
  ) {}

  /** Open shards `shards` (file names passed to `opener`), validating against `index` when given. */
  static async open(options: {
    shards: readonly string[];
    opener: ShardOpener;
    index?: ShardIndex | null;
    name?: string;
  }): Promise<Checkpoint> {
    const index = options.index ?? null;
    const name = options.name ?? (index ? "model.safetensors.index.json" : "checkpoint");
    const ck = new Checkpoint(name, index, options.opener);
    const shards = [...options.shards];
    const results: { info: TensorInfo[]; dataStart: number; metadata: Record<string, string> | null }[] = [];
    let next = 0;
    const worker = async () => {
      while (next < shards.length) {
        const i = next++;
        results[i] = await ck.readShardHeader(shards[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(HEADER_READ_CONCURRENCY, shards.length) }, worker));
    for (let i = 0; i < shards.length; i++) {
      const shard = shards[i];
      const { info, dataStart, metadata } = results[i];
      ck.shardStates.set(shard, { name: shard, metadata, source: null, opening: null });
      for (const t of info) {
        const prev = ck.byName.get(t.name);
        if (prev !== undefined) {
          throw new SafetensorsError(
            "invalid-index",
            `${name}: tensor "${t.name}" is in both ${prev.shard} and ${shard}`,
          );
        }
        if (index) {
          const mapped = index.weightMap.get(t.name);
          if (mapped !== shard) {
            const where = mapped === undefined ? "is not in the weight_map" : `is mapped to ${mapped}`;
            throw new SafetensorsError(
              "invalid-index",
              `${name}: tensor "${t.name}" found in ${shard} but ${where}`,
            );
          }
        }
        const fileOffsets: [number, number] = [dataStart + t.dataOffsets[0], dataStart + t.dataOffsets[1]];
        ck.byName.set(t.name, { ...t, shard, fileOffsets });
      }
    }
    if (index) {
      for (const [tensor, shard] of index.weightMap) {
        if (!ck.byName.has(tensor)) {
          throw new SafetensorsError(
            "invalid-index",
            `${name}: tensor "${tensor}" is mapped to ${shard} but that shard does not hold it`,
          );
        }
      }
    }
    return ck;
  }

  private async readShardHeader(shard: string) {
    let source: ByteSource;
    try {
      source = await this.opener(shard);
    } catch (e) {
      if (e instanceof SafetensorsError && e.code !== "read-failed" && e.code !== "not-found") throw e;
      throw new SafetensorsError(
        "invalid-index",
        `${this.name}: shard ${shard} cannot be opened (${(e as Error).message})`,
        {
          cause: e,
        },
      );
    }
    try {
      const f = await SafetensorsFile.open(source);
      return { info: [...f.tensors], dataStart: f.dataStart, metadata: f.metadata };
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
    return [...this.shardStates.keys()];
  }

  /** Sum of tensor bytes (what `metadata.total_size` should hold). */
  get totalSize(): number {
    let s = 0;
    for (const t of this.byName.values()) s += t.byteLength;
    return s;
  }

  /** `__metadata__` of one shard. */
  shardMetadata(shard: string): Record<string, string> | null {
    const s = this.shardStates.get(shard);
    if (s === undefined)
      throw new SafetensorsError("invalid-argument", `${this.name}: no shard named ${shard}`);
    return s.metadata;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  get(name: string): CheckpointTensor {
    const t = this.byName.get(name);
    if (t === undefined)
      throw new SafetensorsError("tensor-not-found", `${this.name}: no tensor named "${name}"`);
    return t;
  }

  /** The raw bytes of tensor `name`, read from its shard with one range read (into `into` when given). */
  async readBytes(name: string, into?: Uint8Array): Promise<Uint8Array> {
    return this.readRange(name, 0, this.get(name).byteLength, into);
  }

  /**
   * `length` bytes at byte `offset` of tensor `name`'s data, with one positioned read of its shard
   * (into `into`, returned as a view of its first `length` bytes, when given). Adds to `bytesRead`.
   */
  async readRange(name: string, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const t = this.get(name);
    const source = await this.sourceOf(t.shard);
    const bytes = await readTensorRange(source, t.shard, t, t.fileOffsets[0], offset, length, into);
    this.bytesRead += length;
    return bytes;
  }

  /** The tensor viewed as its typed array (zero-copy when aligned). */
  async readTyped(name: string): Promise<TypedTensor> {
    const info = this.get(name);
    return { info, data: viewAs(info.dtype, await this.readBytes(name)) };
  }

  private sourceOf(shard: string): Promise<ByteSource> {
    const s = this.shardStates.get(shard)!;
    if (s.source) return Promise.resolve(s.source);
    if (!s.opening) {
      s.opening = this.opener(shard).then(
        (src) => {
          s.source = src;
          return src;
        },
        (e) => {
          s.opening = null;
          throw e;
        },
      );
    }
    return s.opening;
  }

  /** Close every shard opened for reading. */
  async close(): Promise<void> {
    const open = [...this.shardStates.values()];
    for (const s of open) {
      const src = s.source ?? (s.opening ? await s.opening.catch(() => null) : null);
      s.source = null;
      s.opening = null;
      await src?.close?.();
    }
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
