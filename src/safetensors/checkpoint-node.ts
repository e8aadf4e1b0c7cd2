import { basename, join } from "node:path";
import { writeFileAtomic } from "./atomic-node.js";
import { type Checkpoint, openCheckpointIn } from "./checkpoint.js";
import { NodeCheckpointDir } from "./checkpoint-dir-node.js";
import { SafetensorsError } from "./errors.js";
import type { TensorInfo } from "./header.js";
import { buildIndexJson, INDEX_FILE_NAME } from "./index-json.js";
import { planShards, type ShardPlan } from "./shards.js";
import { parseSize } from "./size.js";
import { type MetadataInput, planLayout, type TensorDescriptor } from "./writer.js";
import { SafetensorsFileWriter } from "./writer-node.js";

/**
 * Open a checkpoint (Node): a directory with `model.safetensors.index.json`, else with a single
 * `model.safetensors`, else all `*.safetensors` in it (sorted by name); or an index file; or a
 * single `.safetensors` file (see `openCheckpointIn`, which this runs over a `NodeCheckpointDir`).
 */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  const dir = await NodeCheckpointDir.open(path);
  return openCheckpointIn(dir, dir.indexFile);
}

/** Options of the sharded writer. */
export interface ShardedWriterOptions {
  /** Largest shard in tensor bytes: a number or a size such as "5GB" (default 5GB, decimal). */
  maxShardSize?: number | string;
  /** `__metadata__` of every shard (default `{ format: "pt" }`, as huggingface_hub writes). */
  metadata?: MetadataInput | null;
  /** File name prefix (default "model"). */
  prefix?: string;
}

/** What a finished sharded write produced. */
export interface ShardedWriteResult {
  shards: string[];
  /** Path of the index, or null when everything fit in one `model.safetensors`. */
  indexPath: string | null;
  /** Sum of tensor bytes (`metadata.total_size`). */
  totalSize: number;
}

/**
 * Writes a Hugging Face-style sharded checkpoint, one tensor at a time. The shard assignment is
 * planned up front from the full descriptor list (`planShards`, the greedy rule of `splitIntoShards`),
 * so every shard gets its final `model-0000i-of-0000n.safetensors` name from the start; tensors are
 * then written in `order` (shard by shard, each in the reference layout order), each shard
 * atomically through `SafetensorsFileWriter`. The index is written last (atomically too), so a
 * crash never leaves a directory whose index names shards that are missing or incomplete.
 */
export class ShardedWriter {
  /** The planned shards. */
  readonly plan: ShardPlan[];
  /** Tensor names in the order `write` expects them. */
  readonly order: readonly TensorInfo[];
  /** The shard file name of each tensor of `order`. */
  private readonly shardOf: string[];
  private next = 0;
  private current: SafetensorsFileWriter | null = null;
  private readonly written: string[] = [];
  private readonly metadata: MetadataInput | null;

  constructor(
    readonly dir: string,
    descriptors: readonly TensorDescriptor[],
    options: ShardedWriterOptions = {},
  ) {
    this.metadata = options.metadata === undefined ? { format: "pt" } : options.metadata;
    this.plan = planShards(descriptors, parseSize(options.maxShardSize ?? "5GB"), options.prefix);
    this.order = this.plan.flatMap((p) => planLayout(p.tensors, this.metadata, p.fileName).tensors);
    this.shardOf = this.plan.flatMap((p) => p.tensors.map(() => p.fileName));
  }

  /** The tensor `write` expects next, or null when done. */
  get nextTensor(): TensorInfo | null {
    return this.order[this.next] ?? null;
  }

  /** Write the next tensor (`name` must be `nextTensor.name`); opens and finishes shards as needed. */
  async write(name: string, data: Uint8Array): Promise<void> {
    const info = this.nextTensor;
    if (info?.name !== name) {
      await this.abort();
      const want = info === null ? "no more tensors" : `tensor "${info.name}"`;
      throw new SafetensorsError("invalid-argument", `${this.dir}: expected ${want} next, got "${name}"`);
    }
    try {
      this.current ??= await this.openShard(this.shardOf[this.next]);
      await this.current.write(name, data);
      this.next++;
      if (this.current.nextTensor === null) await this.finishShard();
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  private openShard(fileName: string): Promise<SafetensorsFileWriter> {
    const shard = this.plan.find((p) => p.fileName === fileName)!;
    return SafetensorsFileWriter.create(join(this.dir, fileName), shard.tensors, { metadata: this.metadata });
  }

  private async finishShard(): Promise<void> {
    const w = this.current!;
    this.current = null;
    await w.finish();
    this.written.push(basename(w.path));
  }

  /** Finish the last shard(s) and write the index (when there is more than one shard). */
  async finish(): Promise<ShardedWriteResult> {
    const missing = this.nextTensor;
    if (missing !== null) {
      await this.abort();
      throw new SafetensorsError(
        "invalid-argument",
        `${this.dir}: tensor "${missing.name}" was never written`,
      );
    }
    // Shards without tensors (only possible for an empty checkpoint) are still written.
    for (const shard of this.plan) {
      if (!this.written.includes(shard.fileName)) {
        this.current = await this.openShard(shard.fileName);
        await this.finishShard();
      }
    }
    const totalSize = this.plan.reduce((s, p) => s + p.bytes, 0);
    if (this.plan.length === 1) return { shards: [...this.written], indexPath: null, totalSize };
    const weightMap = new Map(this.order.map((t, i) => [t.name, this.shardOf[i]]));
    const indexPath = join(this.dir, INDEX_FILE_NAME);
    await writeFileAtomic(indexPath, buildIndexJson(weightMap, totalSize));
    return { shards: [...this.written], indexPath, totalSize };
  }

  /** Abort the shard in progress (shards already finished stay; no index is written). */
  async abort(): Promise<void> {
    const w = this.current;
    this.current = null;
    await w?.abort();
  }
}

/**
 * Write a sharded checkpoint into `dir` from descriptors and a callback giving each tensor's bytes
 * (called once per tensor, in write order), holding one tensor in memory at a time.
 */
export async function writeShardedCheckpoint(
  dir: string,
  descriptors: readonly TensorDescriptor[],
  source: (info: TensorInfo) => Promise<Uint8Array> | Uint8Array,
  options: ShardedWriterOptions = {},
): Promise<ShardedWriteResult> {
  const w = new ShardedWriter(dir, descriptors, options);
  for (const info of w.order) {
    let data: Uint8Array;
    try {
      data = await source(info);
    } catch (e) {
      await w.abort();
      if (e instanceof SafetensorsError) throw e;
      const message = `${dir}: tensor source failed at "${info.name}" (${(e as Error)?.message})`;
      throw new SafetensorsError("write-failed", message, { cause: e });
    }
    await w.write(info.name, data);
  }
  return w.finish();
}
