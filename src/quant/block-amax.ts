import { valuesOf } from "./element-codes.js";
import { QuantError, where } from "./errors.js";
import { f32FromBits } from "./float32.js";
import { BlockRows, type BlockSpec, checkLength, resolveBlock, scaleGrid, view2d } from "./layout.js";

/** A tensor to quantize: float32 values, or raw BF16/F16 codes (never widened as a whole). */
export type QuantInput =
  | Float32Array
  | { readonly dtype: "bfloat16" | "float16"; readonly codes: Uint16Array };

/** Internal view of an input: magnitude bits as unsigned integers, monotonic in |x| for non-NaN. */
export interface InputView {
  readonly kind: "float32" | "bfloat16" | "float16";
  readonly length: number;
  /** Raw bits: Uint32Array over the float32 data, or the 16-bit codes. */
  readonly bits: Uint32Array | Uint16Array;
  /** Mask that clears the sign bit. */
  readonly magMask: number;
  /** Magnitude bits of +Inf; anything larger is NaN. */
  readonly infBits: number;
  /** Float32 value of magnitude bits. */
  magnitude(bits: number): number;
}

/** Normalises and checks an input against its shape. */
export function inputView(x: QuantInput, shape: readonly number[], name?: string): InputView {
  if (x instanceof Float32Array) {
    checkLength(x.length, shape, name);
    return {
      kind: "float32",
      length: x.length,
      bits: new Uint32Array(x.buffer, x.byteOffset, x.length),
      magMask: 0x7fffffff,
      infBits: 0x7f800000,
      magnitude: f32FromBits,
    };
  }
  if (x === null || typeof x !== "object" || !(x.codes instanceof Uint16Array)) {
    throw new QuantError(
      "invalid-input",
      `${where(name)}input must be a Float32Array or { dtype: "bfloat16" | "float16", codes: Uint16Array }`,
    );
  }
  checkLength(x.codes.length, shape, name);
  if (x.dtype !== "bfloat16" && x.dtype !== "float16") {
    throw new QuantError(
      "invalid-input",
      `${where(name)}input dtype "${String((x as { dtype: unknown }).dtype)}" must be "bfloat16" or "float16"`,
    );
  }
  const t = valuesOf(x.dtype);
  return {
    kind: x.dtype,
    length: x.codes.length,
    bits: x.codes,
    magMask: 0x7fff,
    infBits: x.dtype === "bfloat16" ? 0x7f80 : 0x7c00,
    magnitude: (b) => t[b],
  };
}

/**
 * Per-block amax magnitude bits of one band of block rows [r0, r1): `out[j]` for block column j.
 * Integer compares on the sign-cleared bits (monotonic for finite values and Inf); a NaN makes the
 * maximum exceed the Inf pattern, which callers read as NaN (torch.amax propagates NaN).
 */
export function bandAmaxBits(
  v: InputView,
  cols: number,
  r0: number,
  r1: number,
  bc: number,
  out: Uint32Array,
): void {
  const bits = v.bits;
  const mask = v.magMask;
  out.fill(0);
  for (let r = r0; r < r1; r++) {
    const rowStart = r * cols;
    for (let j = 0, c0 = 0; c0 < cols; j++, c0 += bc) {
      const end = rowStart + Math.min(c0 + bc, cols);
      let m = out[j];
      for (let i = rowStart + c0; i < end; i++) {
        const b = bits[i] & mask;
        if (b > m) m = b;
      }
      out[j] = m;
    }
  }
}

/** Float32 amax from magnitude bits (NaN beyond the Inf pattern). */
export function amaxFromBits(v: InputView, b: number): number {
  return b > v.infBits ? Number.NaN : v.magnitude(b);
}

/**
 * Per-block max |x| over the 2-D view of `shape`, row-major over the block grid (`BlockRows`: per
 * matrix for stacked tensors). Partial edge
 * blocks take the max over the elements that exist (zero padding never changes an amax). A block
 * containing a NaN has amax NaN; a block containing an Inf (and no NaN) has amax Inf.
 */
export function blockAmax(
  x: QuantInput,
  shape: readonly number[],
  block: BlockSpec,
  name?: string,
): Float32Array {
  const v = inputView(x, shape, name);
  const [, cols] = view2d(shape);
  const [, bc] = resolveBlock(shape, block, name);
  const [gr, gc] = scaleGrid(shape, block);
  const blockRows = new BlockRows(shape, block);
  const out = new Float32Array(gr * gc);
  const tmp = new Uint32Array(gc);
  for (let g = 0; g < gr; g++) {
    bandAmaxBits(v, cols, blockRows.start(g), blockRows.end(g), bc, tmp);
    for (let j = 0; j < gc; j++) out[g * gc + j] = amaxFromBits(v, tmp[j]);
  }
  return out;
}
