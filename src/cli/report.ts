import { parseArgs } from "node:util";
import { Fp8kitError } from "../errors.js";
import { COMPARE_FORMAT_NAMES, type CompareFormat } from "../report/index.js";
import { defaultAuditThreads, writeReport } from "../report/node.js";
import { formatBytes } from "../report/text-format.js";
import { EXIT_OK } from "./failure.js";
import { nonNegativeInt } from "./options.js";

export const summary = "write a self-contained HTML report with charts (errors, scales, codes, formats)";

const HELP = `usage: fp8kit report <path> --out report.html [options]

options:
  --out FILE       the HTML file to write (required; one self-contained file, opens offline)
  --against DIR    compare with a second checkpoint, tensor by tensor (per-layer error)
  --formats LIST   formats to compare, comma-separated (default all):
                   ${COMPARE_FORMAT_NAMES.join(",")}
  --tensors GLOB   tensors for the format comparison (repeatable; default the first 3 quantized)
  --sample N       audit N random blocks per tensor instead of all (faster)
  --seed S         seed for --sample
  --threads N      worker threads for the audit (default: cores - 1, at most 8)
  --json           also print the report data as JSON (schema fp8kit.report/1)
  -h, --help       this help`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: "string", short: "o" },
      against: { type: "string" },
      formats: { type: "string" },
      tensors: { type: "string", multiple: true },
      sample: { type: "string" },
      seed: { type: "string" },
      threads: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new Fp8kitError("usage", `report takes one <path>\n\n${HELP}`);
  if (!values.out) throw new Fp8kitError("usage", "report needs --out FILE");
  let formats: CompareFormat[] | undefined;
  if (values.formats !== undefined) {
    const list = values.formats
      .split(",")
      .map((f) => f.trim())
      .filter(Boolean);
    for (const f of list) {
      if (!(COMPARE_FORMAT_NAMES as string[]).includes(f)) {
        throw new Fp8kitError(
          "usage",
          `unknown format "${f}" in --formats: expected ${COMPARE_FORMAT_NAMES.join(", ")}`,
        );
      }
    }
    formats = list as CompareFormat[];
  }
  const r = await writeReport(positionals[0], values.out, {
    against: values.against,
    formats,
    tensors: values.tensors,
    sample: nonNegativeInt("sample", values.sample),
    seed: nonNegativeInt("seed", values.seed),
    threads: nonNegativeInt("threads", values.threads) ?? defaultAuditThreads(),
  });
  if (values.json) process.stdout.write(`${JSON.stringify(r.data, null, 2)}\n`);
  else process.stdout.write(`wrote ${r.out} (${formatBytes(r.bytes)})\n`);
  return EXIT_OK;
}
