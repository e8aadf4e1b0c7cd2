import { Fp8kitError } from "../errors.js";

/**
 * Machine-readable failure kinds of the formats layer (codecs, packing, encode options). The
 * message names the format and the accepted values.
 */
export type FormatErrorCode =
  | "unknown-format"
  | "invalid-array"
  | "invalid-code"
  | "invalid-options"
  | "invalid-rounding"
  | "invalid-overflow"
  | "invalid-seed"
  | "length-mismatch";

/** Every failure of the codecs (unknown format, wrong array type, stray code bits, bad options). */
export class FormatError extends Fp8kitError<FormatErrorCode> {
  override name = "FormatError";
}
