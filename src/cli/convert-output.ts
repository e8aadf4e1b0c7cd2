/**
 * What `fp8kit convert` (and `fp8kit demo`) print: the per-tensor error table, the `--dry-run`
 * plan, progress on stderr, the closing summary, and their `--json` lines (one object per line).
 */
import {
  type ConvertEvent,
  type ConvertResult,
  emptyStats,
  mergeStats,
  summarizeErrorStats as summarize,
  type TensorReport,
} from "../convert/node.js";
import { INDEX_FILE_NAME } from "../safetensors/index.js";
import { peakRssBytes } from "./peak-rss.js";
import { formatBytes } from "./text-format.js";

/**
 * A tensor's action as people read it: a relabel says whether it was lossless, which its decoded
 * values prove (zero error, nothing non-finite that was not already).
 */
export function actionLabel(r: TensorReport): string {
  if (r.action !== "relabel" || !r.stats) return r.action;
  return r.stats.ee === 0 && r.stats.maxAbsErr === 0 ? "relabel (lossless)" : "relabel (lossy)";
}

/** One row of the error table (also a `--json` "tensor" event). */
export function errorRow(r: TensorReport): Record<string, string | number | boolean> {
  const s = r.stats!;
  const m = summarize(s);
  return {
    tensor: r.output,
    action: r.action,
    ...(r.action === "relabel" ? { lossless: actionLabel(r) === "relabel (lossless)" } : {}),
    relFrob: m.relFrob,
    sqnrDb: m.sqnrDb,
    cosine: m.cosine,
    maxAbsErr: s.maxAbsErr,
    saturated: s.saturated,
    flushed: s.flushed,
    nonfinite: s.nonfinite,
  };
}

/** Every converted tensor's statistics merged (the whole checkpoint's error), or null when none was converted. */
export function overallReport(tensors: readonly TensorReport[]): TensorReport | null {
  const conv = tensors.filter((t) => t.stats);
  if (conv.length === 0) return null;
  const stats = conv.reduce((s, t) => mergeStats(s, t.stats!), emptyStats());
  return { name: "(all)", output: "(all converted tensors)", action: "requantize", stats };
}

/** Output size against the same model in BF16. */
function sizeLine(res: ConvertResult): string {
  const p = res.plan;
  return `output tensors ${formatBytes(p.bytesOut)}, ${(p.bytesOut / p.bf16Bytes).toFixed(2)} of the model in BF16 (${formatBytes(p.bf16Bytes)})`;
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
    `${"tensor".padEnd(w)}  ${"action".padEnd(18)} ${"rel.err".padStart(9)} ${"SQNR dB".padStart(8)} ${"cosine".padStart(10)} ${"max|err|".padStart(9)} ${"sat".padStart(6)} ${"flush".padStart(7)}`,
  ];
  for (const t of shown) {
    const r = errorRow(t);
    const name = t.output.length > w ? `...${t.output.slice(-(w - 3))}` : t.output;
    lines.push(
      `${name.padEnd(w)}  ${actionLabel(t).padEnd(18)} ${(r.relFrob as number).toExponential(2).padStart(9)} ${(r.sqnrDb as number).toFixed(1).padStart(8)} ${(r.cosine as number).toFixed(7).padStart(10)} ${(r.maxAbsErr as number).toExponential(2).padStart(9)} ${String(r.saturated).padStart(6)} ${String(r.flushed).padStart(7)}`,
    );
  }
  if (conv.length > limit) lines.push(`(${limit} worst of ${conv.length} converted tensors shown)`);
  if (conv.length > 1) {
    const all = errorRow(overallReport(tensors)!);
    lines.push(
      `${"all converted tensors".padEnd(w)}  ${"".padEnd(18)} ${(all.relFrob as number).toExponential(2).padStart(9)} ${(all.sqnrDb as number).toFixed(1).padStart(8)} ${(all.cosine as number).toFixed(7).padStart(10)} ${(all.maxAbsErr as number).toExponential(2).padStart(9)} ${String(all.saturated).padStart(6)} ${String(all.flushed).padStart(7)}`,
    );
  }
  return lines.join("\n");
}

