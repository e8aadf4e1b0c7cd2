import { Fp8kitError } from "../errors.js";

/** A conversion that cannot run as asked (bad input, bad options, output in the way, write failure). */
export class ConvertError extends Fp8kitError {
  override name = "ConvertError";
}
