import { isFp8kitError } from "../errors.js";

/**
 * Exit codes shared by every command:
 * 0 success; 1 the command ran and found problems (lint findings, verify mismatches);
 * 2 bad usage or bad input (an `Fp8kitError`: the message names the file and tensor);
 * 3 an unexpected internal error (a bug: the stack is printed only with FP8KIT_DEBUG=1).
 */
export const EXIT_OK = 0;
export const EXIT_FINDINGS = 1;
export const EXIT_INPUT = 2;
export const EXIT_INTERNAL = 3;

/** Prints a failure the way users should see it (no stack trace) and returns the exit code. */
export function reportFailure(err: unknown): number {
  const debug = process.env.FP8KIT_DEBUG === "1";
  if (isFp8kitError(err)) {
    process.stderr.write(`fp8kit: error: ${err.message}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return EXIT_INPUT;
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === "object" && typeof e.code === "string" && typeof e.message === "string") {
    // File-system errors (ENOENT, ENOSPC, EACCES...) are the user's environment, not a bug.
    process.stderr.write(`fp8kit: error: ${e.message}\n`);
    if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
    return EXIT_INPUT;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`fp8kit: internal error: ${message}\n(set FP8KIT_DEBUG=1 for details)\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return EXIT_INTERNAL;
}