/** The `--dry-run` plan: every tensor, what happens to it, bytes in and out, the shards. */
export function printPlan(res: ConvertResult): string {
  const p = res.plan;
  const o = p.options;
  const lines = [
    `input layout: ${p.layout.label}`,
    `target: ${o.target} in the ${o.layout} layout${o.target === "fp8" ? ` (${o.block.join("x")} blocks, ${o.scaleFmt} scales stored as ${o.scaleDtype.toUpperCase().replace("E8M0", "F8_E8M0")}${o.requant === "sglang" ? ", requantized as SGLang does" : ""})` : ""}${o.target.startsWith("mx") ? ` (scale rule ${o.scaleRule})` : ""}`,
    `preset: ${p.preset}`,
    "",
  ];
  const w = Math.min(70, Math.max(10, ...p.ops.map((op) => op.input.data.length)));
  lines.push(
    `${"tensor".padEnd(w)}  ${"action".padEnd(10)} ${"in".padStart(10)} ${"out".padStart(10)}  output`,
  );
  for (const op of p.ops) {
    const outs = [op.output.data, op.output.scale, op.output.tensorScale]
      .filter((x) => x !== null)
      .map((t) => `${t.name} ${t.dtype}[${t.shape}]`);
    lines.push(
      `${op.input.data.padEnd(w)}  ${op.action.padEnd(10)} ${formatBytes(op.bytesIn).padStart(10)} ${formatBytes(op.bytesOut).padStart(10)}  ${outs.join(" + ")}  (${op.note}; ${op.shard})`,
    );
  }
  lines.push("");
  for (const s of p.shards)
    lines.push(`shard ${s.fileName}: ${s.ops.length} tensors, ${formatBytes(s.layout.fileSize)}`);
  const counts = new Map<string, number>();
  for (const op of p.ops) counts.set(op.action, (counts.get(op.action) ?? 0) + 1);
  lines.push(
    `${p.ops.length} tensors (${[...counts].map(([k, v]) => `${v} ${k}`).join(", ")}); ${formatBytes(p.bytesIn)} in, ${formatBytes(p.bytesOut)} out in ${p.shards.length} shard(s)`,
  );
  return lines.join("\n");
}

/** The `--dry-run --json` "plan" event. */
export function planJson(res: ConvertResult): Record<string, unknown> {
  const p = res.plan;
  return {
    event: "plan",
    layout: p.layout,
    preset: p.preset,
    options: p.options,
    bytesIn: p.bytesIn,
    bytesOut: p.bytesOut,
    bf16Bytes: p.bf16Bytes,
    totalSize: p.totalSize,
    shards: p.shards.map((s) => ({
      fileName: s.fileName,
      tensors: s.ops.length,
      fileSize: s.layout.fileSize,
    })),
    ops: p.ops.map((o) => ({
      tensor: o.input.data,
      scale: o.input.scale,
      action: o.action,
      note: o.note,
      outputs: [o.output.data, o.output.scale, o.output.zeros, o.output.aux, o.output.tensorScale].filter(
        (x) => x !== null && x !== undefined,
      ),
      bytesIn: o.bytesIn,
      bytesOut: o.bytesOut,
      shard: o.shard,
    })),
    config: p.config,
    hfQuantConfig: p.hfQuantConfig,
    ascendDescription: p.ascendDescription,
  };
}

/** The closing `--json` "result" event. */
export function resultJson(res: ConvertResult, report: string | null): Record<string, unknown> {
  return {
    event: "result",
    status: res.status,
    seconds: res.seconds,
    bytesRead: res.bytesRead,
    bytesWritten: res.bytesWritten,
    shardsWritten: res.shardsWritten,
    shardsSkipped: res.shardsSkipped,
    peakRssBytes: peakRssBytes(),
    bytesOut: res.plan.bytesOut,
    bf16Bytes: res.plan.bf16Bytes,
    overall: (() => {
      const all = overallReport(res.tensors);
      if (all === null) return null;
      const { tensor: _t, action: _a, ...row } = errorRow(all);
      return row;
    })(),
    converted: res.tensors.filter((t) => t.stats).length,
    copied: res.tensors.filter((t) => !t.stats).length,
    verify: res.verify,
    report,
  };
}

/**
 * The closing human summary: the error table (complete runs), what this run did (shards written,
 * or for `--finalize` the shards checked and the files written), bytes and speed, the verify result.
 */
