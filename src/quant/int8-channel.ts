/**
 * Per-output-channel symmetric INT8 (Ascend W8A8_DYNAMIC weights) computed the way msModelSlim's
 * data-free min-max path computes it for a DeepSeek FP8 checkpoint (../shared/docs/ASCEND.md §5,
 * §7): the FP8 weight is first dequantized to BF16 as msModelSlim's converter does, then every row
 * gets one scale from its BF16 amax and every element one INT8 code, all in BF16 arithmetic.
 *
 * Upstream (msModelSlim, github.com/Ascend/msmodelslim @3de0a3c):
 * - FP8 -> BF16: `(weight.to(float32) * scale_inv.repeat_interleave(128, 0).repeat_interleave(128,
 *   1)[:m, :n]).to(bfloat16)` — msmodelslim/ir/kernels/fp8_block.py:18-35,
 *   msmodelslim/model/deepseek_v3/convert_fp8_to_bf16.py:38-70 (ASCEND.md §5, §7 step 1).
 * - Scale and codes: `WeightPerChannelMinmax` (msmodelslim/core/quantizer/impl/minmax.py:202-235)
 *   through msmodelslim/ir/api/impl/int_quantization.py:41-97,130-157 (ASCEND.md §5 steps 1-4):
 *   row min/max clamped to include 0, `scale = max(-min, max) / 127.0`, `scale = max(scale, eps)`
 *   with eps = float32 eps (2^-23) cast to the weight dtype, `q = (W / scale).round_()` (torch.round:
 *   half to even), clamped to [-128, 127], `.to(int8)`; the scale is saved as float32 [out, 1]
 *   (ascendv1.py:337-348, ASCEND.md §2.1).
 * - DeepSeek layers are BF16 (model_adapter.py:98-131), so min/max, the scale and W / scale are BF16
 *   tensors: PyTorch evaluates each BF16 op in float32 and rounds the result to BF16 (RNE), which is
 *   what the code below does step by step (ASCEND.md §5, marked [derived] there).
 *
 * Not reproduced, by construction: the calibrated smoothing / QuaRot that published DeepSeek W8A8
 * checkpoints add (ASCEND.md §5), and any difference of NPU BF16 arithmetic from CPU PyTorch
 * (ASCEND.md §8 question 2).
 */
import { QuantError, where } from "./errors.js";
import { decodeBand } from "./kernels/decode-band.js";
import {
  decodeIntChannel,
  INT_CHANNEL_EPS,
  type IntChannelBand,
  intChannelScale,
  quantizeIntChannel,
} from "./kernels/encode-int-channel.js";
import { roundToBf16 } from "./kernels/tables.js";
import type { SourceCodec } from "./kernels/types.js";

/** msModelSlim's scale floor: `torch.finfo(torch.float32).eps` cast to BF16 (exact: 2^-23). */
export const INT8_CHANNEL_EPS = INT_CHANNEL_EPS;

/**
 * DeepSeek's FP8 weight as msModelSlim reads it: E4M3 codes, one float32 `weight_scale_inv` per
 * 128 x 128 block (the block size msModelSlim's DeepSeek converter hard-codes).
 */
export const DEEPSEEK_FP8_SOURCE: SourceCodec = {
  kind: "block",
  element: "float8_e4m3fn",
  packed: false,
  block: [128, 128],
  scaleStorage: "f32",
};

/**
 * A band of `rows x cols` FP8 E4M3 codes with its float32 `weight_scale_inv` blocks (the
 * `ceil(rows / 128) x ceil(cols / 128)` rows of the scale grid, as float32 values or their
 * little-endian bytes) dequantized as msModelSlim's converter does: fl32(e4m3 * scale_inv), then
 * rounded to BF16 (RNE). Returns the BF16 values widened to float32. The band starts on a 128-row
 * block boundary. A NaN code or scale gives NaN; a product beyond the BF16 range gives ±Inf
 * (torch's `.to(bfloat16)` overflows to Inf).
 */
