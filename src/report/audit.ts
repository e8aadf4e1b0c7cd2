import { matchAny } from "../checkpoint/glob.js";
import { expectedScaleShape } from "../checkpoint/index.js";
import { seededUniform } from "../formats/prng.js";
import { type ErrorStats, emptyStats, mergeStats, summarizeErrorStats } from "../quant/error-stats.js";
import { f32Bits, isPowerOfTwoF32 } from "../quant/float32.js";
import { BlockRequantizer } from "../quant/kernels/requant-measure.js";
import type { CheckpointDir } from "../safetensors/index.js";
import { type AuditKernel, inThreadKernel } from "./audit-kernel.js";
import { layoutOf } from "./inspect.js";
import type { ReportLayoutKind, ReportQuantizedWeight } from "./layout.js";
import { bootstrapRelError, type Interval, sampleIndices } from "./sampling.js";
import { decodeScaleValues } from "./scale-values.js";
import { ShardSources } from "./shard-sources.js";
import { readSnapshot, type Snapshot, type SnapshotTensor, throwIfFatal } from "./snapshot.js";

/** A scale that is not an exact power of two. */
export interface ScaleException {
  /** Flat index into the scale tensor. */
  index: number;
  value: number;
  /** value / 2^floor(log2 value): 1 for powers of two (e.g. 1.32288 for DeepSeek-V3.1's o_proj). */
  mantissa: number;
}

/** The requantization error of one tensor (or of all of them). */
export interface RequantReport {
  relFrobenius: number;
  /** null: the requantization is exact (infinite SQNR). */
  sqnrDb: number | null;
  maxAbsError: number;
  elements: number;
  blocks: number;
  changedBlocks: number;
  flushedToZero: number;
  nan: number;
  /** Sample mode: 95% bootstrap interval of `relFrobenius`. */
  interval: Interval | null;
}

export interface TensorAudit {
  weight: string;
  data: string;
  scale: string;
  /** Layer index from the name (`layers.N.`), or null. */
  layer: number | null;
  shape: number[];
  block: [number, number];
  scaleDtype: string;
  scales: { count: number; powerOfTwo: number; nonPowerOfTwo: number; exceptions: ScaleException[] };
  /** UE8M0 requantization error; null where it does not apply (MX/NVFP4 or a bad scale grid). */
  requant: RequantReport | null;
  note: string | null;
}

/** What `fp8kit audit` reports (the `--json` shape, version 1; see docs/REPORT.md). */
export interface AuditResult {
  schema: "fp8kit.audit/1";
  path: string;
  layout: { kind: ReportLayoutKind; label: string; scaleFmt: "float" | "ue8m0" | null };
  rule: string;
  mode: "full" | "sample";
  sample: { blocksPerTensor: number; seed: number } | null;
  tensors: TensorAudit[];
  summary: {
    scaleTensors: number;
    scales: number;
    nonPowerOfTwoScales: number;
    nonPowerOfTwoTensors: number;
    allPowerOfTwo: boolean;
    requant: (RequantReport & { tensors: number }) | null;
  };
}

/** Histograms the HTML report draws, gathered while auditing. */
export interface AuditHistograms {
  /** Count of each E4M3 code over all audited weights. */
  codes: Float64Array;
  /** floor(log2 scale) -> [powers of two, others]. */
  scaleExponents: Map<number, [number, number]>;
}

export interface AuditOptions {
  /** Blocks per tensor to audit (seeded random); 0/undefined audits every block. */
  sample?: number;
  seed?: number;
  /** Weight-name globs to audit (all quantized weights when empty). */
  filter?: readonly string[];
  path?: string;
  /** Gather the histograms of `AuditHistograms`. */
  histograms?: AuditHistograms;
  /** Where full-mode tensors are measured (default: this thread); see `createAuditPool` (Node). */
  kernel?: AuditKernel;
  /** Tensors read and measured at once (default 2: one measured while the next is read). */
  concurrency?: number;
}

/** An empty histogram collector for `AuditOptions.histograms`. */
export function newHistograms(): AuditHistograms {
  return { codes: new Float64Array(256), scaleExponents: new Map() };
}

const MAX_EXCEPTIONS = 8;
export const UE8M0_RULE =
  "sf = 2^ceil(log2(max(amax, 1e-4) / 448)) per block, E4M3 RNE saturating (DeepGEMM ceil_to_ue8m0)";

function auditScales(values: Float32Array, h: AuditHistograms | undefined): TensorAudit["scales"] {
  let pow2 = 0;
  const exceptions: ScaleException[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const ok = isPowerOfTwoF32(v);
    if (ok) pow2++;
    else if (exceptions.length < MAX_EXCEPTIONS) {
      const e = v > 0 && Number.isFinite(v) ? Math.floor(Math.log2(v)) : 0;
      exceptions.push({
        index: i,
        value: v,
        mantissa: v > 0 && Number.isFinite(v) ? v / 2 ** e : Number.NaN,
      });
    }
    if (h && v > 0 && Number.isFinite(v)) {
      const bits = f32Bits(v);
      const ef = (bits >>> 23) & 0xff;
      const e = ef === 0 ? -127 : ef - 127;
      const slot = h.scaleExponents.get(e) ?? [0, 0];
      slot[ok ? 0 : 1]++;
      h.scaleExponents.set(e, slot);
    }
  }
  return { count: values.length, powerOfTwo: pow2, nonPowerOfTwo: values.length - pow2, exceptions };
}

