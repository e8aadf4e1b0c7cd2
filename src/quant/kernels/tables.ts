/**
 * The element conversions the band kernels use, bound once from the codec layer (one shared codec:
 * nothing here re-implements a format). Each is a table or a one-value function from float32 bits,
 * so the band loops can fuse it with scaling and error statistics.
 */
import { float32BitsEncoder, type Overflow } from "../../formats/index.js";
import { valuesOf } from "../element-codes.js";

/**
 * The 256 E4M3 values and the E2M1 values (codes 0..15), as float32. The 65536 float16 values are
 * `valuesOf("float16")`, taken where used: decoding them at import cost every worker thread tens of
 * milliseconds at start, for the few conversions that need them.
 */
export const E4M3_VALUES: Float32Array = valuesOf("float8_e4m3fn");
export const E2M1_VALUES: Float32Array = valuesOf("float4_e2m1fn");

/** Largest E4M3 magnitude: scaled values beyond it saturate. */
export const E4M3_MAX = 448;

/**
 * float32 bits -> E4M3 code, RNE, saturating to +-448 (the satfinite cast of Triton/DeepGEMM and of
 * torch for |x| <= 464); NaN stays NaN (0x7F with the sign).
 */
export const e4m3FromBits: (bits: number) => number = float32BitsEncoder("float8_e4m3fn", {
  overflow: "saturate",
});

/** float32 bits -> E2M1 code, RNE, saturating to +-6; NaN as ml_dtypes gives it. */
export const e2m1FromBits: (bits: number) => number = float32BitsEncoder("float4_e2m1fn", {
  overflow: "saturate",
});

/** float32 bits -> bfloat16 bits, RNE (torch `.to(torch.bfloat16)` for finite values). */
export const bf16FromBits: (bits: number) => number = float32BitsEncoder("bfloat16");

/** float32 bits -> float16 bits, RNE, overflow to Inf (IEEE / numpy astype). */
export const f16FromBits: (bits: number) => number = float32BitsEncoder("float16");

/** Largest float16 magnitude. */
export const F16_MAX = 65504;

/**
 * float32 bits -> float16 bits, RNE, finite values beyond the range as `overflow` says: ±Inf
 * (`nonfinite`, as `f16FromBits`: from 65520 up) or ±65504 (`saturate`). NaN and ±Inf inputs stay
 * NaN and ±Inf under both, so the NaN/Inf of the output are those of the input plus the overflows.
 */
export function f16Of(bits: number, overflow: Overflow): number {
  const h = f16FromBits(bits);
  // 0x7c00 / 0xfc00 (±Inf) minus one is 0x7bff / 0xfbff (±65504).
  return overflow === "saturate" && (h & 0x7fff) === 0x7c00 && (bits & 0x7f800000) !== 0x7f800000 ? h - 1 : h;
}

/**
 * The codes of +NaN, what every element of a block with a NaN scale becomes (E2M1 has no NaN: the
 * codec gives ml_dtypes' 0x8). Functions, so the encoders' tables are built on first use, not at
 * import.
 */
export const e4m3Nan = (): number => e4m3FromBits(0x7fc00000);
export const e2m1Nan = (): number => e2m1FromBits(0x7fc00000);

const roundBuf = new Float32Array(1);
const roundBits = new Uint32Array(roundBuf.buffer);

/** `v` rounded to BF16 (RNE) and widened back to float32: `v.to(torch.bfloat16).float()`. */
export function bf16Round(v: number): number {
  roundBuf[0] = v;
  roundBits[0] = bf16FromBits(roundBits[0]) << 16;
  return roundBuf[0];
}

/** Round every value of `x` to BF16 in place (`BandSpec.via`). */
export function roundToBf16(x: Float32Array): void {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < u.length; i++) u[i] = bf16FromBits(u[i]) << 16;
}
