import { Fp8kitError } from "../errors.js";

/**
 * Exit codes shared by every command:
 * 0 success; 1 the command ran and found problems (lint findings, verify mismatches);
 * 2 bad usage, bad input or a file-system failure (an `Fp8kitError` of any layer, whose message
 *   names the file and tensor, or a Node system error, printed with its path);
 * 3 an unexpected internal error (a bug: the stack is printed only with FP8KIT_DEBUG=1).
 */
export const EXIT_OK = 0;
export const EXIT_FINDINGS = 1;
export const EXIT_INPUT = 2;
export const EXIT_INTERNAL = 3;

/**
 * A Node system error (a failed `open`, `read`, `rename`...): the operating system refused, so
 * the user's environment is at fault, not fp8kit. Node gives these `syscall` (and `path` for file
 * operations); its own programming errors (`ERR_*` codes) have neither.
 */
interface SystemError extends Error {
  syscall: string;
  path?: string;
}

function isSystemError(e: unknown): e is SystemError {
  return e instanceof Error && typeof (e as Partial<SystemError>).syscall === "string";
}

/** The exit code for a failure: by error class, never by the text of a message. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof Fp8kitError || isSystemError(err)) return EXIT_INPUT;
  return EXIT_INTERNAL;
}

/** Prints a failure the way users should see it (no stack trace) and returns the exit code. */
export function reportFailure(err: unknown): number {
  const code = exitCodeOf(err);
  let message = err instanceof Error ? err.message : String(err);
  // The layers wrap file-system errors with the file they concern; one that arrives unwrapped
  // still names its path.
  if (isSystemError(err) && err.path !== undefined && !message.includes(err.path))
    message = `${err.path}: ${message}`;
  process.stderr.write(
    code === EXIT_INTERNAL
      ? `fp8kit: internal error: ${message}\n(set FP8KIT_DEBUG=1 for details)\n`
      : `fp8kit: error: ${message}\n`,
  );
  if (process.env.FP8KIT_DEBUG === "1" && err instanceof Error && err.stack)
    process.stderr.write(`${err.stack}\n`);
  return code;
}
