// Node-only entry points of the safetensors layer (file system).
export {
  openCheckpoint,
  type ShardedWriteResult,
  ShardedWriter,
  type ShardedWriterOptions,
  writeShardedCheckpoint,
} from "./checkpoint-node.js";
export { NodeFileSource } from "./source-node.js";
export {
  SafetensorsFileWriter,
  type TensorBytesSource,
  tempPathFor,
  writeSafetensorsFile,
} from "./writer-node.js";