export function printResult(res: ConvertResult, part: string | undefined, finalize = false): string {
  const out: string[] = [];
  if (res.status === "complete") out.push(errorTable(res.tensors), "", sizeLine(res));
  const rate = res.seconds > 0 ? (res.bytesRead + res.bytesWritten) / res.seconds : 0;
  const speed = `${formatBytes(res.bytesRead)} read, ${formatBytes(res.bytesWritten)} written in ${res.seconds.toFixed(1)} s (${(rate / 1e6).toFixed(0)} MB/s)`;
  if (res.status === "verify-failed") {
    out.push(
      `verification failed: the output is left unfinished (no config.json, no index); the shards with a mismatch will be rewritten when the same command runs again; ${speed}`,
    );
  } else if (finalize) {
    const files = [res.plan.config ? "config.json" : null, INDEX_FILE_NAME].filter((f) => f !== null);
    out.push(
      `finalized: checked the ${res.plan.shards.length} shard(s) written by the --part runs (all complete), wrote ${files.join(" and ")}; ${speed}`,
    );
  } else {
    out.push(
      `${res.status === "complete" ? "converted" : `part ${part} done:`} ${res.shardsWritten.length} shard(s) written, ${res.shardsSkipped.length} already complete; ${speed}`,
    );
  }
  if (res.verify) {
    const r = res.verify;
    out.push(
      `verify: ${r.tensors} tensors: ${r.identical} copied byte-identical, ${r.withinError} converted within the reported error (max rel. error ${r.maxRelFrob.toExponential(2)}), ${r.mismatches.length} mismatches`,
    );
    for (const m of r.mismatches.slice(0, 20)) out.push(`  MISMATCH ${m.tensor}: ${m.reason}`);
  }
  return out.join("\n");
}

/** Prints conversion events: a progress bar and shard lines on stderr, or JSON lines on stdout. */
export class ConvertProgress {
  private last = 0;
  private readonly tty = process.stderr.isTTY === true;
  constructor(private readonly json: boolean) {}

  on(e: ConvertEvent): void {
    if (this.json) this.onJson(e);
    else this.onText(e);
  }

  private throttled(e: ConvertEvent, ms: number): boolean {
    if (e.type !== "progress") return false;
    const now = Date.now();
    if (now - this.last < ms && e.bytesDone < e.bytesTotal) return true;
    this.last = now;
    return false;
  }

  private onJson(e: ConvertEvent): void {
    if (this.throttled(e, 500)) return;
    let line: Record<string, unknown>;
    if (e.type === "plan") {
      line = {
        event: "start",
        layout: e.plan.layout.label,
        shardsToWrite: e.shardsToWrite,
        inProcess: e.inProcess,
      };
    } else if (e.type === "tensor") {
      const r = e.report;
      line = { event: "tensor", ...(r.stats ? errorRow(r) : { tensor: r.output, action: r.action }) };
    } else {
      const { type, ...rest } = e;
      line = { event: type, ...rest };
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }

  private onText(e: ConvertEvent): void {
    const err = process.stderr;
    switch (e.type) {
      case "plan":
        err.write(`input: ${e.plan.layout.label}\n`);
        if (e.inProcess && e.inProcess !== "--workers 0")
          err.write(`note: converting in-process (${e.inProcess})\n`);
        break;
      case "progress": {
        if (!this.tty || this.throttled(e, 200)) return;
        const frac = e.bytesTotal > 0 ? e.bytesDone / e.bytesTotal : 1;
        const rate = e.seconds > 0 ? e.bytesDone / e.seconds : 0;
        const eta = rate > 0 ? (e.bytesTotal - e.bytesDone) / rate : 0;
        const bar = "#".repeat(Math.round(frac * 30)).padEnd(30, ".");
        err.write(
          `\r[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${e.tensorsDone}/${e.tensorsTotal} tensors ${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)} ${(rate / 1e6).toFixed(0)} MB/s ETA ${eta.toFixed(0)}s   `,
        );
        break;
      }
      case "shard-done":
        if (this.tty) err.write("\r\x1b[K");
        err.write(`wrote ${e.shard} (${formatBytes(e.bytes)}, ${e.seconds.toFixed(1)} s)\n`);
        break;
      case "shard-skip":
        err.write(`skipped ${e.shard}: ${e.reason}\n`);
        break;
      case "finalized":
        err.write(`wrote ${e.index} (total_size ${e.totalSize})\n`);
        break;
    }
  }
}
