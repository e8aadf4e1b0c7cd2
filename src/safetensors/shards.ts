import { dtypeBits } from "./dtypes.js";
import { SafetensorsError } from "./errors.js";
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

/** Bytes of a described tensor (elements x bits / 8). */
export function tensorByteLength(d: TensorDescriptor): number {
  let numel = 1;
  for (const n of d.shape) numel *= n;
  const bits = numel * dtypeBits(d.dtype);
  if (!Number.isSafeInteger(bits) || bits % 8 !== 0) {
    throw new SafetensorsError(
      "misaligned-slice",
      `tensor "${d.name}": ${d.dtype}[${d.shape}] is not a whole number of bytes`,
    );
  }
  return bits / 8;
}

/**
 * Assign tensors to shards with huggingface_hub's greedy rule
 * (`split_state_dict_into_shards_factory`): walk the tensors in the given order; a tensor larger
 * than `maxShardSize` gets a shard of its own; otherwise a new shard starts when the tensor would
 * tip the current one over the limit. One shard is named `model.safetensors` (no index needed);
 * several are named `model-0000i-of-0000n.safetensors`. The plan is made from the full descriptor
 * list up front, so shard names are final before any byte is written.
 */
export function planShards(
  descriptors: readonly TensorDescriptor[],
  maxShardSize: number = DEFAULT_MAX_SHARD_SIZE,
  prefix = "model",
): ShardPlan[] {
  if (!Number.isSafeInteger(maxShardSize) || maxShardSize <= 0) {
    throw new SafetensorsError("invalid-size", `max shard size ${maxShardSize} is not a positive integer`);
  }
  const groups: { tensors: TensorDescriptor[]; bytes: number }[] = [];
  let current: { tensors: TensorDescriptor[]; bytes: number } = { tensors: [], bytes: 0 };
  for (const d of descriptors) {
    const size = tensorByteLength(d);
    if (size > maxShardSize) {
      groups.push({ tensors: [d], bytes: size });
      continue;
    }
    if (current.bytes + size > maxShardSize) {
      groups.push(current);
      current = { tensors: [], bytes: 0 };
    }
    current.tensors.push(d);
    current.bytes += size;
  }
  if (current.tensors.length > 0) groups.push(current);
  if (groups.length === 0) groups.push(current);
  return groups.map((g, i) => ({
    fileName: groups.length === 1 ? `${prefix}.safetensors` : shardFileName(i, groups.length, prefix),
    tensors: g.tensors,
    bytes: g.bytes,
  }));
}
