import { Fp8kitError } from "../errors.js";

/** Machine-readable failure kinds of the command line itself. */
export type CliErrorCode =
  /** Unknown option, missing or malformed value, wrong number of arguments. */
  | "usage"
  /** `fp8kit demo` cannot find the bundled sample checkpoint. */
  | "sample-missing"
  /** Stopped by SIGINT/SIGTERM (see interrupt.ts). */
  | "interrupted"
  /** Standard output or error failed for another reason than a closed pipe (a full disk, EIO). */
  | "output-failed";

/** A command line that cannot run as written (the message says which option and what is accepted). */
export class CliError extends Fp8kitError<CliErrorCode> {
  override name = "CliError";
}
