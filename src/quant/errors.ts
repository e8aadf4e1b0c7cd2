import { Fp8kitError } from "../errors.js";

/**
 * Errors of the quantization layer: bad shapes, block shapes, schemes, scale tensors and scale
 * conversions that would lose information. `code` is one of the `QuantErrorCode` strings; the
 * message names the tensor (when the caller gave a name), the shape and the expected value.
 */
export type QuantErrorCode =
  | "invalid-shape"
  | "invalid-block"
  | "invalid-scheme"
  | "unknown-format"
  | "unknown-rule"
  | "unknown-preset"
  | "invalid-scales"
  | "scale-not-power-of-two"
  | "scale-not-representable"
  | "invalid-input";

export class QuantError extends Fp8kitError<QuantErrorCode> {
  override name = "QuantError";
}

/** Prefix for messages: `tensor "name": ` when a name is known. */
export function where(name: string | undefined): string {
  return name === undefined ? "" : `tensor "${name}": `;
}