function report(s: ErrorStats, interval: Interval | null): RequantReport {
  const { relFrob, sqnrDb } = summarizeErrorStats(s);
  return {
    relFrobenius: relFrob,
    sqnrDb: s.ee > 0 ? sqnrDb : null,
    maxAbsError: s.maxAbsErr,
    elements: s.count,
    blocks: s.blocks,
    changedBlocks: s.changedBlocks,
    flushedToZero: s.flushed,
    nan: s.nonfinite,
    interval,
  };
}

function requantApplies(q: ReportQuantizedWeight): boolean {
  return (
    q.element === "float8_e4m3fn" &&
    (q.scaleStorage === "f32" || q.scaleStorage === "bf16" || q.scaleStorage === "f16") &&
    q.shape.length >= 2
  );
}

const layerOf = (name: string): number | null => {
  const m = /(?:^|\.)(?:layers|h|blocks?)\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
};

/**
 * `fp8kit audit`, the UE8M0 audit: for every quantized weight's scale tensor, whether each value is
 * an exact power of two (by its float32 mantissa bits, whatever the dtype), with the exceptions; and
 * for block-FP8 E4M3 weights the error that Blackwell's load-time requantization (`UE8M0_RULE`)
 * adds, per tensor and overall. Streams tensor by tensor in file order, reading the next tensor while
 * the current one is measured (memory: about two tensors). With `sample`, only that many random
 * blocks per tensor are read (seeded) and each error carries a 95% bootstrap interval.
 */
export async function auditCheckpoint(dir: CheckpointDir, options: AuditOptions = {}): Promise<AuditResult> {
  const s = await readSnapshot(dir);
  throwIfFatal(s);
  return auditSnapshot(dir, s, options);
}

