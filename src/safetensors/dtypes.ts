/**
 * The safetensors dtypes, spelled exactly as on disk, in the order of the reference's `enum Dtype`
 * (`huggingface/safetensors`, `safetensors/src/tensor.rs`). That order is also the writer's layout
 * order: tensors are sorted by dtype descending (widest first), then by name.
 */
import type { FormatName } from "../formats/index.js";

export const DTYPES = [
  "BOOL",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F8_E4M3FNUZ",
  "F8_E5M2FNUZ",
  "I16",
  "U16",
  "F16",
  "BF16",
  "I32",
  "U32",
  "F32",
  "C64",
  "F64",
  "I64",
  "U64",
] as const;

/** A safetensors dtype name as written in the header. */
export type Dtype = (typeof DTYPES)[number];

/** The first number in a dtype's name is its bit width (`F6_E2M3`: 6, `BF16`: 16); `BOOL` is a byte. */
const BITS = new Map(DTYPES.map((d) => [d, Number(/\d+/.exec(d)?.[0] ?? 8)]));

const RANK = new Map<string, number>(DTYPES.map((d, i) => [d, i]));

/** True when `s` is one of the dtype names the reference accepts (case-sensitive, no aliases). */
export function isDtype(s: unknown): s is Dtype {
  return typeof s === "string" && RANK.has(s);
}

/** Bits per element: 4 for F4, 6 for the F6 types, otherwise 8, 16, 32 or 64. */
export function dtypeBits(dtype: Dtype): number {
  return BITS.get(dtype)!;
}

/**
 * Position of `dtype` in the reference's enum order; the writer sorts by this value descending,
 * which puts 8-byte types first so every tensor starts aligned to its element size.
 */
export function dtypeRank(dtype: Dtype): number {
  return RANK.get(dtype)!;
}

/**
 * The codec format (ml_dtypes' name, `src/formats`) of each safetensors dtype that has one: the one
 * table between the two vocabularies. `F32` and the integer dtypes are not codec formats; `U8`
 * holds whatever a layout puts in it (E8M0 scales, packed FP4), so it is not mapped here either.
 */
export const FORMAT_OF_DTYPE: Readonly<Partial<Record<Dtype, FormatName>>> = {
  F4: "float4_e2m1fn",
  F6_E2M3: "float6_e2m3fn",
  F6_E3M2: "float6_e3m2fn",
  F8_E5M2: "float8_e5m2",
  F8_E4M3: "float8_e4m3fn",
  F8_E8M0: "float8_e8m0fnu",
  F8_E4M3FNUZ: "float8_e4m3fnuz",
  F8_E5M2FNUZ: "float8_e5m2fnuz",
  F16: "float16",
  BF16: "bfloat16",
};

/** The codec format of `dtype`, or null (see `FORMAT_OF_DTYPE`). */
export function formatOfDtype(dtype: Dtype): FormatName | null {
  return FORMAT_OF_DTYPE[dtype] ?? null;
}
