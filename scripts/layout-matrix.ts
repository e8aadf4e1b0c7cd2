/**
 * Prints the README's table of truth: for every source layout x target layout, what `fp8kit
 * convert --layout` does to the quantized weights (relabel, requantize, quantize, dequantize) and
 * the typical relative error. Run: `npm run build && npx tsx scripts/layout-matrix.ts`.
 *
 * Sources: the bundled sample (DeepSeek FP8 with float scales; and dequantized to BF16 for the
 * dense row), and for every other layout the small checkpoint test/convert/pairs.test.ts checks
 * (test/convert/layout-fixtures.ts: partial blocks, stacked experts). Each cell is one run of the
 * built CLI; its error is the median over the converted weights of the relative error the run
 * reports (`--json` "tensor" events: ||decoded output - decoded input|| / ||decoded input||).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  outputNames,
  PAIR_SOURCES,
  PAIR_TARGETS,
  type PairFormat,
  type PairTarget,
  pairArgs,
  writeCase,
} from "../test/convert/layout-fixtures.js";

const ROOT = resolve(import.meta.dirname, "..");
const CLI = join(ROOT, "dist", "cli", "main.js");
const SAMPLE = join(ROOT, "sample", "deepseek-v3-tiny");

interface Row {
  title: string;
  dir: string;
  format: PairFormat | null;
}

interface Run {
  status: number | null;
  stderr: string;
  /** Converted output tensors by action, with the relative error each reports. */
  actions: Map<string, number[]>;
  /** Ascend W4A8: the same split into the routed experts held INT4 and the linears held INT8. */
  bits: Map<string, { int4: number[]; int8: number[] }>;
}

function convert(src: string, out: string, args: string[], t: PairTarget): Run {
  const r = spawnSync(
    process.execPath,
    [CLI, "convert", src, out, ...args, "--workers", "0", "--json", "--force"],
    { encoding: "utf8", maxBuffer: 1 << 26 },
  );
  const actions = new Map<string, number[]>();
  const bits = new Map<string, { int4: number[]; int8: number[] }>();
  const w4a8 = t.layout === "ascend" && t.to === "w4a8";
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const e = JSON.parse(line) as { event: string; tensor?: string; action?: string; relFrob?: number };
    if (e.event !== "tensor" || e.action === undefined || e.action === "copy") continue;
    actions.set(e.action, [...(actions.get(e.action) ?? []), e.relFrob ?? 0]);
    if (!w4a8 || e.action === "dequantize") continue;
    const split = bits.get(e.action) ?? { int4: [], int8: [] };
    const int4 = outputNames("ascend-w4a8", e.tensor ?? "").aux?.some((n) => n.endsWith(".scale_bias"));
    (int4 ? split.int4 : split.int8).push(e.relFrob ?? 0);
    bits.set(e.action, split);
  }
  rmSync(out, { recursive: true, force: true });
  return { status: r.status, stderr: r.stderr, actions, bits };
}

