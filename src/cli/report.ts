import { COMPARE_FORMAT_NAMES, type CompareFormat } from "../report/index.js";
import { defaultAuditThreads, writeReport } from "../report/node.js";
import { isRemoteAddress } from "../safetensors/index.js";
import { EXIT_OK } from "./failure.js";
import { count, defineCommand, flag, list, text, usageError, value } from "./options.js";
import { fetchedLine, remoteOptions, tokenOption } from "./remote.js";
import { formatBytes } from "./text-format.js";

/** `mxfp8,nvfp4`: a comma-separated list of compared formats. */
function parseFormats(raw: string, flag: string): CompareFormat[] {
  const names = raw
    .split(",")
    .map((f) => f.trim())
    .filter(Boolean);
  for (const f of names) {
    if (!(COMPARE_FORMAT_NAMES as string[]).includes(f))
      throw new Error(`unknown format "${f}" in ${flag}: expected ${COMPARE_FORMAT_NAMES.join(", ")}`);
  }
  return names as CompareFormat[];
}

export const command = defineCommand(
  {
    name: "report",
    summary: "write a self-contained HTML report with charts (errors, scales, codes, formats)",
    args: ["path"],
    usage: "<path> --out report.html [options]",
    about: `Needs the optional packages d3 and @observablehq/plot (installed by default). <path> (and
--against) may be remote (a URL, or hf://org/model[@revision]); then --sample is required.`,
    options: {
      out: text("FILE", "the HTML file to write (required; one self-contained file, opens offline)", {
        short: "o",
      }),
      against: text("DIR", "compare with a second checkpoint, tensor by tensor (per-layer error)"),
      formats: value(
        "LIST",
        `formats to compare, comma-separated (default all):\n${COMPARE_FORMAT_NAMES.join(",")}`,
        parseFormats,
      ),
      include: list("GLOB", "tensors for the format comparison (repeatable; default the first 3 quantized)", {
        aliases: ["tensors"],
      }),
      sample: count("N", "audit N random blocks per tensor instead of all (faster)"),
      seed: count("S", "seed for --sample"),
      workers: count("N", "worker threads for the audit (default: one per core, at most 8; 0 = none)", {
        aliases: ["threads"],
      }),
      json: flag("also print the report data as JSON (schema fp8kit.report/1)"),
      token: tokenOption,
    },
  },
  async ([path], v) => {
    if (v.out === undefined) throw usageError("report", "report needs --out FILE");
    const remoteInput = [path, v.against ?? ""].find(isRemoteAddress);
    if (remoteInput && !v.sample)
      throw usageError(
        "report",
        `${remoteInput}: a full audit of a remote checkpoint downloads every weight; pass --sample N, or download the checkpoint first`,
      );
    const { remote, done } = remoteOptions(remoteInput ?? path, v.token);
    const r = await writeReport(path, v.out, {
      against: v.against,
      formats: v.formats,
      tensors: v.include,
      sample: v.sample,
      seed: v.seed,
      workers: v.workers ?? defaultAuditThreads(),
      remote,
    }).finally(done);
    const fetched = fetchedLine(r.data);
    process.stdout.write(
      v.json
        ? `${JSON.stringify(r.data, null, 2)}\n`
        : `wrote ${r.out} (${formatBytes(r.bytes)})${fetched ? `; ${fetched}` : ""}\n`,
    );
    return EXIT_OK;
  },
);
