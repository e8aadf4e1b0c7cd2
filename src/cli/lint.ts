import type { LintResult } from "../report/index.js";
import { lintPath } from "../report/node.js";
import { EXIT_FINDINGS, EXIT_OK } from "./failure.js";
import { defineCommand, flag } from "./options.js";
import { fetchedLine, remoteOptions, tokenOption } from "./remote.js";

export const command = defineCommand(
  {
    name: "lint",
    summary: "check a checkpoint: headers, index, scales, config (exit 1 on findings)",
    args: ["path"],
    about: `Checks every shard with the strict reader, the index against the shards (both directions,
total_size), each quantized weight against its scale (exactly one, right grid, no orphans),
config.json against the tensors, and every scale value (no NaN/Inf/zero/negative).
Reads headers, config, index and scale tensors; never weight data. <path> may be remote, as for
fp8kit inspect (a URL, or hf://org/model[@revision]).`,
    options: {
      "headers-only": flag("skip the scale values (reads headers only)"),
      strict: flag("exit 1 on warnings too"),
      json: flag("print the result as JSON (schema fp8kit.lint/1, see docs/REPORT.md)"),
      token: tokenOption,
    },
    footer: "exit status: 0 clean, 1 findings (errors; with --strict also warnings), 2 bad input",
  },
  async ([path], v) => {
    const { remote, done } = remoteOptions(path, v.token);
    const r = await lintPath(path, { headersOnly: v["headers-only"], remote }).finally(done);
    process.stdout.write(`${v.json ? JSON.stringify(r, null, 2) : printLint(r)}\n`);
    return r.errors > 0 || (v.strict && r.warnings > 0) ? EXIT_FINDINGS : EXIT_OK;
  },
);

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
  const fetched = fetchedLine(r);
  if (fetched) out.push(fetched);
  return out.join("\n");
}
