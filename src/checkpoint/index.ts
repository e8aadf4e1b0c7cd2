/**
 * The checkpoint layer: layouts of real stacks (DeepSeek/HF block FP8, compressed-tensors FP8
 * block / MXFP8 / MXFP4, gpt-oss MXFP4), detection from config.json + tensor headers, tensor
 * selection presets and config.json rewriting. Browser-safe, no file I/O.
 *
 * - `detectLayout(config | null, tensors) -> DetectedLayout` (detect.ts)
 * - `selectTensors(tensors, { preset, include, exclude, config }) -> TensorSelection` (select.ts)
 * - `rewriteConfig(config, target)`, `parseConfigJson(text, file)`, `quantizationConfigFor(target)` (config.ts)
 * - `matchGlob(name, glob)` (glob.ts)
 * - `ascendDescription(entries)`, `checkAscendDescription(description, tensors, config)` (ascend-description.ts)
 */
export {
  ASCEND_DESCRIPTION_FILE,
  ASCEND_QUANT_TYPES,
  type AscendDescriptionSummary,
  type AscendProblem,
  type AscendProblemCode,
  type AscendQuantType,
  ascendDescription,
  ascendModelQuantType,
  checkAscendDescription,
  isDeepSeekStyle,
  summarizeAscendDescription,
} from "./ascend-description.js";
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
export { ascendQuantizes, isRoutedExpert, scaleBiasChunks } from "./layouts/ascend.js";
export { RECOGNIZER_OF } from "./layouts/index.js";
export { blockLabel, type LayoutFamily, type LayoutFormat } from "./layouts/recognizer.js";
export {
  activationScaleTensor,
  fixedBlockOf,
  formatsOf,
  OUTPUT_FAMILIES,
  type OutputFamily,
  type OutputTensor,
  outputTensors,
  type Writer,
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
