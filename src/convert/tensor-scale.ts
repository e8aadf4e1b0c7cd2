/**
 * The per-tensor scalar of an op (`TensorOp.input.tensorScale`: per-tensor FP8's `weight_scale`,
 * ModelOpt NVFP4's `weight_scale_2`, compressed-tensors' `weight_global_scale`), read once per op
 * through the safetensors layer and handed to the band kernels as `BandSpec.tensorScale`.
 */
import { decode } from "../formats/index.js";
import type { Checkpoint } from "../safetensors/index.js";
import { ConvertError } from "./errors.js";
import type { TensorOp } from "./plan.js";

/** Dtypes a per-tensor scale is stored in by the stacks that write one (16-bit as their codec). */
const SCALAR_FORMATS = { F32: null, BF16: "bfloat16", F16: "float16" } as const;

/**
 * The float32 value of `op`'s per-tensor scale, or undefined when it has none. The tensor must be
 * F32, BF16 or F16 of shape [] or [1], and its value finite and positive (a scale divides or
 * multiplies every element); anything else is a `ConvertError` naming the shard and tensor.
 */
export async function readTensorScale(input: Checkpoint, op: TensorOp): Promise<number | undefined> {
  const name = op.input.tensorScale;
  if (name === null) return undefined;
  const t = input.get(name);
  const where = `${op.input.tensorScaleShard ?? t.shard}: tensor "${name}"`;
  const invalid = (why: string) => new ConvertError("invalid-layout", `${where}: ${why}`);
  if (!(t.dtype in SCALAR_FORMATS))
    throw invalid(`a per-tensor scale must be F32, BF16 or F16, not ${t.dtype}`);
  if (!(t.shape.length === 0 || (t.shape.length === 1 && t.shape[0] === 1))) {
    throw invalid(`a per-tensor scale must have shape [] or [1], not [${t.shape}]`);
  }
  const bytes = await input.readBytes(name);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = SCALAR_FORMATS[t.dtype as keyof typeof SCALAR_FORMATS];
  const value = format === null ? view.getFloat32(0, true) : decode(format, [view.getUint16(0, true)])[0];
  if (!(Number.isFinite(value) && value > 0))
    throw invalid(`per-tensor scale ${value} is not a finite positive number`);
  return value;
}

/** The float32 reciprocal of one little-endian F32 value (`TensorOp.reciprocal`). */
export function reciprocalF32(bytes: Uint8Array): Uint8Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, 4).getFloat32(0, true);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setFloat32(0, 1 / v, true);
  return out;
}
