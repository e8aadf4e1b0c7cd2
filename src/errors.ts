/**
 * The one error class of fp8kit. Every failure the library detects (bad arguments, hostile files,
 * inconsistent checkpoints) is thrown as an `Fp8kitError` (or a subclass with its own `name` for a
 * domain, such as `SafetensorsError`), never as a bare `Error`, so callers and the CLI can tell
 * "the input is wrong" from "the program has a bug".
 *
 * `code` is a stable, machine-readable identifier (e.g. `"unknown-format"`, `"header-too-large"`);
 * the message says what was wrong and what is accepted, starting with the file and tensor when
 * there is one. Each layer's subclass narrows `code` to its own union (`ConvertError` takes only
 * `ConvertErrorCode` strings) and sets `name`; nothing else.
 */
export class Fp8kitError<Code extends string = string> extends Error {
  override name = "Fp8kitError";
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True for errors fp8kit threw on purpose (any domain). */
export function isFp8kitError(e: unknown): e is Fp8kitError {
  return e instanceof Fp8kitError;
}
