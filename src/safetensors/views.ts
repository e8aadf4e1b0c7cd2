import { LITTLE_ENDIAN } from "../formats/endian.js";
import type { Dtype } from "./dtypes.js";
import { SafetensorsError } from "./errors.js";

/** The dtypes viewed as something other than bytes (`DtypeArrayMap`). C64 is interleaved (re, im). */
interface WideArrays {
  I8: Int8Array;
  I16: Int16Array;
  U16: Uint16Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I32: Int32Array;
  U32: Uint32Array;
  F32: Float32Array;
  C64: Float32Array;
  F64: Float64Array;
  I64: BigInt64Array;
  U64: BigUint64Array;
}

/**
 * The typed array each dtype is viewed as. Floating-point codes that JavaScript has no array for
 * stay as raw codes: F16/BF16 as Uint16Array, every 8-bit float (FP8, E8M0) and BOOL as Uint8Array,
 * the sub-byte F4/F6 as their packed bytes.
 */
export type DtypeArrayMap = { [D in Dtype]: D extends keyof WideArrays ? WideArrays[D] : Uint8Array };

export type TypedArrayFor<D extends Dtype> = DtypeArrayMap[D];
export type AnyTensorArray = DtypeArrayMap[Dtype];

type Ctor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): AnyTensorArray;
  BYTES_PER_ELEMENT: number;
};

const CTORS: Record<keyof WideArrays, Ctor> = {
  I8: Int8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  C64: Float32Array,
  F64: Float64Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
};

/**
 * View little-endian tensor bytes as the dtype's typed array (see `DtypeArrayMap`). Zero-copy when
 * `bytes.byteOffset` is a multiple of the element size; otherwise the bytes are copied into a fresh,
 * aligned buffer (headers of unpadded files leave data at odd offsets). Safetensors data is
 * little-endian, so big-endian hosts are refused rather than silently misread.
 */
export function viewAs<D extends Dtype>(dtype: D, bytes: Uint8Array): TypedArrayFor<D> {
  const C = CTORS[dtype as keyof WideArrays] ?? Uint8Array;
  const size = C.BYTES_PER_ELEMENT;
  if (size > 1 && !LITTLE_ENDIAN) {
    throw new SafetensorsError("unsupported-platform", `typed views of ${dtype} need a little-endian host`);
  }
  if (bytes.length % size !== 0) {
    throw new SafetensorsError(
      "invalid-argument",
      `${bytes.length} bytes are not a whole number of ${dtype} elements`,
    );
  }
  const src = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return new C(src.buffer, src.byteOffset, src.length / size) as TypedArrayFor<D>;
}
