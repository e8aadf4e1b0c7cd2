import { matchAny } from "../checkpoint/glob.js";
import { decodeTable } from "../formats/index.js";
import type { CheckpointDir } from "../safetensors/index.js";
import { type AuditHistograms, type AuditResult, auditSnapshot, layerOf } from "./audit.js";
import type { AuditKernel } from "./audit-kernel.js";
import {
  COMPARE_FORMAT_NAMES,
  type CompareFormat,
  compareFormats,
  errorSummary,
  type FormatComparison,
} from "./format-compare.js";
import { layoutOf } from "./inspect.js";
import type { ReportLayout } from "./layout.js";
import { ShardSources } from "./shard-sources.js";
import { readSnapshot, type Snapshot, throwIfFatal } from "./snapshot.js";
import { decodeFloatTensor, dequantizeBlockWeight } from "./tensor-values.js";

/** Everything the HTML report shows (inlined into the page as JSON; version 1). */
export interface ReportData {
  schema: "fp8kit.report/1";
  title: string;
  path: string;
  against: string | null;
  layout: string;
  /** What the per-layer chart measures. */
  errorKind: string;
  /** Per-tensor relative errors (`series`: "UE8M0 requant" or "vs <against>"). */
  perTensor: { tensor: string; layer: number; series: string; relError: number }[];
  /** Per-layer RMS of the per-tensor errors. */
  perLayer: { layer: number; series: string; relError: number }[];
  /** floor(log2 scale) histogram, split into powers of two and other values. */
  scaleExponents: { exponent: number; kind: "power of two" | "not a power of two"; count: number }[];
  /** E4M3 magnitude-code histogram of the quantized weights (both signs together). */
  codes: {
    code: number;
    value: number;
    region: "zero" | "subnormal" | "normal" | "max (448)" | "NaN";
    count: number;
  }[];
  codeStats: {
    total: number;
    zero: number;
    subnormal: number;
    saturated: number;
    nan: number;
    binadesUsed: number;
  };
  formats: FormatComparison[];
  audit: AuditResult["summary"] | null;
  notes: string[];
}

export interface ReportOptions {
  /** A second checkpoint to compare against, tensor by tensor. */
  against?: CheckpointDir;
  formats?: readonly CompareFormat[];
  /** Tensors for the format comparison (globs); by default the first few quantized weights. */
  tensors?: readonly string[];
  /** At most this many tensors in the format comparison (default 3). */
  maxTensors?: number;
  /** Audit only N blocks per tensor (see `AuditOptions.sample`). */
  sample?: number;
  seed?: number;
  title?: string;
  path?: string;
  againstPath?: string;
  /** Passed to the audit (see `AuditOptions.kernel`). */
  kernel?: AuditKernel;
  concurrency?: number;
}

/** Unquantized float dtypes, compared as they are. */
const FLOAT_DTYPES: ReadonlySet<string> = new Set(["BF16", "F16", "F32"]);

/** Rows of a tensor used in the format comparison (multiple of 128, so 128x128 blocks are whole). */
const MAX_COMPARE_ROWS = 512;

/**
 * Gathers the report's data: the UE8M0 audit of `dir` (per-tensor requantization error, scale and
 * code histograms), optionally the per-tensor error against a second checkpoint, and the error each
 * format in `formats` would give on a few tensors. Streams tensor by tensor.
 */