export function fp8BlockToBf16(
  codes: Uint8Array,
  scaleInv: Float32Array | Uint8Array,
  rows: number,
  cols: number,
  name?: string,
): Float32Array {
  checkBand(codes.length, rows, cols, "FP8 codes", name);
  const blocks = Math.ceil(rows / 128) * Math.ceil(cols / 128);
  const bytes =
    scaleInv instanceof Float32Array
      ? new Uint8Array(scaleInv.buffer, scaleInv.byteOffset, scaleInv.byteLength)
      : scaleInv;
  if (bytes.length !== blocks * 4) {
    throw new QuantError(
      "invalid-scales",
      `${where(name)}weight_scale_inv band of ${bytes.length} bytes does not match ${rows} x ${cols} ` +
        `in 128 x 128 blocks: expected ${blocks} float32 values (${blocks * 4} bytes)`,
    );
  }
  const x = decodeBand(DEEPSEEK_FP8_SOURCE, codes, bytes, rows, cols);
  roundToBf16(x);
  return x;
}

/**
 * The W8A8_DYNAMIC scale of a row whose largest magnitude is `amax`: max(bf16(fl32(bf16(amax) /
 * 127)), 2^-23), a BF16-representable value. NaN amax gives NaN (torch.maximum propagates NaN), Inf
 * gives Inf; a zero row gets the 2^-23 floor.
 */
export function int8ChannelScale(amax: number): number {
  return intChannelScale(amax, 8);
}

/** A quantized band: `rows * cols` codes (row-major) and one float32 scale per row. */
export type Int8ChannelBand = IntChannelBand;

/**
 * Quantizes a band of `rows x cols` weight values (the BF16 weight, e.g. from `fp8BlockToBf16`;
 * other values are first rounded to BF16, as `.to(bfloat16)` would) to per-row symmetric INT8 as
 * msModelSlim's `WeightPerChannelMinmax` does for a BF16 model: s = `int8ChannelScale(row amax)`,
 * q = clamp(round_half_even(bf16(fl32(w / s))), -128, 127).
 *
 * Non-finite input has no defined upstream result: a NaN or ±Inf in a row makes its scale NaN or
 * Inf and every w / s NaN or ±0, and torch's float -> int8 cast of NaN is undefined behaviour (x86
 * CPUs give 0). Here such codes are 0 and the row is counted in `nonFiniteRows`, so the caller can
 * refuse the tensor; the scale is kept as computed (NaN or Inf).
 */
export function quantizeInt8Channel(
  x: Float32Array,
  rows: number,
  cols: number,
  name?: string,
): Int8ChannelBand {
  checkBand(x.length, rows, cols, "weight values", name);
  return quantizeIntChannel(x, rows, cols, 8);
}

/**
 * The values a W8A8_DYNAMIC band stands for: fl32(q * s) per element (`(weight - weight_offset) *
 * weight_scale` in float32 with a zero offset, ascendv1.md:170-187), for error statistics and
 * `--verify`. A NaN or Inf scale gives a NaN row (0 * Inf is NaN).
 */
export function decodeInt8Channel(
  codes: Int8Array,
  scales: Float32Array,
  rows: number,
  cols: number,
): Float32Array {
  checkBand(codes.length, rows, cols, "INT8 codes");
  if (scales.length !== rows) {
    throw new QuantError("invalid-scales", `${scales.length} scales for ${rows} rows: expected one per row`);
  }
  const bytes = (a: Int8Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return decodeIntChannel(8, bytes(codes), bytes(scales), rows, cols);
}

function checkBand(length: number, rows: number, cols: number, what: string, name?: string): void {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0) {
    throw new QuantError(
      "invalid-shape",
      `${where(name)}band of ${rows} x ${cols}: rows and columns must be counts`,
    );
  }
  if (length !== rows * cols) {
    throw new QuantError(
      "invalid-shape",
      `${where(name)}${what} of ${length} elements do not match a ${rows} x ${cols} band (${rows * cols})`,
    );
  }
}
