import { SafetensorsError } from "./errors.js";
import { tensorSize } from "./header.js";
import { DEFAULT_MAX_SHARD_SIZE } from "./limits.js";
import type { TensorDescriptor } from "./writer.js";

/** One shard of a planned sharded checkpoint. */
export interface ShardPlan {
  /** Final file name, e.g. `model-00001-of-00005.safetensors` (or `model.safetensors` when alone). */
  fileName: string;
  tensors: TensorDescriptor[];
  /** Sum of the shard's tensor bytes. */
  bytes: number;
}

/** `model-00001-of-00005.safetensors` for index 0 of 5 (the Hugging Face pattern, 1-based, 5 digits). */
export function shardFileName(index: number, count: number, prefix = "model"): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return `${prefix}-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/** Bytes of a described tensor (elements x bits / 8), checked as `tensorSize` does. */
export function tensorByteLength(d: TensorDescriptor): number {
  return tensorSize(`tensor "${d.name}"`, d.dtype, d.shape).byteLength;
}

/** One shard of `splitIntoShards`: which items (indexes into the input list) it holds. */
export interface ShardGroup {
  /** Final file name (see `ShardPlan.fileName`). */
  fileName: string;
  /** Indexes of the items in this shard, ascending. */
  items: number[];
  /** Sum of the items' sizes. */
  bytes: number;
}

/**
 * Split items of the given byte sizes, in the given order, into shards of at most `maxShardSize`
 * bytes: the greedy rule of huggingface_hub's `split_state_dict_into_shards_factory`, with one
 * deliberate difference. The shared rule: walk the items in order; an item that would tip the shard
 * being filled over the limit closes it and starts the next; an item larger than the limit gets a
 * shard of its own. The difference: huggingface_hub emits an oversized item's shard at once while
 * the shard being filled stays open (sizes [40, 500, 40, 40] with a limit of 100 give [500],
 * [40, 40], [40] there), whereas here it first closes the shard being filled, so every shard holds
 * a consecutive run of the input order ([40], [500], [40, 40]) and the weight_map lists tensors in
 * input order. The two agree whenever no single item exceeds the limit (always, at the default
 * 5GB, for real checkpoints). `fp8kit convert` has always split this way; its output is kept.
 * No items give one empty shard (huggingface_hub gives none). An item may stand for several
 * tensors kept together (a weight and its scales). One shard is named `model.safetensors` (no
 * index needed); several are named `model-0000i-of-0000n.safetensors`.
 */
export function splitIntoShards(
  sizes: readonly number[],
  maxShardSize: number = DEFAULT_MAX_SHARD_SIZE,
  prefix = "model",
): ShardGroup[] {
  if (!Number.isSafeInteger(maxShardSize) || maxShardSize <= 0) {
    throw new SafetensorsError("invalid-size", `max shard size ${maxShardSize} is not a positive integer`);
  }
  const groups: { items: number[]; bytes: number }[] = [];
  let current: { items: number[]; bytes: number } = { items: [], bytes: 0 };
  const close = () => {
    if (current.items.length > 0) groups.push(current);
    current = { items: [], bytes: 0 };
  };
  sizes.forEach((size, i) => {
    if (size > maxShardSize || current.bytes + size > maxShardSize) close();
    current.items.push(i);
    current.bytes += size;
    if (size > maxShardSize) close();
  });
  if (current.items.length > 0 || groups.length === 0) groups.push(current);
  return groups.map((g, i) => ({
    fileName: groups.length === 1 ? `${prefix}.safetensors` : shardFileName(i, groups.length, prefix),
    items: g.items,
    bytes: g.bytes,
  }));
}

/**
 * Assign tensors to shards with `splitIntoShards` (each tensor one item, in the given order). The
 * plan is made from the full descriptor list up front, so shard names are final before any byte
 * is written.
 */
export function planShards(
  descriptors: readonly TensorDescriptor[],
  maxShardSize: number = DEFAULT_MAX_SHARD_SIZE,
  prefix = "model",
): ShardPlan[] {
  return splitIntoShards(descriptors.map(tensorByteLength), maxShardSize, prefix).map((g) => ({
    fileName: g.fileName,
    tensors: g.items.map((i) => descriptors[i]),
    bytes: g.bytes,
  }));
}