export async function buildReportData(dir: CheckpointDir, options: ReportOptions = {}): Promise<ReportData> {
  const s = throwIfFatal(await readSnapshot(dir));
  const layout = layoutOf(s);
  const notes: string[] = [];
  const hist: AuditHistograms = { codes: new Float64Array(256), scaleExponents: new Map() };
  const { sample, seed, kernel, concurrency } = options;
  const audit = await auditSnapshot(dir, s, { sample, seed, kernel, concurrency, histograms: hist });
  const perTensor: ReportData["perTensor"] = [];
  for (const t of audit.tensors) {
    if (t.requant && t.layer !== null)
      perTensor.push({
        tensor: t.data,
        layer: t.layer,
        series: "UE8M0 requant",
        relError: t.requant.relFrobenius,
      });
  }
  let errorKind = "relative Frobenius error that Blackwell's UE8M0 requantization adds";
  const against = options.against ? (options.againstPath ?? options.against.name) : null;
  if (options.against) {
    perTensor.push(...(await compareCheckpoints(dir, s, layout, options.against, `vs ${against}`, notes)));
    errorKind = `relative Frobenius error against ${against} (and of UE8M0 requantization)`;
  }
  if (perTensor.length === 0)
    notes.push("no per-layer errors: no block-FP8 E4M3 weights with layer numbers (and no --against)");
  return {
    schema: "fp8kit.report/1",
    title: options.title ?? `fp8kit report: ${options.path ?? s.name}`,
    path: options.path ?? s.name,
    against,
    layout: layout.label,
    errorKind,
    perTensor,
    perLayer: perLayerRms(perTensor),
    scaleExponents: exponentRange(hist.scaleExponents).flatMap(([exponent, [p, o]]) => [
      { exponent, kind: "power of two" as const, count: p },
      { exponent, kind: "not a power of two" as const, count: o },
    ]),
    ...codeHistogram(hist.codes),
    formats: await formatComparison(dir, s, layout, options, notes),
    audit: audit.tensors.length > 0 ? audit.summary : null,
    notes,
  };
}

/** Exponent histogram with the gaps (and two empty bins either side) filled, so bars keep a sane width. */
function exponentRange(m: ReadonlyMap<number, [number, number]>): [number, [number, number]][] {
  if (m.size === 0) return [];
  const keys = [...m.keys()];
  const lo = Math.min(...keys) - 2;
  const hi = Math.max(...keys) + 2;
  return Array.from({ length: hi - lo + 1 }, (_, k) => [lo + k, m.get(lo + k) ?? [0, 0]]);
}

function perLayerRms(rows: ReportData["perTensor"]): ReportData["perLayer"] {
  const acc = new Map<string, { layer: number; series: string; s: number; n: number }>();
  for (const r of rows) {
    const k = `${r.series}\u0000${r.layer}`;
    const a = acc.get(k) ?? { layer: r.layer, series: r.series, s: 0, n: 0 };
    a.s += r.relError * r.relError;
    a.n++;
    acc.set(k, a);
  }
  return [...acc.values()]
    .map((a) => ({ layer: a.layer, series: a.series, relError: Math.sqrt(a.s / a.n) }))
    .sort((a, b) => a.layer - b.layer);
}

function codeHistogram(counts: Float64Array): Pick<ReportData, "codes" | "codeStats"> {
  const values = decodeTable("float8_e4m3fn");
  const codes: ReportData["codes"] = [];
  const by = { zero: 0, subnormal: 0, normal: 0, "max (448)": 0, NaN: 0 };
  const binades = new Set<number>();
  for (let c = 0; c < 128; c++) {
    const count = counts[c] + counts[c | 0x80];
    const region =
      c === 0 ? "zero" : c < 8 ? "subnormal" : c === 0x7f ? "NaN" : c === 0x7e ? "max (448)" : "normal";
    codes.push({ code: c, value: values[c], region, count });
    by[region] += count;
    if (count > 0 && c >= 8 && c < 0x7f) binades.add(c >> 3);
  }
  const total = by.zero + by.subnormal + by.normal + by["max (448)"] + by.NaN;
  const { zero, subnormal, "max (448)": saturated, NaN: nan } = by;
  return { codes, codeStats: { total, zero, subnormal, saturated, nan, binadesUsed: binades.size } };
}

