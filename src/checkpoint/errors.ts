import { Fp8kitError } from "../errors.js";

/** A checkpoint whose config or layout cannot be used (message names the file and tensor). */
export class CheckpointError extends Fp8kitError {
  override name = "CheckpointError";
}
