import { parseArgs } from "node:util";
import { Fp8kitError } from "../errors.js";
import { type LintResult, lintCheckpoint } from "../report/index.js";
import { NodeCheckpointDir } from "../report/node.js";
import { EXIT_FINDINGS, EXIT_OK } from "./failure.js";

export const summary = "check a checkpoint: headers, index, scales, config (exit 1 on findings)";

const HELP = `usage: fp8kit lint <path> [options]

Checks every shard with the strict reader, the index against the shards (both directions,
total_size), each quantized weight against its scale (exactly one, right grid, no orphans),
config.json against the tensors, and every scale value (no NaN/Inf/zero/negative).
Reads headers, config, index and scale tensors; never weight data.

options:
  --headers-only  skip the scale values (reads headers only)
  --strict        exit 1 on warnings too
  --json          print the result as JSON (schema fp8kit.lint/1, see docs/REPORT.md)
  -h, --help      this help

exit status: 0 clean, 1 findings (errors; with --strict also warnings), 2 bad input`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "headers-only": { type: "boolean" },
      strict: { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new Fp8kitError("usage", `lint takes one <path>\n\n${HELP}`);
  const path = positionals[0];
  const dir = await NodeCheckpointDir.open(path);
  const r = await lintCheckpoint(dir, { headersOnly: values["headers-only"], path });
  if (values.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else process.stdout.write(`${printLint(r)}\n`);
  const failed = r.errors > 0 || (values.strict === true && r.warnings > 0);
  return failed ? EXIT_FINDINGS : EXIT_OK;
}

function printLint(r: LintResult): string {
  const out: string[] = [];
  for (const f of r.findings) {
    out.push(`${f.severity}: ${f.file}${f.tensor ? `: ${f.tensor}` : ""}: ${f.message} [${f.code}]`);
    out.push(`  fix: ${f.fix}`);
  }
  const c = r.checked;
  out.push(
    `${r.path}: ${r.errors} errors, ${r.warnings} warnings (${c.shards} shards, ${c.tensors} tensors, ${c.quantizedWeights} quantized weights, ${c.scaleTensorsRead} scale tensors read)`,
  );
  return out.join("\n");
}
