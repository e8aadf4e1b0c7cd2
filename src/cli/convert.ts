/**
 * `fp8kit convert <input> <output> --to <target> [options]`: argument parsing and printing only;
 * the work is `convertCheckpoint` (src/convert/run-node.ts). See docs/CONVERT.md.
 */
import { parseArgs } from "node:util";
import { SELECTION_PRESETS } from "../checkpoint/index.js";
import {
  ConvertError,
  type ConvertEvent,
  type ConvertResult,
  convertCheckpoint,
  type MxRule,
  summarizeErrorStats as summarize,
  TARGET_NAMES,
  type TargetName,
  type TensorReport,
} from "../convert/node.js";
import { writeReport } from "../report/node.js";
import { EXIT_FINDINGS, EXIT_OK } from "./failure.js";
import { nonNegativeInt } from "./options.js";

export const summary = "convert a checkpoint (FP8 <-> BF16, UE8M0 requantization, MXFP8/MXFP4), streaming";

const HELP = `usage: fp8kit convert <input> <output> --to <target> [options]

<input> is a checkpoint directory (config.json, shards, index, tokenizer files) or a .safetensors file.

targets:
  bf16 | fp16 | fp32   dequantize every quantized weight (DeepSeek FP8 -> BF16 is bit-identical to fp8_cast_bf16.py)
  fp8                  DeepSeek/HF fine-grained block FP8 (quantize, or requantize float scales to UE8M0)
  mxfp8 | mxfp4        compressed-tensors MX layouts (U8 E8M0 scales, groups of 32)

options:
  --to <target>            output format (required)
  --block <R>x<C>          fp8 block size (default 128x128)
  --scale-fmt ue8m0|float  fp8 scale format (default ue8m0, the DeepSeek-V3.1 format)
  --scale-dtype f32|e8m0   fp8 scale storage: F32 powers of two (default) or F8_E8M0 bytes
  --scale-rule <rule>      MX scale rule: floor (default, compressed-tensors), ceil, even, rceil
  --preset <name>          tensor selection: auto (default), deepseek-v3, generic
  --include <glob>         also quantize matching tensors (repeatable; * stops at dots, ** does not)
  --exclude <glob>         never quantize matching tensors (repeatable)
  --max-shard-size <size>  largest output shard (default 5GB)
  --workers <n>            worker threads (default: number of cores; 0 = in-process)
  --dry-run                print the plan (every tensor, what happens to it, bytes in/out) and stop
  --resume                 continue an unfinished conversion of the same job (implied when found)
  --force                  replace an existing output directory
  --part <i>/<n>           convert only part i of n (disjoint groups of shards), for job arrays
  --finalize               after all --part runs: check every shard and write config + index
  --verify                 re-read the output and compare every tensor with the input
  --report <file.html>     write the HTML report of the conversion (output against input)
  --allow-nonfinite        convert tensors holding NaN/Inf instead of failing
  --json                   machine-readable progress and result, one JSON object per line on stdout
  -h, --help               this help
`;

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const fmtBytes = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : mb(n));

function usage(msg: string): never {
  throw new ConvertError("usage", `${msg} (see fp8kit convert --help)`);
}

