import { open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Checkpoint } from "./checkpoint.js";
import { SafetensorsError } from "./errors.js";
import type { TensorInfo } from "./header.js";
import { buildIndexJson, INDEX_FILE_NAME, parseIndexJson, type ShardIndex } from "./index-json.js";
import { MAX_INDEX_SIZE } from "./limits.js";
import { planShards, type ShardPlan } from "./shards.js";
import { parseSize } from "./size.js";
import { NodeFileSource } from "./source-node.js";
import { type MetadataInput, planLayout, type TensorDescriptor } from "./writer.js";
import { SafetensorsFileWriter, tempPathFor } from "./writer-node.js";

async function readIndex(path: string): Promise<ShardIndex> {
  const name = basename(path);
  let text: string;
  try {
    const st = await stat(path);
    if (st.size > MAX_INDEX_SIZE) {
      throw new SafetensorsError(
        "invalid-index",
        `${name}: ${st.size} bytes exceeds the limit of ${MAX_INDEX_SIZE}`,
      );
    }
    text = await readFile(path, "utf8");
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError("read-failed", `${name}: cannot read (${(e as Error).message})`, { cause: e });
  }
  return parseIndexJson(text, name);
}

/**
 * Open a checkpoint (Node): a directory with `model.safetensors.index.json`, else with a single
 * `model.safetensors`, else all `*.safetensors` in it (sorted by name); or an index file; or a
 * single `.safetensors` file. Shard names from an index must be plain names inside the directory.
 */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (e) {
    throw new SafetensorsError("read-failed", `${basename(path)}: cannot open (${(e as Error).message})`, {
      cause: e,
    });
  }
  let dir: string;
  let index: ShardIndex | null = null;
  let shards: string[];
  if (st.isFile()) {
    dir = dirname(path);
    if (path.endsWith(".index.json")) {
      index = await readIndex(path);
      shards = index.shards;
    } else {
      shards = [basename(path)];
    }
  } else {
    dir = path;
    const names = await readdir(dir);
    if (names.includes(INDEX_FILE_NAME)) {
      index = await readIndex(join(dir, INDEX_FILE_NAME));
      shards = index.shards;
    } else if (names.includes("model.safetensors")) {
      shards = ["model.safetensors"];
    } else {
      shards = names.filter((n) => n.endsWith(".safetensors") && !n.startsWith(".")).sort();
      if (shards.length === 0) {
        throw new SafetensorsError(
          "read-failed",
          `${basename(path)}: no ${INDEX_FILE_NAME} and no .safetensors files`,
        );
      }
    }
  }
  return Checkpoint.open({
    shards,
    index,
    name: index ? INDEX_FILE_NAME : basename(path),
    opener: (shard) => NodeFileSource.open(join(dir, shard), shard),
  });
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
 * planned up front from the full descriptor list (`planShards`, huggingface_hub's greedy rule), so
 * every shard gets its final `model-0000i-of-0000n.safetensors` name from the start; tensors are
 * then written in `order` (shard by shard, each in the reference layout order), each shard
 * atomically through `SafetensorsFileWriter`. The index is written last (atomically too), so a
 * crash never leaves a directory whose index names shards that are missing or incomplete.
 */
export class ShardedWriter {
  /** The planned shards. */
  readonly plan: ShardPlan[];
  /** Tensor names in the order `write` expects them. */
  readonly order: readonly TensorInfo[];
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
    const order: TensorInfo[] = [];
    this.shardOf = [];
    for (const shard of this.plan) {
      for (const t of planLayout(shard.tensors, this.metadata, shard.fileName).tensors) {
        order.push(t);
        this.shardOf.push(shard.fileName);
      }
    }
    this.order = order;
  }

  /** The tensor `write` expects next, or null when done. */
  get nextTensor(): TensorInfo | null {
    return this.order[this.next] ?? null;
  }

  /** Write the next tensor (`name` must be `nextTensor.name`); opens and finishes shards as needed. */
  async write(name: string, data: Uint8Array): Promise<void> {
    const info = this.nextTensor;
    if (info === null || info.name !== name) {
      await this.abort();
      const want = info === null ? "no more tensors" : `tensor "${info.name}"`;
      throw new SafetensorsError("invalid-argument", `${this.dir}: expected ${want} next, got "${name}"`);
    }
    const shardName = this.shardOf[this.next];
    try {
      if (this.current === null) {
        const shard = this.plan.find((p) => p.fileName === shardName)!;
        this.current = await SafetensorsFileWriter.create(join(this.dir, shardName), shard.tensors, {
          metadata: this.metadata,
        });
      }
      await this.current.write(name, data);
      this.next++;
      if (this.current.nextTensor === null) await this.finishShard();
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  private async finishShard(): Promise<void> {
    const w = this.current!;
    this.current = null;
    await w.finish();
    this.written.push(basename(w.path));
  }

  /** Finish the last shard(s) and write the index (when there is more than one shard). */
  async finish(): Promise<ShardedWriteResult> {
    if (this.nextTensor !== null) {
      await this.abort();
      throw new SafetensorsError(
        "invalid-argument",
        `${this.dir}: tensor "${this.nextTensor?.name}" was never written`,
      );
    }
    // Shards without tensors (only possible for an empty checkpoint) are still written.
    for (const shard of this.plan) {
      if (!this.written.includes(shard.fileName)) {
        this.current = await SafetensorsFileWriter.create(join(this.dir, shard.fileName), shard.tensors, {
          metadata: this.metadata,
        });
        await this.finishShard();
      }
    }
    const totalSize = this.plan.reduce((s, p) => s + p.bytes, 0);
    if (this.plan.length === 1) return { shards: [...this.written], indexPath: null, totalSize };
    const weightMap = new Map<string, string>();
    for (let i = 0; i < this.order.length; i++) weightMap.set(this.order[i].name, this.shardOf[i]);
    const indexPath = join(this.dir, INDEX_FILE_NAME);
    await writeTextAtomic(indexPath, buildIndexJson(weightMap, totalSize));
    return { shards: [...this.written], indexPath, totalSize };
  }

  /** Abort the shard in progress (shards already finished stay; no index is written). */
  async abort(): Promise<void> {
    const w = this.current;
    this.current = null;
    await w?.abort();
  }
}

async function writeTextAtomic(path: string, text: string): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const h = await open(tmp, "wx");
    try {
      await h.writeFile(text, "utf8");
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw new SafetensorsError("write-failed", `${basename(path)}: write failed (${(e as Error).message})`, {
      cause: e,
    });
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
      throw new SafetensorsError(
        "write-failed",
        `${dir}: tensor source failed at "${info.name}" (${(e as Error)?.message})`,
        {
          cause: e,
        },
      );
    }
    await w.write(info.name, data);
  }
  return w.finish();
}