/** `auditCheckpoint` on a snapshot already read. */
export async function auditSnapshot(
  dir: CheckpointDir,
  s: Snapshot,
  options: AuditOptions = {},
): Promise<AuditResult> {
  const layout = layoutOf(s);
  const filter = options.filter ?? [];
  const weights = layout.quantized
    .filter((q) => filter.length === 0 || matchAny(q.name, filter) || matchAny(q.data, filter))
    .filter((q) => s.byName.has(q.data) && s.byName.has(q.scale));
  const pos = (t: SnapshotTensor) => [s.shards.findIndex((x) => x.file === t.shard), t.fileOffsets[0]];
  weights.sort((a, b) => {
    const [sa, oa] = pos(s.byName.get(a.data)!);
    const [sb, ob] = pos(s.byName.get(b.data)!);
    return sa - sb || oa - ob;
  });
  const sample = options.sample && options.sample > 0 ? Math.floor(options.sample) : 0;
  const seed = options.seed ?? 0;
  const kernel = options.kernel ?? inThreadKernel;
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const sources = new ShardSources(dir);
  const req = new BlockRequantizer();
  // Per-tensor sums, added up in tensor order at the end (the same total whatever finishes first).
  const sumsOf: ErrorStats[] = [];
  const blocksOf: ErrorStats[][] = [];
  // Close each shard once every weight in it is done.
  const left = new Map<string, number>();
  for (const q of weights) {
    for (const n of [q.data, q.scale]) {
      const sh = s.byName.get(n)!.shard;
      left.set(sh, (left.get(sh) ?? 0) + 1);
    }
  }
  const release = async (q: ReportQuantizedWeight) => {
    const open = new Set<string>();
    for (const n of [q.data, q.scale]) {
      const sh = s.byName.get(n)!.shard;
      left.set(sh, left.get(sh)! - 1);
    }
    for (const [sh, n] of left) if (n > 0) open.add(sh);
    await sources.closeExcept(open);
  };

  const one = async (q: ReportQuantizedWeight, i: number): Promise<TensorAudit> => {
    const st = s.byName.get(q.scale)!;
    const values = decodeScaleValues(
      st.dtype,
      await sources.read(st.shard, st.fileOffsets[0], st.byteLength),
    );
    const audit: TensorAudit = {
      weight: q.name,
      data: q.data,
      scale: q.scale,
      layer: layerOf(q.name),
      shape: q.shape,
      block: q.block,
      scaleDtype: q.scaleDtype,
      scales: values
        ? auditScales(values, options.histograms)
        : { count: 0, powerOfTwo: 0, nonPowerOfTwo: 0, exceptions: [] },
      requant: null,
      note: null,
    };
    const want = expectedScaleShape(q.shape, q.block);
    const gridOk = values !== null && values.length === want.reduce((a, b) => a * b, 1);
    if (!requantApplies(q)) {
      audit.note = "UE8M0 requantization applies to block-FP8 E4M3 weights with float scales only";
    } else if (!gridOk) {
      audit.note = "scale grid does not match the weight (see fp8kit lint); requantization skipped";
    } else if (values) {
      const t = s.byName.get(q.data)!;
      if (!sample) {
        const codes = await sources.read(t.shard, t.fileOffsets[0], t.byteLength);
        const r = await kernel({
          codes,
          scales: values,
          shape: q.shape,
          block: q.block,
          wantCodes: !!options.histograms,
        });
        if (options.histograms && r.codes)
          for (let c = 0; c < 256; c++) options.histograms.codes[c] += r.codes[c];
        audit.requant = report(r.sums, null);
        sumsOf[i] = r.sums;
      } else {
        const per = await measureSample(req, sources, t, values, q, sample, seed ^ i, options.histograms);
        const sums = per.reduce(mergeStats, emptyStats());
        blocksOf[i] = per;
        const interval = bootstrapRelError(
          per.map((b) => b.ee),
          per.map((b) => b.xx),
          seed + i,
        );
        sumsOf[i] = sums;
        audit.requant = report(sums, interval);
      }
    }
    await release(q);
    return audit;
  };

  const results: Promise<TensorAudit>[] = [];
  try {
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; i < weights.length; i++) {
      while (inflight.size >= (sample ? 1 : concurrency)) await Promise.race(inflight);
      const p = one(weights[i], i);
      const settled: Promise<unknown> = p.then(
        (): boolean => inflight.delete(settled),
        (): boolean => inflight.delete(settled),
      );
      inflight.add(settled);
      results.push(p);
    }
  } finally {
    await Promise.allSettled(results);
    await sources.closeAll();
  }
  const tensors = await Promise.all(results);
  const total = sumsOf.filter(Boolean).reduce(mergeStats, emptyStats());
  const pooled = blocksOf.flat().filter(Boolean);
  const pooledErr = pooled.map((b) => b.ee);
  const pooledRef = pooled.map((b) => b.xx);
  const measured = tensors.filter((t) => t.requant !== null);
  const nonPow = tensors.filter((t) => t.scales.nonPowerOfTwo > 0);
  return {
    schema: "fp8kit.audit/1",
    path: options.path ?? s.name,
    layout: { kind: layout.kind, label: layout.label, scaleFmt: layout.scaleFmt },
    rule: UE8M0_RULE,
    mode: sample ? "sample" : "full",
    sample: sample ? { blocksPerTensor: sample, seed } : null,
    tensors,
    summary: {
      scaleTensors: tensors.length,
      scales: tensors.reduce((a, t) => a + t.scales.count, 0),
      nonPowerOfTwoScales: tensors.reduce((a, t) => a + t.scales.nonPowerOfTwo, 0),
      nonPowerOfTwoTensors: nonPow.length,
      allPowerOfTwo: nonPow.length === 0,
      requant:
        measured.length === 0
          ? null
          : {
              ...report(total, sample ? bootstrapRelError(pooledErr, pooledRef, seed) : null),
              tensors: measured.length,
            },
    },
  };
}

function dims(q: ReportQuantizedWeight) {
  const rows = q.shape[q.shape.length - 2];
  const cols = q.shape[q.shape.length - 1];
  const mats = q.shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const [br, bc] = q.block;
  return { rows, cols, mats, br, bc, gr: Math.ceil(rows / br), gc: Math.ceil(cols / bc) };
}

function addCodes(h: AuditHistograms | undefined, hist: Uint32Array, n: number): void {
  if (!h) return;
  for (let i = 0; i < n; i++) h.codes[i & 255] += hist[i];
}

async function measureSample(
  req: BlockRequantizer,
  sources: ShardSources,
  t: SnapshotTensor,
  scales: Float32Array,
  q: ReportQuantizedWeight,
  n: number,
  seed: number,
  h: AuditHistograms | undefined,
): Promise<ErrorStats[]> {
  const { rows, cols, mats, br, bc, gr, gc } = dims(q);
  // The same seed picks the same blocks on every machine.
  const picks = sampleIndices(mats * gr * gc, n, seededUniform(seed));
  const hist = new Uint32Array(256);
  const out: ErrorStats[] = [];
  for (const b of picks) {
    const m = Math.floor(b / (gr * gc));
    const bi = Math.floor(b / gc) % gr;
    const bj = b % gc;
    const r0 = bi * br;
    const r1 = Math.min(rows, r0 + br);
    const c0 = bj * bc;
    const w = Math.min(cols, c0 + bc) - c0;
    const parts = await Promise.all(
      Array.from({ length: r1 - r0 }, (_, k) =>
        sources.read(t.shard, t.fileOffsets[0] + m * rows * cols + (r0 + k) * cols + c0, w),
      ),
    );
    hist.fill(0);
    for (const p of parts) for (let i = 0; i < p.length; i++) hist[p[i]]++;
    const sums = emptyStats();
    req.block(hist, 0, scales[b], sums);
    addCodes(h, hist, 256);
    out.push(sums);
  }
  return out;
}
