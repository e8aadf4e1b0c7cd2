import { Fp8kitError } from "../errors.js";

/** Machine-readable failure kinds of the checkpoint layer. */
export type CheckpointErrorCode = "invalid-config";

/** A checkpoint whose config or layout cannot be used (message names the file and tensor). */
export class CheckpointError extends Fp8kitError<CheckpointErrorCode> {
  override name = "CheckpointError";
}
