import { matchAny } from "../checkpoint/glob.js";
import {
  ASCEND_DESCRIPTION_FILE,
  type AscendDescriptionSummary,
  blockLabel,
  isDeepSeekStyle,
  summarizeAscendDescription,
} from "../checkpoint/index.js";
import type { CheckpointDir, Dtype } from "../safetensors/index.js";
import { type CompatEntry, compatibility } from "./compat.js";
import type { Finding } from "./findings.js";
import { detectReportLayout, isScaleTensor, type ReportLayout, type ReportLayoutKind } from "./layout.js";
import {
  type ArchitectureSummary,
  type SizeSummary,
  summarizeConfig,
  summarizeSizes,
} from "./model-config.js";
import { readSnapshot, type Snapshot, throwIfFatal } from "./snapshot.js";
import { checkTpSplits, type TpSplitResult } from "./tp-split.js";

/** One row of the tensor table. */
export interface TensorRow {
  name: string;
  dtype: Dtype;
  /** Shape as stored in the header. */
  shape: number[];
  bytes: number;
  shard: string;
  /** `weight` (quantized codes), `scale`, or `plain`. */
  role: "weight" | "scale" | "plain";
  /** For quantized weights: its scale tensor and block. */
  scale: string | null;
  block: [number, number] | null;
}

/** What `fp8kit inspect` reports (the `--json` shape, version 1; see docs/REPORT.md). */
export interface InspectResult {
  schema: "fp8kit.inspect/1";
  path: string;
  architecture: ArchitectureSummary;
  sizes: SizeSummary;
  shards: number;
  layout: {
    kind: ReportLayoutKind;
    label: string;
    declared: string | null;
    scaleFmt: "float" | "ue8m0" | null;
    block: [number, number] | null;
    quantizedWeights: number;
    /** Scale storage: dtype -> number of quantized weights using it. */
    scaleDtypes: Record<string, number>;
    blocks: Record<string, number>;
  };
  /**
   * Ascend's msModelSlim / vllm-ascend layout, when `quant_model_description.json` is present: what
   * the description says (null when absent; `fp8kit lint` checks it against the tensors).
   */
  ascend: AscendLayoutSummary | null;
  compatibility: CompatEntry[];
  tensorParallel: TpSplitResult[];
  tensors: TensorRow[];
  /** Problems met reading headers, config and index (see `fp8kit lint` for the full check). */
  problems: Finding[];
}

/** The `ascend` section of `inspect`: the description file's globals and entries by type. */
export interface AscendLayoutSummary extends AscendDescriptionSummary {
  /** The description file (`quant_model_description.json`). */
  file: string;
  /** One line, e.g. "Ascend msModelSlim / vllm-ascend layout (quant_model_description.json: W8A8_DYNAMIC)". */
  label: string;
}

/** The Ascend section for a snapshot, or null without a description file. */
function ascendOf(s: Snapshot): AscendLayoutSummary | null {
  if (!s.files.includes(ASCEND_DESCRIPTION_FILE)) return null;
  const empty = {
    modelQuantType: null,
    version: null,
    groupSize: null,
    entries: 0,
    types: {},
    quantizedWeights: 0,
  };
  const d = summarizeAscendDescription(s.ascendDescription) ?? empty;
  const what = d.modelQuantType ?? "unreadable, see fp8kit lint";
  const label = `Ascend msModelSlim / vllm-ascend layout (${ASCEND_DESCRIPTION_FILE}: ${what})`;
  return { file: ASCEND_DESCRIPTION_FILE, label, ...d };
}

export interface InspectOptions {
  /** Tensor-name globs for the table (`*` stops at dots, `**` does not); all tensors when empty. */
  filter?: readonly string[];
  /** Name shown for the input in suggested commands. */
  path?: string;
}

/** The layout of a snapshot (config, hf_quant_config.json, the Ascend description and tensor headers). */
export function layoutOf(s: Snapshot): ReportLayout {
  return detectReportLayout(s.config, s.hfQuantConfig, s.tensors, s.ascendDescription);
}

/**
 * `fp8kit inspect`: reads config.json, the index and every shard header (never tensor data) and
 * describes the checkpoint: architecture, parameter count, bytes by dtype, quantized layout,
 * compatibility matrix, tensor-parallel splits and the tensor table. Throws an `Fp8kitError` when
 * there is nothing to inspect (no shards, config.json not JSON, a bad index).
 */
export async function inspectCheckpoint(
  dir: CheckpointDir,
  options: InspectOptions = {},
): Promise<InspectResult> {
  const s = throwIfFatal(await readSnapshot(dir));
  const layout = layoutOf(s);
  const path = options.path ?? s.name;
  // U8 containers of FP4 codes hold two parameters per byte; F4-dtype tensors already count elements.
  const packed = new Set(
    layout.quantized.filter((q) => q.packed && s.byName.get(q.data)?.dtype !== "F4").map((q) => q.data),
  );
  const byData = new Map(layout.quantized.map((q) => [q.data, q]));
  const scales = new Set(layout.quantized.map((q) => q.scale));
  const scaleDtypes: Record<string, number> = {};
  const blocks: Record<string, number> = {};
  for (const q of layout.quantized) {
    scaleDtypes[q.scaleDtype] = (scaleDtypes[q.scaleDtype] ?? 0) + 1;
    blocks[blockLabel(q.block)] = (blocks[blockLabel(q.block)] ?? 0) + 1;
  }
  const ascend = ascendOf(s);
  const filter = options.filter ?? [];
  const tensors: TensorRow[] = [];
  for (const t of s.tensors) {
    if (filter.length > 0 && !matchAny(t.name, filter)) continue;
    const q = byData.get(t.name);
    tensors.push({
      name: t.name,
      dtype: t.dtype,
      shape: [...t.shape],
      bytes: t.byteLength,
      shard: t.shard,
      role: q ? "weight" : scales.has(t.name) || isScaleTensor(t) ? "scale" : "plain",
      scale: q?.scale ?? null,
      block: q?.block ?? null,
    });
  }
  return {
    schema: "fp8kit.inspect/1",
    path,
    architecture: summarizeConfig(s.config),
    sizes: summarizeSizes(s.tensors, packed),
    shards: s.shards.length,
    layout: {
      kind: layout.kind,
      label: layout.label,
      declared: layout.declared,
      scaleFmt: layout.scaleFmt,
      block: layout.block,
      quantizedWeights: layout.quantized.length,
      scaleDtypes,
      blocks,
    },
    ascend,
    compatibility: compatibility(layout, path, undefined, {
      deepseekStyle: isDeepSeekStyle(s.config, s.tensors),
      ascend,
    }),
    tensorParallel: checkTpSplits(layout.quantized),
    tensors,
    problems: s.problems,
  };
}
