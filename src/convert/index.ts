/**
 * The convert layer's browser-safe part: planning (`planConversion`) and the band kernels. The
 * Node runner (`convertCheckpoint`) is exported from `./node.ts`.
 */

export {
  type ErrorStats as ConvertErrorStats,
  emptyStats,
  mergeStats,
  summarizeErrorStats,
} from "../quant/error-stats.js";
export { convertBand } from "../quant/kernels/convert-band.js";
export { decodeBand } from "../quant/kernels/decode-band.js";
export { type EncodedBand, encodeBand } from "../quant/kernels/encode-band.js";
export { mxScaleByte } from "../quant/kernels/target-scales.js";
export type { MxRule, SourceCodec, TargetCodec } from "../quant/kernels/types.js";
export { type Band as TensorBand, bandsOf } from "./bands.js";
export { ConvertError, type ConvertErrorCode } from "./errors.js";
export {
  type ConvertOptions,
  type ConvertPlan,
  DEFAULT_LAYOUT,
  DEFAULT_MX_RULE,
  DEFAULT_TARGET,
  LAYOUT_NAMES,
  type LayoutName,
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
