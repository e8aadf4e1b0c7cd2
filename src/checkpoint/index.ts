/**
 * The checkpoint layer: layouts of real stacks (DeepSeek/HF block FP8, compressed-tensors FP8
 * block / MXFP8 / MXFP4, gpt-oss MXFP4), detection from config.json + tensor headers, tensor
 * selection presets and config.json rewriting. Browser-safe, no file I/O.
 *
 * - `detectLayout(config | null, tensors) -> DetectedLayout` (detect.ts)
 * - `selectTensors(tensors, { preset, include, exclude, config }) -> TensorSelection` (select.ts)
 * - `rewriteConfig(config, target)`, `parseConfigJson(text, file)`, `quantizationConfigFor(target)` (config.ts)
 * - `matchGlob(name, glob)` (glob.ts)
 */
export {
  type ConfigTarget,
  type DenseDtype,
  formatConfigJson,
  hfQuantConfigFor,
  parseConfigJson,
  quantizationConfigFor,
  rewriteConfig,
} from "./config.js";
export { detectLayout, expectedScaleShape, MX_GROUP, quantizationConfig, scaleStorageOf } from "./detect.js";
export { CheckpointError, type CheckpointErrorCode } from "./errors.js";
export { globToRegExp, matchAny, matchGlob } from "./glob.js";
export { RECOGNIZER_OF } from "./layouts/index.js";
export type { LayoutFamily, LayoutFormat } from "./layouts/recognizer.js";
export {
  activationScaleTensor,
  formatsOf,
  OUTPUT_FAMILIES,
  type OutputFamily,
  type OutputTensor,
  outputTensors,
  type WrittenFormat,
  writerOf,
} from "./layouts/writers.js";
export {
  isQuantizedConfig,
  PRESET_NAMES as SELECTION_PRESETS,
  type PresetName as SelectionPreset,
  presetChoice,
  presetFor,
  type SelectOptions,
  selectTensors,
  type TensorChoice,
  type TensorSelection,
} from "./select.js";
export { conversionRefusal, isUnrecognisedQuantized, type SupportTarget, sourceCodecOf } from "./support.js";
export type {
  DetectedLayout,
  ElementFormat,
  LayoutKind,
  LayoutProblem,
  LayoutProblemCode,
  QuantizedWeight,
  ScaleFormat,
  ScaleStorage as WeightScaleStorage,
  TensorEntry,
} from "./types.js";
