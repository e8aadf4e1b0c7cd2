import { parseArgs } from "node:util";
import { FORMAT_NAMES, formatInfo } from "../formats/index.js";

export const summary = "list the element and scale formats with their limits";

/** `fp8kit formats [--json]`: a table of every format's traits and limits. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: "boolean" }, help: { type: "boolean" } },
  });
  if (values.help) {
    process.stdout.write("usage: fp8kit formats [--json]\n");
    return 0;
  }
  const infos = FORMAT_NAMES.map((n) => formatInfo(n));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(infos, null, 2)}\n`);
    return 0;
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
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (r: string[]) =>
    r
      .map((c, k) => c.padEnd(widths[k]))
      .join("  ")
      .trimEnd();
  process.stdout.write(`${[line(head), ...rows.map(line)].join("\n")}\n`);
  return 0;
}
