// Browser-safe public API of the safetensors layer.
export { Checkpoint, type CheckpointTensor, openCheckpointIn, type ShardOpener } from "./checkpoint.js";
export { BlobCheckpointDir, type CheckpointDir } from "./checkpoint-dir.js";
export { DTYPES, type Dtype, formatOfDtype } from "./dtypes.js";
export { SafetensorsError, type SafetensorsErrorCode } from "./errors.js";
export type { ParsedHeader, TensorInfo } from "./header.js";
export {
  HttpCheckpointDir,
  HttpSource,
  isRemoteAddress,
  openRemoteCheckpoint,
  type RemoteAddress,
  type RemoteOptions,
  resolveRemoteAddress,
} from "./http-source.js";
export { buildIndexJson, INDEX_FILE_NAME, parseIndexJson, type ShardIndex } from "./index-json.js";
export { SafetensorsFile, type TypedTensor } from "./reader.js";
export { splitIntoShards } from "./shards.js";
export { formatBytes, parseSize } from "./size.js";
export { BlobSource, BufferSource, type ByteSource } from "./source.js";
export {
  type MetadataInput,
  planLayout,
  type SafetensorsLayout,
  serializeSafetensors,
  type TensorDescriptor,
  type TensorWithData,
} from "./writer.js";
