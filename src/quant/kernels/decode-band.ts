/**
 * Decoding a source band into float32 values: the first half of every band conversion, and the
 * reader of `--verify`. A band is `rows x cols` elements of one matrix (leading dimensions already
 * split off); when a block has more than one row the band starts on a block row, so its scale rows
 * are `ceil(rows / blockRows)` rows of the scale grid.
 */
import { LITTLE_ENDIAN } from "../../formats/endian.js";
import { valuesOf } from "../element-codes.js";
import { QuantError } from "../errors.js";
import { decodeScales, scaleArrayOfBytes } from "../scale-storage.js";
import { decodeIntChannel } from "./encode-int-channel.js";
import type { PlainDtype, SourceCodec } from "./types.js";

type BlockSource = Extract<SourceCodec, { kind: "block" }>;

/** The per-tensor float32 scalar a source needs (`tensor` sources, `block` with `tensorScale`). */
export function tensorScaleOf(src: SourceCodec, tensorScale: number | undefined): number {
  if (tensorScale === undefined || !Number.isFinite(tensorScale)) {
    throw new QuantError(
      "invalid-scales",
      `a ${src.kind} source with a per-tensor scale needs its finite float32 value, got ${tensorScale}`,
    );
  }
  return Math.fround(tensorScale);
}

/**
 * The float32 multiplier of every block of a band of a block source (`ceil(rows / br) x
 * ceil(cols / bc)`, row-major): the stored scale decoded exactly, combined with the per-tensor
 * scalar when the source has one: fl32(s * t) (ModelOpt NVFP4 `weight_scale_2`) or fl32(s / t)
 * (compressed-tensors NVFP4 `weight_global_scale`, the reciprocal).
 */
export function bandScales(
  src: BlockSource,
  scale: Uint8Array,
  rows: number,
  cols: number,
  tensorScale?: number,
): Float32Array {
  const n = Math.ceil(rows / src.block[0]) * Math.ceil(cols / src.block[1]);
  const s = decodeScales(scaleArrayOfBytes(src.scaleStorage, scale, n), src.scaleStorage);
  if (src.tensorScale !== undefined) {
    const t = tensorScaleOf(src, tensorScale);
    if (src.tensorScale === "multiply") for (let i = 0; i < n; i++) s[i] = s[i] * t;
    else for (let i = 0; i < n; i++) s[i] = s[i] / t;
  }
  return s;
}

/** float32 values of a plain band (BF16 and F16 widened exactly), into `into` when given. */
function decodePlain(dtype: PlainDtype, data: Uint8Array, n: number, into?: Float32Array): Float32Array {
  const out = into ?? new Float32Array(n);
  const size = dtype === "F32" ? 4 : 2;
  if (!LITTLE_ENDIAN) throw new QuantError("invalid-input", "band kernels need a little-endian platform");
  const b = data.byteOffset % size === 0 ? data : data.slice(0, n * size);
  if (dtype === "F32") out.set(new Float32Array(b.buffer, b.byteOffset, n));
  else {
    const h = new Uint16Array(b.buffer, b.byteOffset, n);
    if (dtype === "BF16") {
      const u = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) u[i] = h[i] << 16;
    } else {
      const f16 = valuesOf("float16");
      for (let i = 0; i < n; i++) out[i] = f16[h[i]];
    }
  }
  return out;
}

/**
 * Decode a source band into float32 values (`rows * cols`). Quantized sources compute
 * fl32(decode(code) * s) with s the block's float32 multiplier (`bandScales`) or the per-tensor
 * scale, as DeepSeek's Triton `weight_dequant` (`x.to(float32) * s`), torchao's and ModelOpt's
 * dequantization do; a NaN block scale makes the whole block NaN. Packed 4-bit codes hold element
 * 2i in the low nibble of byte i (rows of an even number of elements). `into` (`rows * cols`
 * elements), when given, receives the values of plain and 8/4-bit sources instead of a new array.
 */
export function decodeBand(
  src: SourceCodec,
  data: Uint8Array,
  scale: Uint8Array | null,
  rows: number,
  cols: number,
  tensorScale?: number,
  into?: Float32Array,
): Float32Array {
  const n = rows * cols;
  if (src.kind === "plain") return decodePlain(src.dtype, data, n, into);
  if (src.kind === "int-channel") {
    if (scale === null)
      throw new QuantError("invalid-scales", "an integer channel band needs its row scales");
    return decodeIntChannel(src.bits, data, scale, rows, cols);
  }
  const out = into ?? new Float32Array(n);
  const values = valuesOf(src.element);
  if (src.kind === "tensor") {
    const t = tensorScaleOf(src, tensorScale);
    for (let i = 0; i < n; i++) out[i] = values[data[i]] * t;
    return out;
  }
  if (scale === null) throw new QuantError("invalid-scales", "a block source band needs its scale bytes");
  const [br, bc] = src.block;
  const sc = Math.ceil(cols / bc);
  const s = bandScales(src, scale, rows, cols, tensorScale);
  if (src.packed && (bc % 2 !== 0 || cols % 2 !== 0)) {
    throw new QuantError(
      "invalid-block",
      `packed 4-bit codes need rows and blocks of an even width, got ${cols} columns in blocks of ${bc}`,
    );
  }
  for (let r = 0; r < rows; r++) {
    const srow = Math.floor(r / br) * sc;
    const o = r * cols;
    for (let cb = 0; cb < sc; cb++) {
      const sv = s[srow + cb];
      const c0 = cb * bc;
      const c1 = Math.min(cols, c0 + bc);
      // A NaN scale makes its block NaN (never NaN * NaN, whose sign JavaScript leaves open).
      if (Number.isNaN(sv)) out.fill(Number.NaN, o + c0, o + c1);
      else if (src.packed) {
        for (let c = c0; c < c1; c += 2) {
          const byte = data[(o + c) >> 1];
          out[o + c] = values[byte & 15] * sv;
          out[o + c + 1] = values[byte >> 4] * sv;
        }
      } else for (let c = c0; c < c1; c++) out[o + c] = values[data[o + c]] * sv;
    }
  }
  return out;
}
