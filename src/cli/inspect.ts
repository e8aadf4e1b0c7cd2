import { type InspectResult, targetLabel } from "../report/index.js";
import { inspectPath } from "../report/node.js";
import { EXIT_FINDINGS, EXIT_OK } from "./failure.js";
import { defineCommand, flag, list } from "./options.js";
import { fetchedLine, remoteOptions, tokenOption } from "./remote.js";
import { formatBytes, formatCount, formatTable } from "./text-format.js";

export const command = defineCommand(
  {
    name: "inspect",
    summary: "describe a checkpoint from its headers: layout, sizes, compatibility, TP splits",
    args: ["path"],
    about: `Reads config.json, the index and the shard headers (never tensor data). <path> is a
directory, an index or a .safetensors file, or the URL of one (read with HTTP Range requests),
or hf://org/model[@revision] (HF_ENDPOINT changes the Hub's address).`,
    options: {
      include: list(
        "GLOB",
        "only tensors matching GLOB in the table (repeatable; * stops at dots, ** does not)",
        { aliases: ["filter"] },
      ),
      all: flag("print every tensor (default: the first 40 unless --include is given)"),
      json: flag("print the result as JSON (schema fp8kit.inspect/1, see docs/REPORT.md)"),
      token: tokenOption,
    },
  },
  async ([path], v) => {
    const { remote, done } = remoteOptions(path, v.token);
    const r = await inspectPath(path, { filter: v.include, remote }).finally(done);
    process.stdout.write(
      `${v.json ? JSON.stringify(r, null, 2) : printInspect(r, v.all || v.include.length > 0)}\n`,
    );
    return r.problems.some((p) => p.severity === "error") ? EXIT_FINDINGS : EXIT_OK;
  },
);

function printInspect(r: InspectResult, all: boolean): string {
  const a = r.architecture;
  const out: string[] = [`checkpoint: ${r.path}`];
  const fetched = fetchedLine(r);
  if (fetched) out.push(fetched);
  const arch = [
    `${a.architectures.join(", ") || "unknown architecture"}${a.modelType ? ` (${a.modelType})` : ""}`,
    a.hiddenSize ? `hidden ${a.hiddenSize}` : "",
    a.numLayers ? `${a.numLayers} layers` : "",
    a.numAttentionHeads ? `${a.numAttentionHeads} heads` : "",
    a.vocabSize ? `vocab ${a.vocabSize}` : "",
    a.numExperts
      ? `MoE ${a.numExperts} experts${a.numExpertsPerToken ? ` (${a.numExpertsPerToken} per token)` : ""}`
      : "",
  ].filter(Boolean);
  out.push(`architecture: ${arch.join(", ")}`);
  out.push(
    `parameters: ${formatCount(r.sizes.parameters)} (${formatCount(r.sizes.scaleElements)} scale elements not counted)`,
  );
  out.push(`tensors: ${r.sizes.tensors} in ${r.shards} shards, ${formatBytes(r.sizes.tensorBytes)}`);
  out.push(
    `bytes by dtype: ${r.sizes.bytesByDtype.map((d) => `${d.dtype} ${formatBytes(d.bytes)} (${d.tensors})`).join(", ")}`,
  );
  const l = r.layout;
  out.push(`layout: ${l.label}${l.declared ? ` [declared: ${l.declared}]` : ""}`);
  if (l.quantizedWeights > 0) {
    const tally = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${k} x${v}`);
    out.push(
      `  ${l.quantizedWeights} quantized weights; scale storage ${tally(l.scaleDtypes).join(", ")}; blocks ${tally(l.blocks).join(", ")}`,
    );
  }
  if (r.ascend) {
    const types = Object.entries(r.ascend.types).map(([k, v]) => `${k} x${v}`);
    out.push(`${r.ascend.label}: ${r.ascend.entries} entries (${types.join(", ")})`);
  }
  out.push("", "compatibility:");
  const rows = [["target", "status", "tensors", "why"]];
  for (const c of r.compatibility) rows.push([targetLabel(c.target), c.status, String(c.tensors), c.reason]);
  out.push(formatTable(rows, [2]).replace(/^/gm, "  "));
  const cmds = [...new Set(r.compatibility.filter((c) => c.command).map((c) => c.command as string))];
  for (const c of cmds) out.push(`  -> ${c}`);
  out.push("", "tensor parallel (SGLang block rule: each TP partition divisible by the block):");
  for (const t of r.tensorParallel) {
    if (t.ok) out.push(`  tp=${t.tp}: ok (${t.checked} split weights checked)`);
    else {
      out.push(`  tp=${t.tp}: ${t.problems.length} of ${t.checked} weights do not split cleanly`);
      for (const p of t.problems.slice(0, 5)) {
        out.push(
          `    ${p.tensor}: ${p.style}-parallel dim ${p.dim} = ${p.size}, /${t.tp} = ${p.partition} ${p.reason === "uneven" ? "(does not divide)" : `(not a multiple of block ${p.block})`}`,
        );
      }
      if (t.problems.length > 5) out.push(`    ... and ${t.problems.length - 5} more (see --json)`);
    }
  }
  const shown = all ? r.tensors : r.tensors.slice(0, 40);
  out.push(
    "",
    `tensors${shown.length < r.tensors.length ? ` (first ${shown.length} of ${r.tensors.length}; --all or --include for more)` : ""}:`,
  );
  const trows = [["name", "dtype", "shape", "bytes", "role"]];
  for (const t of shown)
    trows.push([t.name, t.dtype, `[${t.shape.join(", ")}]`, formatBytes(t.bytes), t.role]);
  out.push(formatTable(trows, [3]).replace(/^/gm, "  "));
  if (r.problems.length > 0) {
    out.push("", `problems (${r.problems.length}; run fp8kit lint for the full check):`);
    for (const p of r.problems)
      out.push(`  ${p.severity} ${p.file}${p.tensor ? ` ${p.tensor}` : ""}: ${p.message}`);
  }
  return out.join("\n");
}
