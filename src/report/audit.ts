import { matchAny } from "../checkpoint/glob.js";
import { expectedScaleShape } from "../checkpoint/index.js";
import { seededUniform } from "../formats/prng.js";
import { type ErrorStats, emptyStats, mergeStats, summarizeErrorStats } from "../quant/error-stats.js";
import { f32Bits, isPowerOfTwoF32 } from "../quant/float32.js";
import { BlockRequantizer } from "../quant/kernels/requant-measure.js";
import type { CheckpointDir } from "../safetensors/index.js";
import { type AuditFileKernel, type AuditKernel, inThreadKernel } from "./audit-kernel.js";
import { countFindings, type Finding } from "./findings.js";
import { layoutOf } from "./inspect.js";
import type { ReportLayoutKind, ReportQuantizedWeight } from "./layout.js";
import { bootstrapRelError, type Interval, sampleIndices } from "./sampling.js";
import { readWeightScales } from "./scale-values.js";
import { ShardSources } from "./shard-sources.js";
import { readSnapshot, type Snapshot, type SnapshotTensor, throwIfFatal } from "./snapshot.js";
import { blockGrid } from "./tensor-values.js";

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
  /**
   * Unusable scales (NaN, infinite, negative, zero, overflowing: errors; float32 subnormal: a
   * warning) of the scale tensor and of its per-tensor scalar: the findings `lint` reports.
   */
  findings: Finding[];
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
    /** Counts of the tensors' `findings` (the scale findings of `lint`). */
    scaleFindings: { errors: number; warnings: number };
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
  /**
   * Measures a tensor of a local shard, reading it itself (a pool's workers read straight into their
   * kernels); used instead of `kernel` where the checkpoint directory has `localPath`.
   */
  fileKernel?: AuditFileKernel;
  /** Tensors read and measured at once (default 2: one measured while the next is read). */
  concurrency?: number;
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
    const positive = v > 0 && Number.isFinite(v);
    if (ok) pow2++;
    else if (exceptions.length < MAX_EXCEPTIONS)
      exceptions.push({
        index: i,
        value: v,
        mantissa: positive ? v / 2 ** Math.floor(Math.log2(v)) : Number.NaN,
      });
    if (h && positive) {
      const ef = (f32Bits(v) >>> 23) & 0xff;
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

/** Scale storages the requantization starts from (float scales). */
const FLOAT_SCALES: ReadonlySet<string> = new Set(["f32", "bf16", "f16"]);
const requantApplies = (q: ReportQuantizedWeight) =>
  q.element === "float8_e4m3fn" && FLOAT_SCALES.has(q.scaleStorage) && q.shape.length >= 2;

/** Layer index from a tensor name (`layers.N.`, `h.N.`, `blocks.N.`), or null. */
export const layerOf = (name: string): number | null => {
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
  const s = throwIfFatal(await readSnapshot(dir));
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
  // Snapshot tensors are in file order (shard, then offset): each shard is read front to back.
  const order = new Map(s.tensors.map((t, i) => [t.name, i]));
  weights.sort((a, b) => order.get(a.data)! - order.get(b.data)!);
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
  const shardsOf = (q: ReportQuantizedWeight) => [q.data, q.scale].map((n) => s.byName.get(n)!.shard);
  for (const q of weights) for (const sh of shardsOf(q)) left.set(sh, (left.get(sh) ?? 0) + 1);
  const release = async (q: ReportQuantizedWeight) => {
    for (const sh of shardsOf(q)) left.set(sh, left.get(sh)! - 1);
    await sources.closeExcept(new Set([...left].filter(([, n]) => n > 0).map(([sh]) => sh)));
  };

  const one = async (q: ReportQuantizedWeight, i: number): Promise<TensorAudit> => {
    const { values, findings } = await readWeightScales(q, s, sources);
    const audit: TensorAudit = {
      weight: q.name,
      data: q.data,
      scale: q.scale,
      layer: layerOf(q.name),
      shape: q.shape,
      block: q.block,
      scaleDtype: q.scaleDtype,
      scales: auditScales(values ?? new Float32Array(0), options.histograms),
      findings,
      requant: null,
      note: null,
    };
    const gridSize = expectedScaleShape(q.shape, q.block).reduce((a, b) => a * b, 1);
    if (!requantApplies(q)) {
      audit.note = "UE8M0 requantization applies to block-FP8 E4M3 weights with float scales only";
    } else if (values?.length !== gridSize) {
      audit.note = "scale grid does not match the weight (see fp8kit lint); requantization skipped";
    } else {
      const t = s.byName.get(q.data)!;
      if (!sample) {
        const job = { scales: values, shape: q.shape, block: q.block, wantCodes: !!options.histograms };
        const path = options.fileKernel && dir.localPath ? dir.localPath(t.shard) : null;
        const r = path
          ? await options.fileKernel!({
              ...job,
              path,
              file: t.shard,
              tensor: q.data,
              offset: t.fileOffsets[0],
              byteLength: t.byteLength,
            })
          : await kernel({ ...job, codes: await sources.read(t.shard, t.fileOffsets[0], t.byteLength) });
        if (r.codes) addCodes(options.histograms, r.codes);
        audit.requant = report(r.sums, null);
        sumsOf[i] = r.sums;
      } else {
        const per = await measureSample(req, sources, t, values, q, sample, seed ^ i, options.histograms);
        blocksOf[i] = per;
        sumsOf[i] = per.reduce(mergeStats, emptyStats());
        audit.requant = report(sumsOf[i], blockInterval(per, seed + i));
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
        () => inflight.delete(settled),
        () => inflight.delete(settled),
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
      scaleFindings: countFindings(tensors.flatMap((t) => t.findings)),
      requant:
        measured.length === 0
          ? null
          : {
              ...report(total, sample ? blockInterval(blocksOf.flat().filter(Boolean), seed) : null),
              tensors: measured.length,
            },
    },
  };
}

/** The 95% bootstrap interval of the pooled relative error of sampled blocks. */
const blockInterval = (blocks: readonly ErrorStats[], seed: number): Interval =>
  bootstrapRelError(
    blocks.map((b) => b.ee),
    blocks.map((b) => b.xx),
    seed,
  );

function addCodes(h: AuditHistograms | undefined, counts: ArrayLike<number>): void {
  if (h) for (let c = 0; c < 256; c++) h.codes[c] += counts[c];
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
  const { rows, cols, mats, br, bc, gr, gc } = blockGrid(q);
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
    addCodes(h, hist);
    out.push(sums);
  }
  return out;
}
