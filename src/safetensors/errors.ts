import { Fp8kitError } from "../errors.js";

/**
 * Machine-readable failure kinds of the safetensors layer. The header checks mirror the reference
 * reader's errors (`HeaderTooSmall`, `HeaderTooLarge`, `InvalidHeaderLength`, `InvalidHeader`,
 * `InvalidHeaderDeserialization`, `InvalidOffset`, `ValidationOverflow`, `MisalignedSlice`,
 * `TensorInvalidInfo`, `MetadataIncompleteBuffer`), split finer where a clearer message helps.
 */
export type SafetensorsErrorCode =
  | "header-too-small"
  | "header-too-large"
  | "invalid-header-length"
  | "invalid-utf8"
  | "invalid-header-start"
  | "invalid-json"
  | "duplicate-key"
  | "invalid-metadata"
  | "invalid-tensor-entry"
  | "unknown-dtype"
  | "invalid-shape"
  | "validation-overflow"
  | "misaligned-slice"
  | "invalid-tensor-info"
  | "invalid-offset"
  | "incomplete-buffer"
  | "tensor-not-found"
  | "not-found"
  | "file-too-large"
  | "read-failed"
  | "write-failed"
  | "invalid-argument"
  | "invalid-index"
  | "invalid-size"
  | "unsupported-platform"
  // Remote reads (http-source.ts): a status other than success, 401/403, no answer in time, and a
  // server that answers a Range request with the whole file.
  | "http-error"
  | "unauthorized"
  | "timeout"
  | "range-ignored";

/** Every failure of the safetensors layer (hostile files, bad arguments, I/O) is one of these. */
export class SafetensorsError extends Fp8kitError<SafetensorsErrorCode> {
  override name = "SafetensorsError";
}
