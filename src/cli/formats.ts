import { FORMAT_NAMES, formatInfo } from "../formats/index.js";
import { EXIT_OK } from "./failure.js";
import { defineCommand, flag } from "./options.js";
import { formatTable } from "./text-format.js";

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
      i.nanCodes.length ? i.nanCodes.map((c) => `0x${c.toString(16)}`).join(" ") : "none",
    ]);
    const head = ["format", "bits", "layout", "max", "min normal", "min subnormal", "inf", "NaN codes"];
    process.stdout.write(`${formatTable([head, ...rows])}\n`);
    return EXIT_OK;
  },
);
