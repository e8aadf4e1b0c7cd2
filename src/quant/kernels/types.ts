/**
 * What the band kernels convert between, and the geometry planning needs (bytes per row, per
 * scale, block of a codec). Types and pure arithmetic only: planning imports this file, never the
 * kernels, so planning and kernels do not depend on each other.
 */
import type { Overflow } from "../../formats/index.js";
import { SCALE_BYTES, type ScaleStorage } from "../scale-encoding.js";

export type PlainDtype = "BF16" | "F16" | "F32";
/**
 * MX scale rules: torchao's four, and the rules of compressed-tensors (`ct`), ModelOpt (`modelopt`)
 * and triton_kernels / gpt-oss (`triton`), docs/SCALE-RULES.md.
 */
export type MxRule = "floor" | "ceil" | "even" | "rceil" | "ct" | "modelopt" | "triton";
/** Whose FP8 requantization a fp8-block target reproduces (convert `--requant`): see `BandSpec.via`. */
export type RequantPath = "vllm" | "sglang";
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
    }
  | IntChannelCodec;

/**
 * Per-output-channel symmetric integers with one float32 scale per row (Ascend W8A8_DYNAMIC,
 * W4A8_DYNAMIC): INT8 `[rows, cols]`, or INT4 packed two per byte along the rows (`[rows / 2,
 * cols]`, rows 2j / 2j+1 in the low / high nibble). As a target, `scaleBias` asks for W4A8's
 * per-row `scale_bias` with 1 or 16 columns (`BandSpec`'s auxiliary output).
 */
export interface IntChannelCodec {
  kind: "int-channel";
  bits: 8 | 4;
  scaleBias?: 1 | 16;
}

/** A block as wide as any row: the block of a per-row (channel) scale. */
export const WHOLE_ROW = Number.MAX_SAFE_INTEGER;

/** How the output band is encoded. */
export type TargetCodec =
  | { kind: "plain"; dtype: PlainDtype }
  | {
      kind: "fp8-block";
      block: [number, number];
      scaleFmt: "float" | "ue8m0";
      /** F32 multipliers (DeepSeek), F8_E8M0 bytes, or BF16 (compressed-tensors: the weight's dtype). */
      scaleDtype: "F32" | "F8_E8M0" | "BF16";
    }
  | { kind: "mx"; element: "float8_e4m3fn" | "float4_e2m1fn"; rule: MxRule }
  | {
      /**
       * NVFP4: E2M1 codes packed two per byte, one E4M3 scale per 16, and a float32 per-tensor
       * scalar (`BandSpec.outTensorScale`) that multiplies (ModelOpt `weight_scale_2`) or divides
       * (compressed-tensors `weight_global_scale`) every block scale.
       */
      kind: "nvfp4";
      tensorScale: "multiply" | "divide";
      /** Whose scale rule computes the scales: ModelOpt's export or compressed-tensors' quantizer (docs/LAYOUTS.md). */
      rule: Nvfp4Rule;
    }
  | IntChannelCodec;

/** The NVFP4 producers whose scale rules fp8kit reproduces. */
export type Nvfp4Rule = "modelopt" | "compressed-tensors";

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
  /**
   * Relabel instead of converting (relabel-band.ts): the codes are kept byte for byte and only the
   * scales are re-encoded into the target's storage; `lossy` lets a scale the storage cannot hold
   * round to nearest (else that is an error).
   */
  relabel?: { lossy: boolean };
  /** The float32 per-tensor scalar the target stores (NVFP4 targets). */
  outTensorScale?: number;
  /**
   * Round the decoded values to BF16 before encoding: SGLang's requantization dequantizes block FP8
   * to a BF16 weight first, vLLM's keeps float32 (`RequantPath`).
   */
  via?: "BF16";
  /** Write the band's matrix transposed (a plain target; the band is one whole matrix). */
  transpose?: boolean;
  /** The band's input holds its matrix transposed (`cols x rows`, a plain source; one whole matrix). */
  transposeInput?: boolean;
}

/** Bytes of one row of `cols` elements. */
export function rowBytes(codec: SourceCodec | TargetCodec, cols: number): number {
  if (codec.kind === "plain") return cols * (codec.dtype === "F32" ? 4 : 2);
  if (codec.kind === "block") return codec.packed ? cols / 2 : cols;
  if (codec.kind === "tensor") return cols;
  if (codec.kind === "nvfp4") return cols / 2;
  if (codec.kind === "int-channel") return codec.bits === 4 ? cols / 2 : cols;
  return codec.kind === "mx" && codec.element === "float4_e2m1fn" ? cols / 2 : cols;
}

/** Bytes of one block-scale element (0 when the codec has no block scales). */
export function scaleBytes(codec: SourceCodec | TargetCodec): number {
  if (codec.kind === "block") return SCALE_BYTES[codec.scaleStorage];
  const storage = targetScaleStorage(codec);
  return storage === null ? 0 : SCALE_BYTES[storage];
}

/** How a target codec stores its block scales (null for plain targets). */
export function targetScaleStorage(codec: SourceCodec | TargetCodec): ScaleStorage | null {
  switch (codec.kind) {
    case "block":
      return codec.scaleStorage;
    case "fp8-block":
      return FP8_BLOCK_STORAGE[codec.scaleDtype];
    case "mx":
      return "ue8m0";
    case "nvfp4":
      return "e4m3";
    case "int-channel":
      return "f32";
    default:
      return null;
  }
}

const FP8_BLOCK_STORAGE = { F32: "f32", F8_E8M0: "ue8m0", BF16: "bf16" } as const;

/** Scale block of a codec (`[1, 1]` for plain and per-tensor codecs). */
export function blockOf(codec: SourceCodec | TargetCodec): [number, number] {
  if (codec.kind === "block" || codec.kind === "fp8-block") return codec.block;
  if (codec.kind === "mx") return [1, 32];
  if (codec.kind === "nvfp4") return [1, 16];
  // INT4 rows pack in pairs: a band holds an even number of rows (the scales are still per row).
  if (codec.kind === "int-channel") return [1, WHOLE_ROW];
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
        scaleStorage: FP8_BLOCK_STORAGE[target.scaleDtype],
      };
    case "mx":
      return {
        kind: "block",
        element: target.element,
        packed: target.element === "float4_e2m1fn",
        block: [1, 32],
        scaleStorage: "ue8m0",
      };
    case "nvfp4":
      return {
        kind: "block",
        element: "float4_e2m1fn",
        packed: true,
        block: [1, 16],
        scaleStorage: "e4m3",
        tensorScale: target.tensorScale,
      };
    case "int-channel":
      return { kind: "int-channel", bits: target.bits };
    default:
      return target satisfies never;
  }
}
