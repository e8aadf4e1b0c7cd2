import { bfloat16 } from "./bfloat16.js";
import { FormatError } from "./errors.js";
import { float4_e2m1fn } from "./float4-e2m1.js";
import { float6_e2m3fn, float6_e3m2fn } from "./float6.js";
import { float8_e4m3fn } from "./float8-e4m3fn.js";
import { float8_e5m2 } from "./float8-e5m2.js";
import { float8_e8m0fnu } from "./float8-e8m0.js";
import { float8_e4m3fnuz, float8_e5m2fnuz } from "./float8-fnuz.js";
import { float16 } from "./float16.js";
import { hifloat8 } from "./hifloat8.js";
import type { FormatName, FormatTraits } from "./types.js";

/** Every format fp8kit knows, by its ml_dtypes name. */
export const FORMATS: Readonly<Record<FormatName, FormatTraits>> = {
  float8_e4m3fn,
  float8_e5m2,
  float8_e4m3fnuz,
  float8_e5m2fnuz,
  float8_e8m0fnu,
  float6_e2m3fn,
  float6_e3m2fn,
  float4_e2m1fn,
  hifloat8,
  bfloat16,
  float16,
};

export const FORMAT_NAMES = Object.keys(FORMATS) as FormatName[];

export function isFormatName(name: unknown): name is FormatName {
  return typeof name === "string" && Object.hasOwn(FORMATS, name);
}

/** The traits of a format, or an `unknown-format` error listing the accepted names. */
export function traitsOf(name: unknown): FormatTraits {
  if (!isFormatName(name)) {
    throw new FormatError(
      "unknown-format",
      `unknown format ${JSON.stringify(name)}; accepted: ${FORMAT_NAMES.join(", ")}`,
    );
  }
  return FORMATS[name];
}
