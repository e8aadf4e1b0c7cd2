/**
 * Names of the element and scale formats, spelled as ml_dtypes spells them (safetensors dtype names
 * live in the safetensors layer). The 4- and 6-bit formats store one element per byte in the low
 * bits, as ml_dtypes does; `packFp4` packs two per byte.
 */
export type FormatName =
  | "float8_e4m3fn"
  | "float8_e5m2"
  | "float8_e4m3fnuz"
  | "float8_e5m2fnuz"
  | "float8_e8m0fnu"
  | "float6_e2m3fn"
  | "float6_e3m2fn"
  | "float4_e2m1fn"
  | "hifloat8"
  | "bfloat16"
  | "float16";

/** Formats whose codes fit one byte (Uint8Array); the others use Uint16Array. */
export type ByteFormatName = Exclude<FormatName, "bfloat16" | "float16">;
export type WordFormatName = "bfloat16" | "float16";

/**
 * How a value between two representable neighbours is rounded.
 * - `rne`: to nearest, ties to the code with an even last bit (IEEE default, ml_dtypes, PyTorch).
 * - `ties-away`: to nearest, ties away from zero (HiFloat8's reference, microxcaling's "nearest").
 * - `toward-zero`: truncate the magnitude (IEEE RTZ: finite values never overflow).
 * - `stochastic`: up with probability equal to the distance from the lower neighbour (needs a seed
 *   to be reproducible).
 */
export type Rounding = "rne" | "ties-away" | "toward-zero" | "stochastic";

/**
 * What happens to finite values beyond the largest finite value, and to infinities.
 * - `nonfinite`: what ml_dtypes' cast does: the format's Inf if it has one, else its NaN, else
 *   (4/6-bit formats, which have neither) the largest value.
 * - `saturate`: clamp to +-max; NaN stays NaN.
 */
export type Overflow = "nonfinite" | "saturate";

export interface EncodeOptions {
  /** Default `"rne"` (`"ties-away"` for `hifloat8`, following Huawei's reference). */
  rounding?: Rounding;
  /** Default `"nonfinite"`. */
  overflow?: Overflow;
  /** Integer seed of the stochastic-rounding generator (reproducible results). */
  seed?: number;
}

/**
 * How a format uses its special codes.
 * - `ieee`: exponent all-ones is Inf (mantissa 0) or NaN (bfloat16, float16, float8_e5m2).
 * - `fn`: "finite": no Inf; only the all-ones magnitude code S.1111.111 is NaN (float8_e4m3fn).
 * - `fnuz`: "finite, unsigned zero": no Inf, no -0; the code 0x80 is the only NaN.
 * - `none`: no Inf, no NaN (OCP MX FP6/FP4).
 * - `e8m0`: unsigned powers of two, no zero, 0xFF is NaN.
 * - `tapered`: HiFloat8's prefix-coded exponent field (its own file describes it).
 */
export type SpecialKind = "ieee" | "fn" | "fnuz" | "none" | "e8m0" | "tapered";

/** The facts that define a format; one object per format, read by the shared codec. */
export interface FormatTraits {
  readonly name: FormatName;
  readonly bits: 4 | 6 | 8 | 16;
  readonly exponentBits: number;
  readonly mantissaBits: number;
  readonly bias: number;
  readonly signed: boolean;
  readonly specials: SpecialKind;
  /** Code ml_dtypes produces for a positive NaN input (a negative NaN flips the sign bit), or null. */
  readonly quietNaN: number | null;
  /** Default rounding of the format's reference conversion. */
  readonly defaultRounding: Rounding;
  /** Where the format comes from, for the docs. */
  readonly source: string;
}

/** Traits plus the limits derived from them, as `formatInfo` returns them. */
export interface FormatInfo extends FormatTraits {
  readonly hasInf: boolean;
  readonly hasNaN: boolean;
  readonly hasZero: boolean;
  readonly hasNegativeZero: boolean;
  /** Largest finite value. */
  readonly max: number;
  /** Smallest positive normal value. */
  readonly minNormal: number;
  /** Smallest positive value (equals minNormal for formats without subnormals). */
  readonly minSubnormal: number;
  /** Distance from 1 to the next larger representable value. */
  readonly epsilon: number;
  /** Unbiased exponent of the largest normal binade (torchao's MAX_POW2 / `emax_elem`). */
  readonly emax: number;
  /** Unbiased exponent of the smallest normal binade. */
  readonly emin: number;
  /** Code of +max. */
  readonly maxCode: number;
  /** The positive/negative Inf codes, or null. */
  readonly infCodes: readonly [number, number] | null;
  /** Every code that decodes to NaN. */
  readonly nanCodes: readonly number[];
  /** Number of distinct codes (2^bits). */
  readonly codeCount: number;
}
