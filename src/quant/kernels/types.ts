/**
 * What the band kernels convert between, and the geometry planning needs (bytes per row, per
 * scale, block of a codec). Types and pure arithmetic only: planning imports this file, never the
 * kernels, so planning and kernels do not depend on each other.
 */
import type { Overflow } from "../../formats/index.js";
import type { ScaleStorage } from "../scale-encoding.js";
import { SCALE_BYTES } from "../scale-encoding.js";

export type PlainDtype = "BF16" | "F16" | "F32";
export type MxRule = "floor" | "ceil" | "even" | "rceil";
/** Element formats a quantized source can hold. */
export type SourceElement = "float8_e4m3fn" | "float8_e5m2" | "float4_e2m1fn";

/** How the source band is encoded. */
export type SourceCodec =
  | { kind: "plain"; dtype: PlainDtype }
  | {
      /** Codes with one scale per `block` (`[rows, cols]` of the last two dimensions). */
      kind: "block";
      element: SourceElement;
      packed: boolean;
      block: [number, number];
      scaleStorage: ScaleStorage;
      /**
       * A per-tensor float32 scalar (`BandSpec.tensorScale`) combined with every block scale:
       * `fl32(s * t)` for ModelOpt's `weight_scale_2` ("multiply"), `fl32(s / t)` for
       * compressed-tensors' `weight_global_scale` ("divide", its reciprocal).
       */
      tensorScale?: "multiply" | "divide";
    }
  | {
      /** One float32 scale for the whole tensor (`BandSpec.tensorScale`): `fl32(decode(code) * t)`. */
      kind: "tensor";
      element: "float8_e4m3fn" | "float8_e5m2";
    };

/** How the output band is encoded. */
export type TargetCodec =
  | { kind: "plain"; dtype: PlainDtype }
  | { kind: "fp8-block"; block: [number, number]; scaleFmt: "float" | "ue8m0"; scaleDtype: "F32" | "F8_E8M0" }
  | { kind: "mx"; element: "float8_e4m3fn" | "float4_e2m1fn"; rule: MxRule };

/** A band conversion request (what a worker receives besides the bytes). */
export interface BandSpec {
  source: SourceCodec;
  target: TargetCodec;
  rows: number;
  cols: number;
  /** Value of the source's per-tensor scalar (source kind `tensor`, or `block` with `tensorScale`). */
  tensorScale?: number;
  /**
   * What a plain F16 target does with finite values beyond ±65504: `saturate` (the default) writes
   * ±65504, `nonfinite` ±Inf (IEEE, numpy). BF16 and F32 targets always round such values to ±Inf
   * (as torch does), and the FP8/MX targets saturate by construction.
   */
  overflow?: Overflow;
}

/** Bytes of one row of `cols` elements. */
export function rowBytes(codec: SourceCodec | TargetCodec, cols: number): number {
  if (codec.kind === "plain") return cols * (codec.dtype === "F32" ? 4 : 2);
  if (codec.kind === "block") return codec.packed ? cols / 2 : cols;
  if (codec.kind === "tensor") return cols;
  return codec.kind === "mx" && codec.element === "float4_e2m1fn" ? cols / 2 : cols;
}

/** Bytes of one block-scale element (0 when the codec has no block scales). */
export function scaleBytes(codec: SourceCodec | TargetCodec): number {
  if (codec.kind === "block") return SCALE_BYTES[codec.scaleStorage];
  if (codec.kind === "fp8-block") return codec.scaleDtype === "F32" ? 4 : 1;
  if (codec.kind === "mx") return 1;
  return 0;
}

/** Scale block of a codec (`[1, 1]` for plain and per-tensor codecs). */
export function blockOf(codec: SourceCodec | TargetCodec): [number, number] {
  if (codec.kind === "block" || codec.kind === "fp8-block") return codec.block;
  if (codec.kind === "mx") return [1, 32];
  return [1, 1];
}

/** The source codec that reads what `target` wrote (used by `--verify`). */
export function targetAsSource(target: TargetCodec): SourceCodec {
  switch (target.kind) {
    case "plain":
      return target;
    case "fp8-block":
      return {
        kind: "block",
        element: "float8_e4m3fn",
        packed: false,
        block: target.block,
        scaleStorage: target.scaleDtype === "F32" ? "f32" : "ue8m0",
      };
    case "mx":
      return {
        kind: "block",
        element: target.element,
        packed: target.element === "float4_e2m1fn",
        block: [1, 32],
        scaleStorage: "ue8m0",
      };
    default:
      return target satisfies never;
  }
}
