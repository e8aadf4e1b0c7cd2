/** Bytes of the little-endian u64 that gives the header length at the start of every file. */
export const HEADER_LENGTH_BYTES = 8;

/**
 * Largest header the reader accepts, in bytes. Same value as the reference's `MAX_HEADER_SIZE`
 * (100,000,000): a hostile length field must not make us allocate gigabytes before validating
 * anything, and no real checkpoint comes close (DeepSeek-V3 shards have headers of ~100 KB).
 */
export const MAX_HEADER_SIZE = 100_000_000;

/**
 * Largest `model.safetensors.index.json` the reader accepts, in bytes. The biggest seen in the
 * wild (Kimi-K3, ~497k tensors) is ~60 MB; 256 MB leaves room while bounding memory.
 */
export const MAX_INDEX_SIZE = 256 * 1024 * 1024;

/**
 * Most shards an index may name. huggingface.js uses the same cap; real checkpoints stop well below
 * (DeepSeek-V3: 163), and every shard costs a header read and possibly a file handle.
 */
export const MAX_SHARDS = 10_000;

/**
 * Default maximum shard size for the sharded writer: "5GB" in decimal units, as in
 * huggingface_hub's `split_state_dict_into_shards_factory` and transformers' `save_pretrained`.
 */
export const DEFAULT_MAX_SHARD_SIZE = 5_000_000_000;

/**
 * Bytes per `read` call when the Node source reads a range; Node's `FileHandle.read` takes an
 * int32 length, so larger tensors are read in pieces of this size into one buffer.
 */
export const MAX_READ_CHUNK = 1024 * 1024 * 1024;
