/**
 * Node entry point (`fp8kit/node`): everything in `fp8kit` plus the file-system parts: file byte
 * sources, the atomic file writers, sharded checkpoints on disk, `convertCheckpoint`, and
 * inspect/lint/audit/report on a path. test/package/api.test.ts pins the list.
 */

export {
  type ConvertEvent,
  type ConvertResult,
  convertCheckpoint,
  type RunOptions,
  type TensorReport,
  type VerifyResult,
} from "./convert/node.js";
export * from "./index.js";
export {
  auditPath,
  type FetchStats,
  inspectPath,
  lintPath,
  NodeCheckpointDir,
  type PathOptions,
  type WriteReportResult,
  writeReport,
} from "./report/node.js";
export {
  NodeFileSource,
  openCheckpoint,
  SafetensorsFileWriter,
  type ShardedWriteResult,
  ShardedWriter,
  type ShardedWriterOptions,
  type TensorBytesSource,
  writeSafetensorsFile,
  writeShardedCheckpoint,
} from "./safetensors/node.js";
