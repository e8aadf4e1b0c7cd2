/**
 * The safetensors dtypes, spelled exactly as on disk, in the order of the reference's `enum Dtype`
 * (`huggingface/safetensors`, `safetensors/src/tensor.rs`). That order is also the writer's layout
 * order: tensors are sorted by dtype descending (widest first), then by name.
 */
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

const BITS: Record<Dtype, number> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

const RANK = new Map<string, number>(DTYPES.map((d, i) => [d, i]));

/** True when `s` is one of the dtype names the reference accepts (case-sensitive, no aliases). */
export function isDtype(s: unknown): s is Dtype {
  return typeof s === "string" && RANK.has(s);
}

/** Bits per element: 4 for F4, 6 for the F6 types, otherwise 8, 16, 32 or 64. */
export function dtypeBits(dtype: Dtype): number {
  return BITS[dtype];
}

/**
 * Position of `dtype` in the reference's enum order; the writer sorts by this value descending,
 * which puts 8-byte types first so every tensor starts aligned to its element size.
 */
export function dtypeRank(dtype: Dtype): number {
  return RANK.get(dtype)!;
}

/** True for F4, F6_E2M3 and F6_E3M2, whose elements do not fill a whole byte. */
export function isSubByte(dtype: Dtype): boolean {
  return BITS[dtype] < 8;
}
