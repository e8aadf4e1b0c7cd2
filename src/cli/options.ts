import { Fp8kitError } from "../errors.js";

/** A non-negative integer option (`--threads 2`), or undefined when absent; a usage error otherwise. */
export function nonNegativeInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isSafeInteger(n) || n < 0) {
    throw new Fp8kitError("usage", `--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return n;
}
