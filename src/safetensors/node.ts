// Node-only entry points of the safetensors layer (file system).
export { copyFileAtomic, targetOfTempName, writeFileAtomic } from "./atomic-node.js";
export { NodeCheckpointDir } from "./checkpoint-dir-node.js";
export {
  openCheckpoint,
  type ShardedWriteResult,
  ShardedWriter,
  type ShardedWriterOptions,
  writeShardedCheckpoint,
} from "./checkpoint-node.js";
export { errnoOf, fsAdvice, useWriteFs, type WriteFs, type WriteHandle, writeFs } from "./fs-node.js";
export { NodeFileSource } from "./source-node.js";
export {
  PositionalSafetensorsWriter,
  SafetensorsFileWriter,
  type TensorBytesSource,
  writeSafetensorsFile,
} from "./writer-node.js";
