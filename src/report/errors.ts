import { Fp8kitError } from "../errors.js";

/**
 * Machine-readable failure kinds of the report layer: a checkpoint with nothing to inspect
 * (`no-safetensors`, `invalid-config`, `invalid-index`), the HTML report's optional chart packages
 * not installed (`missing-package`), and a report file that cannot be written (`write-failed`).
 * Opening and reading the checkpoint fails with the safetensors layer's errors.
 */
export type ReportErrorCode =
  | "no-safetensors"
  | "invalid-config"
  | "invalid-index"
  | "missing-package"
  | "write-failed";

/** Every failure of inspect, lint, audit and the HTML report (the message names the file). */
export class ReportError extends Fp8kitError<ReportErrorCode> {
  override name = "ReportError";
}