const median = (v: readonly number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const err = (v: readonly number[]) => {
  const m = median(v);
  return `rel. err ${m === 0 ? "0" : m.toExponential(1)}`;
};

/** One cell from a successful run: the quantized target's action first, then what was written dense. */
function describe(run: Run, t: PairTarget): string {
  const a = run.actions;
  const parts: string[] = [];
  const relabel = a.get("relabel");
  if (relabel)
    parts.push(relabel.every((e) => e === 0) ? "relabel (lossless)" : `relabel (lossy, ${err(relabel)})`);
  for (const k of ["requantize", "quantize"]) {
    if (!a.has(k)) continue;
    // Ascend W4A8: the routed experts INT4, the other linears INT8, each with its own error.
    const split = run.bits.get(k);
    if (split) {
      const groups = [
        ...(split.int4.length > 0 ? [`INT4 experts ${err(split.int4)}`] : []),
        ...(split.int8.length > 0 ? [`INT8 ${err(split.int8)}`] : []),
      ];
      parts.push(`${k} (${groups.join(", ")})`);
    } else parts.push(`${k} (${err(a.get(k)!)})`);
  }
  // gpt-oss holds only stacked experts: the other weights are written BF16.
  const onlyExperts = t.layout === "gpt-oss" ? " (no stacked experts)" : "";
  if (a.has("dequantize")) parts.push(parts.length > 0 ? "rest dequantized" : `dequantize${onlyExperts}`);
  if (parts.length > 0) return parts.join("; ");
  return t.layout === "dense" ? "copy (already dense)" : `nothing quantized${onlyExperts}`;
}

/** A cell: the plain run, or, when a relabel's scales do not fit, the ways through. */
function cell(row: Row, t: PairTarget, tmp: string): string {
  const args = pairArgs(row, t);
  const out = join(tmp, "out");
  const r = convert(row.dir, out, args, t);
  if (r.status === 0) return describe(r, t);
  const first = r.stderr.replace(/^fp8kit: error: /, "").split("\n")[0];
  if (!/--allow-lossy/.test(first)) return `fails: ${first}`;
  const ways: string[] = [];
  if (t.to === "fp8") {
    const f32 = convert(row.dir, out, [...args, "--scale-dtype", "f32"], t);
    if (f32.status === 0) ways.push(`\`--scale-dtype f32\`: ${describe(f32, t)}`);
  }
  const lossy = convert(row.dir, out, [...args, "--allow-lossy"], t);
  if (lossy.status === 0) ways.push(`\`--allow-lossy\`: ${describe(lossy, t)}`);
  const why = /BF16/.test(first) ? "scales not exact in BF16" : "no exact per-tensor scale";
  return `refused (${why}); ${ways.join("; ")}`;
}

function main(): void {
  if (!existsSync(CLI)) {
    process.stderr.write(`${CLI} not found: run \`npm run build\` first\n`);
    process.exitCode = 1;
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), "fp8kit-matrix-"));
  try {
    const dense = join(tmp, "sample-bf16");
    const d = spawnSync(process.execPath, [CLI, "convert", SAMPLE, dense, "--to", "bf16", "--workers", "0"], {
      encoding: "utf8",
    });
    if (d.status !== 0) throw new Error(`dequantizing the sample failed: ${d.stderr}`);
    const rows: Row[] = [];
    for (const s of PAIR_SOURCES) {
      if (s.id === "deepseek-fp8") {
        rows.push({ title: `${s.title} (sample/deepseek-v3-tiny)`, dir: SAMPLE, format: s.format });
      } else if (s.id === "dense") {
        rows.push({ title: `${s.title} (the sample dequantized)`, dir: dense, format: null });
      } else {
        const dir = join(tmp, s.id);
        writeCase(dir, s.case);
        rows.push({ title: `${s.title} (fixture)`, dir, format: s.format });
      }
    }
    const head = PAIR_TARGETS.map((t) => `${t.layout === "dense" ? "dense" : t.id}`);
    const lines = [
      "<!-- generated by `npx tsx scripts/layout-matrix.ts` -->",
      "Each cell: `fp8kit convert SRC OUT --layout <layout> [--to <format>] --workers 0 --json`, `--to` given",
      "only when the target's format is not the source's own (then `--layout` alone keeps the format and",
      "the source's scale format). Relative error: ||output - input|| / ||input|| of the decoded values,",
      "median over the converted weights, as `convert` reports it. gpt-oss holds only stacked MoE experts",
      '(`experts.gate_up_proj` / `down_proj`) quantized and writes every other weight BF16 ("rest dequantized").',
      "Ascend (msModelSlim's data-free W8A8_DYNAMIC / W4A8_DYNAMIC, per-row INT8 / INT4) quantizes the linears",
      "under `self_attn` and `mlp` but `kv_b_proj` and the router `mlp.gate`, and writes the rest, and the MTP",
      "layer, BF16 described FLOAT; W4A8 holds the routed experts INT4 and the other linears INT8. Integers",
      "relabel into the same integers (codes and row scales copied); INT8 and INT4 convert into each other by requantizing.",
      "",
      `| source \\ target | ${head.join(" | ")} |`,
      `|---|${head.map(() => "---").join("|")}|`,
    ];
    for (const row of rows) {
      process.stderr.write(`${row.title}...\n`);
      const cells = PAIR_TARGETS.map((t) => cell(row, t, tmp));
      lines.push(`| ${row.title} | ${cells.join(" | ")} |`);
    }
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main();
