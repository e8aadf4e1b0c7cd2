/**
 * What `convert` can write from a detected layout: the one rule `convert` applies before planning
 * and `inspect` applies before suggesting a command, so a suggestion is always a command that runs.
 *
 *   conversionRefusal(layout, target) -> string | null   (null: convertible; else why not)
 *   sourceCodecOf(weight) -> SourceCodec                   (how the kernels read its bytes)
 */
import type { SourceCodec } from "../quant/kernels/types.js";
import type { Dtype } from "../safetensors/index.js";
import type { DetectedLayout, QuantizedWeight, TensorEntry } from "./types.js";

/** A conversion target as the support rule sees it: its name and whether it dequantizes to a float dtype. */
export interface SupportTarget {
  name: string;
  dense: boolean;
}

/** Dtypes that only ever hold quantized codes: copying them under another layout's label mislabels them. */
const CODE_DTYPES: ReadonlySet<Dtype> = new Set([
  "F8_E4M3",
  "F8_E5M2",
  "F8_E4M3FNUZ",
  "F8_E5M2FNUZ",
  "F8_E8M0",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
]);

/**
 * True for a tensor left over by detection that holds quantized codes: an FP8/FP6/FP4 dtype, a
 * `.weight_packed` or `_blocks` tensor, or an integer `.weight` with a `weight_scale` beside it
 * (INT8/INT4 schemes fp8kit does not read yet).
 */
export function isUnrecognisedQuantized(t: TensorEntry, byName: ReadonlyMap<string, TensorEntry>): boolean {
  if (CODE_DTYPES.has(t.dtype)) return true;
  if (t.name.endsWith(".weight_packed") || (t.name.endsWith("_blocks") && t.dtype === "U8")) return true;
  return (
    (t.dtype === "U8" || t.dtype === "I8") && t.name.endsWith(".weight") && byName.has(`${t.name}_scale`)
  );
}

/**
 * Why `convert` cannot write `target` from `layout`, or null when it can. Refused: a layout with
 * problems (the first is named), a declared quantization with no recognised tensors, a quantized
 * tensor that belongs to no known layout (it would be copied under the target's label). Every
 * recognised layout converts to every target: the band kernels decode any source codec.
 */
export function conversionRefusal(layout: DetectedLayout, target: SupportTarget): string | null {
  if (layout.problems.length > 0) {
    const more = layout.problems.length > 1 ? ` (and ${layout.problems.length - 1} more problems)` : "";
    return `${layout.problems[0].message}${more}`;
  }
  if (layout.kind === "unknown") {
    return `config.json declares quantization (${layout.declared}) but no tensor matches a layout fp8kit knows; it is not a supported source`;
  }
  const byName = new Map(layout.plain.map((t) => [t.name, t]));
  const stray = layout.plain.find((t) => isUnrecognisedQuantized(t, byName));
  if (stray) {
    return `tensor "${stray.name}" (${stray.dtype}) holds quantized codes in no layout fp8kit knows; converting to ${target.name} would copy them under the wrong label`;
  }
  return null;
}

/** How the kernels read a quantized weight's bytes. */
export function sourceCodecOf(w: QuantizedWeight): SourceCodec {
  if (w.granularity === "tensor") {
    return { kind: "tensor", element: w.element === "float8_e5m2" ? "float8_e5m2" : "float8_e4m3fn" };
  }
  if (w.element === "int8" || w.element === "int4")
    return { kind: "int-channel", bits: w.element === "int8" ? 8 : 4 };
  const codec: SourceCodec = {
    kind: "block",
    element: w.element,
    packed: w.packed,
    block: w.block,
    scaleStorage: w.scaleStorage,
  };
  return w.tensorScale ? { ...codec, tensorScale: w.tensorScale.mode } : codec;
}
