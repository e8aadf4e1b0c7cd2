import { FORMAT_NAMES, formatInfo } from "../formats/index.js";
import { EXIT_OK } from "./failure.js";
import { defineCommand, flag } from "./options.js";
import { formatTable } from "./text-format.js";

const hex = (c: number) => `0x${c.toString(16)}`;

/**
 * Codes in hex, each run of three or more consecutive codes as one range, with the count when a
 * range hides some: `0x7c01-0x7fff 0xfc01-0xffff (2046 codes)` for float16's NaNs (--json lists all).
 */
export function codeList(codes: readonly number[]): string {
  if (codes.length === 0) return "none";
  const parts: string[] = [];
  for (let i = 0; i < codes.length; ) {
    let j = i;
    while (j + 1 < codes.length && codes[j + 1] === codes[j] + 1) j++;
    if (j - i >= 2) parts.push(`${hex(codes[i])}-${hex(codes[j])}`);
    else parts.push(...codes.slice(i, j + 1).map(hex));
    i = j + 1;
  }
  return parts.length < codes.length ? `${parts.join(" ")} (${codes.length} codes)` : parts.join(" ");
}

/** `fp8kit formats [--json]`: a table of every format's traits and limits. */
export const command = defineCommand(
  {
    name: "formats",
    summary: "list the element and scale formats with their limits",
    args: [],
    options: { json: flag("print the formats as JSON") },
  },
  async (_args, v) => {
    const infos = FORMAT_NAMES.map((n) => formatInfo(n));
    if (v.json) {
      process.stdout.write(`${JSON.stringify(infos, null, 2)}\n`);
      return EXIT_OK;
    }
    const rows = infos.map((i) => [
      i.name,
      String(i.bits),
      `E${i.exponentBits}M${i.mantissaBits}`,
      String(i.max),
      String(i.minNormal),
      String(i.minSubnormal),
      i.hasInf ? "yes" : "no",
      codeList(i.nanCodes),
    ]);
    const head = ["format", "bits", "layout", "max", "min normal", "min subnormal", "inf", "NaN codes"];
    process.stdout.write(`${formatTable([head, ...rows])}\n`);
    return EXIT_OK;
  },
);
