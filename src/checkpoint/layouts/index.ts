/**
 * Every layout family fp8kit knows, in the order detection tries them: the first recognizer that
 * claims a tensor owns it, so the more specific come first (a `weight_scale_inv` makes a weight
 * DeepSeek's; an E4M3 `weight_scale` means NVFP4; a scalar scale means per-tensor; U8 scales MX).
 */
import { ascendMxfp8, ascendW4a8, ascendW8a8 } from "./ascend.js";
import { ctFp8Block, ctMxfp4, ctMxfp8, ctNvfp4 } from "./compressed-tensors.js";
import { deepseekFp8 } from "./deepseek-fp8.js";
import { gptOssMxfp4 } from "./gpt-oss.js";
import { modeloptFp8, modeloptMxfp8, modeloptNvfp4 } from "./modelopt.js";
import { perTensorFp8 } from "./per-tensor-fp8.js";
import type { Recognizer } from "./recognizer.js";

export const RECOGNIZERS: readonly Recognizer[] = [
  deepseekFp8,
  ascendW4a8,
  ascendW8a8,
  modeloptNvfp4,
  ctNvfp4,
  ctMxfp4,
  modeloptFp8,
  perTensorFp8,
  ascendMxfp8,
  modeloptMxfp8,
  ctMxfp8,
  ctFp8Block,
  gptOssMxfp4,
];

/** The recognizer of each quantized layout kind. */
export const RECOGNIZER_OF: ReadonlyMap<string, Recognizer> = new Map(RECOGNIZERS.map((r) => [r.kind, r]));

export {
  DEFAULT_FP8_BLOCK,
  type LayoutContext,
  MX_GROUP,
  NVFP4_GROUP,
  obj,
  type Recognizer,
} from "./recognizer.js";
