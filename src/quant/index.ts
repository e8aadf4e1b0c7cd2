/**
 * Block quantization: scale rules, block layouts, scale storage and conversions, DeepGEMM's SM100
 * scale packing, quantize/dequantize and error metrics. Browser-safe; no knowledge of files.
 */
export { blockAmax, type QuantInput } from "./block-amax.js";
export { type PackedUe8m0, packUe8m0Sm100, ue8m0BytesOfF32, unpackUe8m0Sm100 } from "./deepgemm-pack.js";
export { blockLimits, type DequantizeOptions, dequantize, dequantizeBlockFp8ToBf16 } from "./dequantize.js";
export { QuantError, type QuantErrorCode } from "./errors.js";
export {
  decodeInt8Channel,
  fp8BlockToBf16,
  type Int8ChannelBand,
  int8ChannelScale,
  quantizeInt8Channel,
} from "./int8-channel.js";
export { type BlockSpec, resolveBlock, scaleGrid, scaleShapeFor } from "./layout.js";
export { ErrorAccumulator, type ErrorMetrics, errorMetrics, type MetricsOptions } from "./metrics.js";
export {
  type ComputedScales,
  computeScales,
  type QuantizedTensor,
  type QuantizeOptions,
  quantize,
} from "./quantize.js";
export type { ScaleStorage } from "./scale-encoding.js";
export {
  amaxScale,
  ceilScaleExponent,
  ctScaleExponent,
  DEEPSEEK_AMAX_FLOOR,
  deepseekScaleExponent,
  evenScaleExponent,
  floorScaleExponent,
  isPowerOfTwoRule,
  modeloptScaleExponent,
  NVFP4_GLOBAL_DIVISOR,
  nvfp4GlobalScale,
  nvfp4ScaleCode,
  type PowerOfTwoRule,
  RULE_NAMES,
  type RuleName,
  rceilScaleExponent,
  type ScaleRuleInfo,
  scaleExponent,
  scaleRules,
  tritonScaleExponent,
} from "./scale-rules.js";
export {
  convertScales,
  decodeScales,
  e8m0Value,
  type ScaleArray,
  type ScaleConversion,
  type ScaleRounding,
} from "./scale-storage.js";
export {
  type DataScaling,
  type PresetName,
  presets,
  resolveScheme,
  type Scheme,
} from "./schemes.js";
