import { Fp8kitError } from "../errors.js";

/**
 * Machine-readable failure kinds of a conversion: of the input, the options, the output directory,
 * I/O and workers. `unsupported-layout` is a layout fp8kit knows but cannot write this target from.
 */
export type ConvertErrorCode =
  | "input-missing"
  | "invalid-input"
  | "invalid-layout"
  | "unsupported-layout"
  | "nonfinite"
  | "invalid-scales"
  | "lossy-relabel"
  | "invalid-option"
  | "output-exists"
  | "output-in-input"
  | "output-locked"
  | "incomplete"
  | "read-failed"
  | "write-failed"
  | "worker-failed";

/** A conversion that cannot run as asked (bad input, bad options, output in the way, write failure). */
export class ConvertError extends Fp8kitError<ConvertErrorCode> {
  override name = "ConvertError";
}
