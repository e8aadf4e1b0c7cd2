import type { AuditResult, TensorAudit } from "../report/index.js";
import { auditPath } from "../report/node.js";
import { isRemoteAddress } from "../safetensors/index.js";
import { EXIT_FINDINGS, EXIT_OK } from "./failure.js";
import { count, defineCommand, flag, list, usageError } from "./options.js";
import { fetchedLine, remoteOptions, tokenOption } from "./remote.js";
import { formatPercent, formatTable } from "./text-format.js";

export const command = defineCommand(
  {
    name: "audit",
    summary: "UE8M0 audit: power-of-two scales and the error of Blackwell's requantization",
    args: ["path"],
    about: `For every scale tensor: are all values exact powers of two (by mantissa bits)? For block-FP8
E4M3 weights: the error that requantizing with the DeepSeek/DeepGEMM UE8M0 rule adds
(sf = 2^ceil(log2(max(amax,1e-4)/448)) per block, E4M3 RNE saturating), per tensor and overall.
<path> may be remote (a URL, or hf://org/model[@revision]); then --sample is required, and only
the scales and the sampled blocks' rows are fetched.`,
    options: {
      sample: count("N", "audit N random blocks per tensor (seeded) with a 95% bootstrap interval"),
      seed: count("S", "seed for --sample (default 0)"),
      workers: count(
        "N",
        "worker threads reading and measuring tensors (default: one per core, max 8; 0 = none)",
        {
          aliases: ["threads"],
        },
      ),
      include: list("GLOB", "only weights matching GLOB (repeatable; * stops at dots, ** does not)", {
        aliases: ["filter"],
      }),
      all: flag("print every tensor (default: the 30 with the largest error, and all exceptions)"),
      json: flag("print the result as JSON (schema fp8kit.audit/1, see docs/REPORT.md)"),
      token: tokenOption,
    },
    footer:
      "exit status: 0; 1 when some scales are unusable (NaN, Inf, zero, negative, overflowing: as lint), or when config.json declares UE8M0 scales but some are not powers of two",
  },
  async ([path], v) => {
    if (isRemoteAddress(path) && !v.sample)
      throw usageError(
        "audit",
        `${path}: a full audit of a remote checkpoint downloads every weight; pass --sample N (N blocks per tensor), or download the checkpoint first`,
      );
    const { remote, done } = remoteOptions(path, v.token);
    const r = await auditPath(path, {
      workers: v.workers,
      sample: v.sample,
      seed: v.seed,
      filter: v.include,
      remote,
    }).finally(done);
    process.stdout.write(`${v.json ? JSON.stringify(r, null, 2) : printAudit(r, v.all)}\n`);
    const notPow2 = r.layout.scaleFmt === "ue8m0" && !r.summary.allPowerOfTwo;
    return notPow2 || r.summary.scaleFindings.errors > 0 ? EXIT_FINDINGS : EXIT_OK;
  },
);

function printAudit(r: AuditResult, all: boolean): string {
  const out: string[] = [`checkpoint: ${r.path}`, `layout: ${r.layout.label}`, `rule: ${r.rule}`];
  const fetched = fetchedLine(r);
  if (fetched) out.push(fetched);
  if (r.sample)
    out.push(`mode: sample, ${r.sample.blocksPerTensor} blocks per tensor (seed ${r.sample.seed})`);
  const err = (t: TensorAudit) => t.requant?.relFrobenius ?? -1;
  const shown = all ? r.tensors : [...r.tensors].sort((a, b) => err(b) - err(a)).slice(0, 30);
  const rows = [["weight", "scales", "not 2^k", "rel. error", "SQNR", "max abs err", "blocks changed"]];
  for (const t of shown) {
    const q = t.requant;
    const ci = q?.interval ? ` [${formatPercent(q.interval.low)}, ${formatPercent(q.interval.high)}]` : "";
    rows.push([
      t.data,
      String(t.scales.count),
      String(t.scales.nonPowerOfTwo),
      q ? `${formatPercent(q.relFrobenius)}${ci}` : "n/a",
      q ? (q.sqnrDb === null ? "exact" : `${q.sqnrDb.toFixed(1)} dB`) : "-",
      q ? q.maxAbsError.toPrecision(3) : "-",
      q ? `${q.changedBlocks}/${q.blocks}` : "-",
    ]);
  }
  out.push("", formatTable(rows, [1, 2, 4, 5, 6]));
  if (shown.length < r.tensors.length)
    out.push(`(${shown.length} of ${r.tensors.length} tensors, largest error first; --all for every one)`);
  const exc = r.tensors.filter((t) => t.scales.nonPowerOfTwo > 0);
  if (exc.length > 0) {
    out.push("", `scales that are not powers of two (${exc.length} tensors):`);
    for (const t of exc) {
      const ex = t.scales.exceptions
        .slice(0, 3)
        .map((e) => `#${e.index} ${e.value.toPrecision(6)} (mantissa ${e.mantissa.toPrecision(6)})`)
        .join(", ");
      out.push(`  ${t.scale}: ${t.scales.nonPowerOfTwo} of ${t.scales.count}; e.g. ${ex}`);
    }
  }
  const bad = r.tensors.flatMap((t) => t.findings);
  if (bad.length > 0) out.push("", "unusable scales (as fp8kit lint reports them):");
  for (const f of bad) out.push(`  ${f.severity}: ${f.file}: ${f.tensor}: ${f.message} [${f.code}]`);
  const s = r.summary;
  out.push(
    "",
    `summary: ${s.scales} scales in ${s.scaleTensors} tensors, ${s.nonPowerOfTwoScales} not powers of two (${s.nonPowerOfTwoTensors} tensors)`,
  );
  if (s.requant) {
    const q = s.requant;
    const ci = q.interval
      ? ` (95% interval ${formatPercent(q.interval.low)} .. ${formatPercent(q.interval.high)})`
      : "";
    out.push(
      `UE8M0 requantization over ${q.tensors} tensors: relative error ${formatPercent(q.relFrobenius)}${ci}, SQNR ${q.sqnrDb === null ? "exact" : `${q.sqnrDb.toFixed(1)} dB`}, max abs error ${q.maxAbsError.toPrecision(3)}, ${q.changedBlocks} of ${q.blocks} blocks change scale`,
    );
  }
  return out.join("\n");
}
