/**
 * The convert layer's browser-safe part: planning (`planConversion`) and the band kernels. The
 * Node runner (`convertCheckpoint`) is exported from `./node.ts`.
 */
export { type Band as TensorBand, bandsOf } from "./bands.js";
export { ConvertError } from "./errors.js";
export {
  convertBand,
  decodeBand,
  type EncodedBand,
  type ErrorStats as ConvertErrorStats,
  encodeBand,
  type MxRule,
  mxScaleByte,
  type SourceCodec,
  summarize as summarizeErrorStats,
  type TargetCodec,
} from "./kernels.js";
export {
  type ConvertOptions,
  type ConvertPlan,
  type OpAction,
  type PlannedShard,
  planConversion,
  type ResolvedOptions as ResolvedConvertOptions,
  resolveOptions as resolveConvertOptions,
  SHARD_METADATA,
  shardsOfPart,
  TARGET_NAMES,
  type TargetName,
  type TensorOp,
} from "./plan.js";
