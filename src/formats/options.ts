import { FormatError } from "./errors.js";
import { checkSeed } from "./prng.js";
import type { EncodeOptions, FormatTraits, Overflow, Rounding } from "./types.js";

const ROUNDINGS: readonly Rounding[] = ["rne", "ties-away", "toward-zero", "stochastic"];
const OVERFLOWS: readonly Overflow[] = ["nonfinite", "saturate"];

export interface ResolvedOptions {
  rounding: Rounding;
  overflow: Overflow;
  seed: number;
}

/** Checks user options and fills in the format's defaults. */
export function resolveOptions(t: FormatTraits, options: EncodeOptions | undefined): ResolvedOptions {
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new FormatError(
      "invalid-options",
      `encode options must be an object, got ${options === null ? "null" : typeof options}`,
    );
  }
  const rounding = options?.rounding ?? t.defaultRounding;
  if (!ROUNDINGS.includes(rounding)) {
    throw new FormatError(
      "invalid-rounding",
      `unknown rounding ${JSON.stringify(rounding)}; accepted: ${ROUNDINGS.join(", ")}`,
    );
  }
  const overflow = options?.overflow ?? "nonfinite";
  if (!OVERFLOWS.includes(overflow)) {
    throw new FormatError(
      "invalid-overflow",
      `unknown overflow policy ${JSON.stringify(overflow)}; accepted: ${OVERFLOWS.join(", ")}`,
    );
  }
  const seed = options?.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : checkSeed(options.seed);
  return { rounding, overflow, seed };
}