async function tensorValues(
  sources: ShardSources,
  s: Snapshot,
  layout: ReportLayout,
  name: string,
): Promise<{ values: Float32Array; shape: number[] } | null> {
  const q = layout.quantized.find((w) => w.name === name || w.data === name);
  if (q) {
    const t = s.byName.get(q.data);
    const st = s.byName.get(q.scale);
    if (!t || !st) return null;
    const codes = await sources.read(t.shard, t.fileOffsets[0], t.byteLength);
    const scales = await sources.read(st.shard, st.fileOffsets[0], st.byteLength);
    const values = dequantizeBlockWeight(q, codes, scales);
    return values ? { values, shape: q.shape } : null;
  }
  const t = s.byName.get(name);
  if (!t) return null;
  const values = decodeFloatTensor(t.dtype, await sources.read(t.shard, t.fileOffsets[0], t.byteLength));
  return values ? { values, shape: [...t.shape] } : null;
}

async function compareCheckpoints(
  dir: CheckpointDir,
  s: Snapshot,
  layout: ReportLayout,
  other: CheckpointDir,
  series: string,
  notes: string[],
): Promise<ReportData["perTensor"]> {
  const o = throwIfFatal(await readSnapshot(other));
  const olayout = layoutOf(o);
  const mine = new ShardSources(dir);
  const theirs = new ShardSources(other);
  const out: ReportData["perTensor"] = [];
  const names = new Set<string>([
    ...layout.quantized.map((q) => q.name),
    ...s.tensors.filter((t) => FLOAT_DTYPES.has(t.dtype)).map((t) => t.name),
  ]);
  const scaleNames = new Set(layout.quantized.map((q) => q.scale));
  let skipped = 0;
  try {
    for (const name of names) {
      if (scaleNames.has(name)) continue;
      const layer = layerOf(name);
      if (layer === null) continue;
      const a = await tensorValues(mine, s, layout, name);
      const b = a ? await tensorValues(theirs, o, olayout, name) : null;
      if (!a || !b || a.values.length !== b.values.length) {
        skipped++;
        continue;
      }
      out.push({ tensor: name, layer, series, relError: errorSummary(b.values, a.values).relError });
    }
  } finally {
    await mine.closeAll();
    await theirs.closeAll();
  }
  const why = "missing in one checkpoint, other shape, or a layout the comparison cannot decode";
  if (skipped) notes.push(`${skipped} tensors not compared (${why})`);
  return out;
}

async function formatComparison(
  dir: CheckpointDir,
  s: Snapshot,
  layout: ReportLayout,
  options: ReportOptions,
  notes: string[],
): Promise<FormatComparison[]> {
  const formats = options.formats ?? COMPARE_FORMAT_NAMES;
  if (formats.length === 0) return [];
  const globs = options.tensors ?? [];
  const max = options.maxTensors ?? 3;
  let candidates: string[];
  if (globs.length > 0) {
    candidates = [
      ...layout.quantized
        .filter((q) => matchAny(q.name, globs) || matchAny(q.data, globs))
        .map((q) => q.name),
      ...s.tensors.filter((t) => t.shape.length === 2 && matchAny(t.name, globs)).map((t) => t.name),
    ];
  } else {
    candidates = layout.quantized.filter((q) => !q.packed && q.shape.length === 2).map((q) => q.name);
    if (candidates.length === 0) {
      candidates = s.tensors
        .filter((t) => t.shape.length === 2 && FLOAT_DTYPES.has(t.dtype) && t.numel >= 1024)
        .map((t) => t.name);
    }
  }
  candidates = [...new Set(candidates)].slice(0, max);
  const sources = new ShardSources(dir);
  const out: FormatComparison[] = [];
  try {
    for (const name of candidates) {
      const v = await tensorValues(sources, s, layout, name);
      if (v === null || v.shape.length !== 2) {
        notes.push(`${name}: not compared across formats (its layout cannot be decoded here)`);
        continue;
      }
      const [rows, cols] = v.shape;
      const keep = Math.min(rows, MAX_COMPARE_ROWS);
      if (keep < rows) notes.push(`${name}: format comparison on the first ${keep} of ${rows} rows`);
      out.push(...compareFormats(name, v.values.subarray(0, keep * cols), [keep, cols], formats));
    }
  } finally {
    await sources.closeAll();
  }
  return out;
}