function parseBlock(s: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(s);
  if (!m) usage(`--block must look like 128x128, got ${JSON.stringify(s)}`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

function parsePart(s: string): [number, number] {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m) usage(`--part must look like 1/4, got ${JSON.stringify(s)}`);
  return [Number(m[1]), Number(m[2])];
}

function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T))
    usage(`${flag} must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
  return v as T;
}

/** One row of the error table. */
export function errorRow(r: TensorReport): Record<string, string | number> {
  const s = r.stats!;
  const m = summarize(s);
  return {
    tensor: r.output,
    action: r.action,
    relFrob: m.relFrob,
    sqnrDb: m.sqnrDb,
    cosine: m.cosine,
    maxAbsErr: s.maxAbsErr,
    saturated: s.saturated,
    flushed: s.flushed,
    nonfinite: s.nonfinite,
  };
}

/** The per-tensor error table (converted tensors only), worst first beyond `limit` rows. */
export function errorTable(tensors: readonly TensorReport[], limit = 60): string {
  const conv = tensors.filter((t) => t.stats);
  if (conv.length === 0) return "no tensor was converted (all copied)";
  const shown =
    conv.length > limit
      ? [...conv].sort((a, b) => summarize(b.stats!).relFrob - summarize(a.stats!).relFrob).slice(0, limit)
      : conv;
  const w = Math.min(64, Math.max(...shown.map((t) => t.output.length)));
  const lines = [
    `${"tensor".padEnd(w)}  ${"action".padEnd(10)} ${"rel.err".padStart(9)} ${"SQNR dB".padStart(8)} ${"cosine".padStart(10)} ${"max|err|".padStart(9)} ${"sat".padStart(6)} ${"flush".padStart(7)}`,
  ];
  for (const t of shown) {
    const r = errorRow(t);
    const name = t.output.length > w ? `...${t.output.slice(-(w - 3))}` : t.output;
    lines.push(
      `${name.padEnd(w)}  ${t.action.padEnd(10)} ${(r.relFrob as number).toExponential(2).padStart(9)} ${(r.sqnrDb as number).toFixed(1).padStart(8)} ${(r.cosine as number).toFixed(7).padStart(10)} ${(r.maxAbsErr as number).toExponential(2).padStart(9)} ${String(r.saturated).padStart(6)} ${String(r.flushed).padStart(7)}`,
    );
  }
  if (conv.length > limit) lines.push(`(${limit} worst of ${conv.length} converted tensors shown)`);
  return lines.join("\n");
}

function printPlan(res: ConvertResult): string {
  const p = res.plan;
  const lines = [
    `input layout: ${p.layout.label}`,
    `target: ${p.options.target}${p.options.target === "fp8" ? ` (${p.options.block.join("x")} blocks, ${p.options.scaleFmt} scales stored as ${p.options.scaleDtype === "e8m0" ? "F8_E8M0" : "F32"})` : ""}${p.options.target.startsWith("mx") ? ` (scale rule ${p.options.scaleRule})` : ""}`,
    `preset: ${p.preset}`,
    "",
  ];
  const w = Math.min(70, Math.max(10, ...p.ops.map((o) => o.input.data.length)));
  lines.push(
    `${"tensor".padEnd(w)}  ${"action".padEnd(10)} ${"in".padStart(10)} ${"out".padStart(10)}  output`,
  );
  for (const op of p.ops) {
    const outs = [op.output.data, op.output.scale]
      .filter((x) => x !== null)
      .map((t) => `${t.name} ${t.dtype}[${t.shape}]`);
    lines.push(
      `${op.input.data.padEnd(w)}  ${op.action.padEnd(10)} ${mb(op.bytesIn).padStart(10)} ${mb(op.bytesOut).padStart(10)}  ${outs.join(" + ")}  (${op.note}; ${op.shard})`,
    );
  }
  lines.push("");
  for (const s of p.shards)
    lines.push(`shard ${s.fileName}: ${s.ops.length} tensors, ${fmtBytes(s.layout.fileSize)}`);
  const counts = new Map<string, number>();
  for (const op of p.ops) counts.set(op.action, (counts.get(op.action) ?? 0) + 1);
  lines.push(
    `${p.ops.length} tensors (${[...counts].map(([k, v]) => `${v} ${k}`).join(", ")}); ${fmtBytes(p.bytesIn)} in, ${fmtBytes(p.bytesOut)} out in ${p.shards.length} shard(s)`,
  );
  return lines.join("\n");
}

function jsonPlan(res: ConvertResult, withOps: boolean): Record<string, unknown> {
  const p = res.plan;
  return {
    event: "plan",
    layout: p.layout,
    preset: p.preset,
    options: p.options,
    bytesIn: p.bytesIn,
    bytesOut: p.bytesOut,
    totalSize: p.totalSize,
    shards: p.shards.map((s) => ({
      fileName: s.fileName,
      tensors: s.ops.length,
      fileSize: s.layout.fileSize,
    })),
    ...(withOps
      ? {
          ops: p.ops.map((o) => ({
            tensor: o.input.data,
            scale: o.input.scale,
            action: o.action,
            note: o.note,
            outputs: [o.output.data, o.output.scale].filter((x) => x !== null),
            bytesIn: o.bytesIn,
            bytesOut: o.bytesOut,
            shard: o.shard,
          })),
        }
      : {}),
    config: p.config,
  };
}

class Progress {
  private last = 0;
  private readonly tty = process.stderr.isTTY === true;
  constructor(private readonly json: boolean) {}
  on(e: ConvertEvent): void {
    if (this.json) {
      if (e.type === "progress") {
        const now = Date.now();
        if (now - this.last < 500 && e.bytesDone < e.bytesTotal) return;
        this.last = now;
      }
      if (e.type === "plan") {
        process.stdout.write(
          `${JSON.stringify({ event: "start", layout: e.plan.layout.label, shardsToWrite: e.shardsToWrite, inProcess: e.inProcess })}\n`,
        );
        return;
      }
      if (e.type === "tensor") {
        const r = e.report;
        process.stdout.write(
          `${JSON.stringify({ event: "tensor", ...(r.stats ? errorRow(r) : { tensor: r.output, action: r.action }) })}\n`,
        );
        return;
      }
      const { type, ...rest } = e;
      process.stdout.write(`${JSON.stringify({ event: type, ...rest })}\n`);
      return;
    }
    switch (e.type) {
      case "plan":
        process.stderr.write(`input: ${e.plan.layout.label}\n`);
        if (e.inProcess && e.inProcess !== "--workers 0")
          process.stderr.write(`note: converting in-process (${e.inProcess})\n`);
        break;
      case "progress": {
        if (!this.tty) return;
        const now = Date.now();
        if (now - this.last < 200 && e.bytesDone < e.bytesTotal) return;
        this.last = now;
        const frac = e.bytesTotal > 0 ? e.bytesDone / e.bytesTotal : 1;
        const rate = e.seconds > 0 ? e.bytesDone / e.seconds : 0;
        const eta = rate > 0 ? (e.bytesTotal - e.bytesDone) / rate : 0;
        const bar = "#".repeat(Math.round(frac * 30)).padEnd(30, ".");
        process.stderr.write(
          `\r[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${e.tensorsDone}/${e.tensorsTotal} tensors ${fmtBytes(e.bytesDone)}/${fmtBytes(e.bytesTotal)} ${(rate / 1e6).toFixed(0)} MB/s ETA ${eta.toFixed(0)}s   `,
        );
        break;
      }
      case "shard-done":
        if (this.tty) process.stderr.write("\r\x1b[K");
        process.stderr.write(`wrote ${e.shard} (${fmtBytes(e.bytes)}, ${e.seconds.toFixed(1)} s)\n`);
        break;
      case "shard-skip":
        process.stderr.write(`skipped ${e.shard}: ${e.reason}\n`);
        break;
      case "finalized":
        process.stderr.write(`wrote ${e.index} (total_size ${e.totalSize})\n`);
        break;
      default:
        break;
    }
  }
}

export async function run(argv: string[]): Promise<number> {
  // A closed pipe (`fp8kit convert ... --json | head`) must not crash the conversion.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
  });
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    if (e instanceof ConvertError) throw e;
    usage((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    process.stdout.write(HELP);
    return EXIT_OK;
  }
  if (positionals.length !== 2) usage("expected <input> and <output>");
  const target = oneOf("--to", v.to, TARGET_NAMES);
  if (!target) usage("--to <target> is required");
  const workers = nonNegativeInt("workers", v.workers);
  const json = v.json === true;
  const progress = new Progress(json);
  const res = await convertCheckpoint({
    input: positionals[0],
    output: positionals[1],
    target: target as TargetName,
    block: v.block ? parseBlock(v.block) : undefined,
    scaleFmt: oneOf("--scale-fmt", v["scale-fmt"], ["ue8m0", "float"] as const),
    scaleDtype: oneOf("--scale-dtype", v["scale-dtype"], ["f32", "e8m0"] as const),
    scaleRule: oneOf<MxRule>("--scale-rule", v["scale-rule"], ["floor", "ceil", "even", "rceil"]),
    preset: oneOf("--preset", v.preset, ["auto", ...SELECTION_PRESETS] as const),
    include: v.include,
    exclude: v.exclude,
    maxShardSize: v["max-shard-size"],
    workers,
    dryRun: v["dry-run"],
    force: v.force,
    resume: v.resume,
    part: v.part ? parsePart(v.part) : null,
    finalize: v.finalize,
    verify: v.verify,
    allowNonfinite: v["allow-nonfinite"],
    onEvent: (e) => progress.on(e),
  });
  const mismatches = res.verify?.mismatches.length ?? 0;
  // The HTML report of the conversion: the output checkpoint against its input (per-layer error,
  // scale exponents, code use). Written only once the output is complete.
  let reportPath: string | null = null;
  if (v.report !== undefined && res.status === "complete") {
    reportPath = (await writeReport(positionals[1], v.report, { against: positionals[0] })).out;
    if (!json) process.stderr.write(`wrote report ${reportPath}\n`);
  } else if (v.report !== undefined && !json) {
    process.stderr.write(`report not written: the conversion is not complete (${res.status})\n`);
  }
  if (json) {
    const ru = process.resourceUsage();
    if (res.status === "dry-run") process.stdout.write(`${JSON.stringify(jsonPlan(res, true))}\n`);
    process.stdout.write(
      `${JSON.stringify({
        event: "result",
        status: res.status,
        seconds: res.seconds,
        bytesRead: res.bytesRead,
        bytesWritten: res.bytesWritten,
        shardsWritten: res.shardsWritten,
        shardsSkipped: res.shardsSkipped,
        peakRssBytes: ru.maxRSS * 1024,
        converted: res.tensors.filter((t) => t.stats).length,
        copied: res.tensors.filter((t) => !t.stats).length,
        verify: res.verify,
        report: reportPath,
      })}\n`,
    );
    return mismatches > 0 ? EXIT_FINDINGS : EXIT_OK;
  }
  if (res.status === "dry-run") {
    process.stdout.write(`${printPlan(res)}\n`);
    return EXIT_OK;
  }
  const out = process.stdout;
  if (res.status === "complete") {
    out.write(`${errorTable(res.tensors)}\n\n`);
  }
  const rate = res.seconds > 0 ? (res.bytesRead + res.bytesWritten) / res.seconds : 0;
  out.write(
    `${res.status === "complete" ? "converted" : `part ${v.part} done:`} ${res.shardsWritten.length} shard(s) written, ${res.shardsSkipped.length} already complete; ${fmtBytes(res.bytesRead)} read, ${fmtBytes(res.bytesWritten)} written in ${res.seconds.toFixed(1)} s (${(rate / 1e6).toFixed(0)} MB/s)\n`,
  );
  if (res.verify) {
    const r = res.verify;
    out.write(
      `verify: ${r.tensors} tensors: ${r.identical} copied byte-identical, ${r.withinError} converted within the reported error (max rel. error ${r.maxRelFrob.toExponential(2)}), ${r.mismatches.length} mismatches\n`,
    );
    for (const m of r.mismatches.slice(0, 20)) out.write(`  MISMATCH ${m.tensor}: ${m.reason}\n`);
  }
  return mismatches > 0 ? EXIT_FINDINGS : EXIT_OK;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      to: { type: "string" },
      block: { type: "string" },
      "scale-fmt": { type: "string" },
      "scale-dtype": { type: "string" },
      "scale-rule": { type: "string" },
      preset: { type: "string" },
      include: { type: "string", multiple: true },
      exclude: { type: "string", multiple: true },
      "max-shard-size": { type: "string" },
      workers: { type: "string" },
      "dry-run": { type: "boolean" },
      resume: { type: "boolean" },
      force: { type: "boolean" },
      part: { type: "string" },
      finalize: { type: "boolean" },
      verify: { type: "boolean" },
      report: { type: "string" },
      "allow-nonfinite": { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}
