// Browser-safe public API of the safetensors layer.
export { Checkpoint, type CheckpointTensor, openCheckpointIn, type ShardOpener } from "./checkpoint.js";
export { BlobCheckpointDir, type CheckpointDir } from "./checkpoint-dir.js";
export {
  DTYPES,
  type Dtype,
  dtypeBits,
  dtypeOfFormat,
  dtypeRank,
  FORMAT_OF_DTYPE,
  formatOfDtype,
  isDtype,
  isSubByte,
} from "./dtypes.js";
export { SafetensorsError, type SafetensorsErrorCode } from "./errors.js";
export { type ParsedHeader, parseHeader, readHeaderLength, type TensorInfo } from "./header.js";
export {
  buildIndexJson,
  checkShardName,
  INDEX_FILE_NAME,
  parseIndexJson,
  type ShardIndex,
} from "./index-json.js";
export {
  DEFAULT_MAX_SHARD_SIZE,
  HEADER_LENGTH_BYTES,
  MAX_HEADER_SIZE,
  MAX_INDEX_SIZE,
  MAX_READ_CHUNK,
  MAX_SHARDS,
} from "./limits.js";
export { SafetensorsFile, type TypedTensor } from "./reader.js";
export {
  planShards,
  type ShardGroup,
  type ShardPlan,
  shardFileName,
  splitIntoShards,
  tensorByteLength,
} from "./shards.js";
export { parseSize } from "./size.js";
export { BlobSource, BufferSource, type ByteSource } from "./source.js";
export {
  type AnyTensorArray,
  type DtypeArrayMap,
  type TypedArrayFor,
  viewAs,
} from "./views.js";
export {
  checkTensorBytes,
  type MetadataInput,
  planLayout,
  type SafetensorsLayout,
  serializeSafetensors,
  type TensorDescriptor,
  type TensorWithData,
} from "./writer.js";
