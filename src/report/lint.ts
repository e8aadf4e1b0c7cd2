import { ASCEND_DESCRIPTION_FILE, checkAscendDescription, quantizationConfig } from "../checkpoint/index.js";
import type { CheckpointDir } from "../safetensors/index.js";
import { countFindings, type Finding, finding } from "./findings.js";
import { layoutOf } from "./inspect.js";
import type { ReportLayout, ReportQuantizedWeight } from "./layout.js";
import { readWeightScales } from "./scale-values.js";
import { ShardSources } from "./shard-sources.js";
import { readSnapshot, type Snapshot } from "./snapshot.js";

/** What `fp8kit lint` reports (the `--json` shape, version 1; see docs/REPORT.md). */
export interface LintResult {
  schema: "fp8kit.lint/1";
  path: string;
  /** True when there are no error findings (warnings allowed). */
  ok: boolean;
  errors: number;
  warnings: number;
  checked: { shards: number; tensors: number; quantizedWeights: number; scaleTensorsRead: number };
  findings: Finding[];
}

export interface LintOptions {
  /** Skip reading scale values (NaN/Inf/zero/negative/overflow/subnormal checks): headers only. */
  headersOnly?: boolean;
  path?: string;
}

/**
 * `fp8kit lint`: the strict reader's rules on every shard header, the index against the shards in
 * both directions and its `total_size`, each quantized weight paired with exactly one scale of the
 * right grid, no orphan scales, config.json against the tensors, and (unless `headersOnly`) every
 * scale value usable (`checkScales` of the quant layer: finite, positive, no overflow; subnormals
 * are a warning), the same classification `audit` reports and `convert` refuses on. Reads headers, config, index and the scale tensors only (scales
 * are about 1/16000 of a block-FP8 checkpoint); never weight data. With Ascend's
 * quant_model_description.json present, also that file against the tensors and config.json
 * (`checkAscendDescription`: what vllm-ascend needs to load them).
 */
export async function lintCheckpoint(dir: CheckpointDir, options: LintOptions = {}): Promise<LintResult> {
  const s = await readSnapshot(dir);
  const findings: Finding[] = [...s.problems];
  const layout = layoutOf(s);
  for (const p of layout.problems)
    findings.push(finding("error", p.code, shardOf(s, p.tensor), p.tensor, p.message, p.fix));
  const noFormat = '__metadata__ has no "format" (some transformers versions fail to load it)';
  const noFormatFix = 'rewrite the shard with __metadata__ {"format": "pt"}';
  for (const sh of s.shards.filter((sh) => sh.metadata?.format === undefined && sh.tensors.length > 0))
    findings.push(finding("warning", "metadata-format", sh.file, null, noFormat, noFormatFix));
  findings.push(...checkConfig(s, layout));
  findings.push(...checkDescription(s, findings));
  const scaleTensorsRead = options.headersOnly ? 0 : await checkScaleValues(dir, s, layout, findings);
  const { errors, warnings } = countFindings(findings);
  return {
    schema: "fp8kit.lint/1",
    path: options.path ?? s.name,
    ok: errors === 0,
    errors,
    warnings,
    checked: {
      shards: s.shards.length,
      tensors: s.tensors.length,
      quantizedWeights: layout.quantized.length,
      scaleTensorsRead,
    },
    findings,
  };
}

type Config = Record<string, unknown>;

/** A `config-mismatch` finding (about config.json itself unless a tensor is named). */
const mismatch = (
  severity: Finding["severity"],
  message: string,
  fix: string,
  file = "config.json",
  tensor: string | null = null,
) => finding(severity, "config-mismatch", file, tensor, message, fix);

const USE_MATCHING_CONFIG = "use the config.json that belongs to these weights";

/** config.json against the tensors, one check per concern of the config. */
function checkConfig(s: Snapshot, layout: ReportLayout): Finding[] {
  if (s.config === null) return missingConfig(s);
  const qc = quantizationConfig(s.config);
  return [
    ...declaredQuantization(s, layout, qc),
    ...blockSize(qc),
    ...modulesNotToConvert(s, layout, qc),
    ...embeddingShape(s, s.config),
    ...layerCount(s, s.config),
  ];
}

/** No config.json at all (a warning unless reading it already failed). */
function missingConfig(s: Snapshot): Finding[] {
  if (s.problems.some((p) => p.file === "config.json")) return [];
  const message = "no config.json: architecture and quantization are unknown to loaders";
  return [mismatch("warning", message, "copy config.json from the source model")];
}

/**
 * quantization_config present exactly when there are quantized tensors (ModelOpt's
 * hf_quant_config.json may declare the quantization instead).
 */
function declaredQuantization(s: Snapshot, layout: ReportLayout, qc: Config | null): Finding[] {
  // Ascend's description declares the quantization (and forbids a quantization_config: checkDescription).
  if (s.hfQuantConfig !== null || s.files.includes(ASCEND_DESCRIPTION_FILE)) return [];
  const quantized = layout.quantized.length > 0;
  if (qc && !quantized) {
    const message = `quantization_config declares quant_method ${JSON.stringify(qc.quant_method)} but no quantized tensors were found`;
    return [mismatch("error", message, "remove quantization_config (the weights are unquantized)")];
  }
  if (!qc && quantized) {
    const message = `${layout.quantized.length} quantized weights but no quantization_config`;
    const fix =
      'add the quantization_config, e.g. {"quant_method":"fp8","weight_block_size":[128,128],"activation_scheme":"dynamic","fmt":"e4m3"}';
    return [mismatch("error", message, fix)];
  }
  return [];
}

/** weight_block_size, when given, is two positive integers. */
function blockSize(qc: Config | null): Finding[] {
  const wbs = qc?.weight_block_size;
  if (wbs === undefined) return [];
  if (Array.isArray(wbs) && wbs.length === 2 && wbs.every((x) => Number.isSafeInteger(x) && x > 0)) return [];
  const message = `weight_block_size ${JSON.stringify(wbs)} is not two positive integers`;
  return [mismatch("error", message, "set weight_block_size to [128, 128]")];
}

/**
 * No quantized weight belongs to a module the config says stays unquantized
 * (`modules_to_not_convert`, vLLM's `ignored_layers`, compressed-tensors' `ignore`; `re:`
 * patterns are not checked).
 */
function modulesNotToConvert(s: Snapshot, layout: ReportLayout, qc: Config | null): Finding[] {
  const skip: unknown[] | undefined = [qc?.modules_to_not_convert, qc?.ignored_layers, qc?.ignore].find(
    Array.isArray,
  );
  if (!skip) return [];
  const mods = skip.filter((m): m is string => typeof m === "string" && !m.startsWith("re:"));
  const listed = (mod: string) => mods.some((m) => mod === m || mod.endsWith(`.${m}`));
  const what = "quantized, but its module is listed in modules_to_not_convert/ignore";
  const fix = "remove the module from the list, or dequantize the weight";
  return layout.quantized
    .filter((q) => listed(q.name.replace(/\.weight$/, "")))
    .map((q) => mismatch("error", what, fix, shardOf(s, q.data), q.data));
}

/** The embedding matrix is [vocab_size, hidden_size]. */
function embeddingShape(s: Snapshot, config: Config): Finding[] {
  const embed = s.tensors.find((t) => /(^|\.)embed_tokens\.weight$|(^|\.)wte\.weight$/.test(t.name));
  if (embed?.shape.length !== 2) return [];
  const out: Finding[] = [];
  const [rows, width] = embed.shape;
  if (typeof config.vocab_size === "number" && rows !== config.vocab_size) {
    const message = `embedding has ${rows} rows, config vocab_size is ${config.vocab_size}`;
    out.push(mismatch("error", message, USE_MATCHING_CONFIG, embed.shard, embed.name));
  }
  if (typeof config.hidden_size === "number" && width !== config.hidden_size) {
    const message = `embedding width ${width}, config hidden_size is ${config.hidden_size}`;
    out.push(mismatch("error", message, USE_MATCHING_CONFIG, embed.shard, embed.name));
  }
  return out;
}

/** No tensor of a layer beyond num_hidden_layers (+ DeepSeek's num_nextn_predict_layers MTP layers). */
function layerCount(s: Snapshot, config: Config): Finding[] {
  const layers = config.num_hidden_layers;
  if (typeof layers !== "number") return [];
  const extra = typeof config.num_nextn_predict_layers === "number" ? config.num_nextn_predict_layers : 0;
  let maxLayer = -1;
  for (const t of s.tensors) {
    const m = /(?:^|\.)layers\.(\d+)\./.exec(t.name);
    if (m) maxLayer = Math.max(maxLayer, Number(m[1]));
  }
  if (maxLayer < layers + extra) return [];
  const message = `tensors go up to layer ${maxLayer}, config num_hidden_layers is ${layers}${extra ? ` (+${extra} MTP)` : ""}`;
  return [mismatch("warning", message, USE_MATCHING_CONFIG)];
}

/**
 * Ascend's description against the tensors and config.json, when the file is present (one that
 * could not be parsed is already a `bad-description` problem). A leftover `weight_scale_inv` that
 * detection already reported is not reported twice.
 */
function checkDescription(s: Snapshot, found: readonly Finding[]): Finding[] {
  if (s.ascendDescription === null) return [];
  const known = new Set(found.filter((f) => f.tensor !== null).map((f) => `${f.code}|${f.tensor}`));
  return checkAscendDescription(s.ascendDescription, s.tensors, s.config)
    .filter((p) => !(p.code === "orphan-scale" && known.has(`${p.code}|${p.tensor}`)))
    .map((p) =>
      finding(
        p.severity,
        p.code,
        p.file ?? (p.tensor !== null ? shardOf(s, p.tensor) : s.name),
        p.tensor,
        p.message,
        p.fix,
      ),
    );
}

function shardOf(s: Snapshot, tensor: string): string {
  return s.byName.get(tensor)?.shard ?? s.name;
}

/** Reads every quantized weight's scales, shard by shard, and adds their findings to `out`. */
async function checkScaleValues(
  dir: CheckpointDir,
  s: Snapshot,
  layout: ReportLayout,
  out: Finding[],
): Promise<number> {
  const byShard = new Map<string, ReportQuantizedWeight[]>();
  for (const q of layout.quantized) {
    const t = s.byName.get(q.scale);
    if (!t) continue;
    if (!byShard.has(t.shard)) byShard.set(t.shard, []);
    byShard.get(t.shard)!.push(q);
  }
  const sources = new ShardSources(dir);
  let read = 0;
  for (const [shard, weights] of byShard) {
    try {
      for (const q of weights) {
        const r = await readWeightScales(q, s, sources);
        read += r.read;
        out.push(...r.findings);
      }
    } catch (e) {
      const message = `cannot read scales (${(e as Error).message})`;
      out.push(finding("error", "unreadable-file", shard, null, message, "re-download or rewrite the shard"));
    } finally {
      await sources.closeAll();
    }
  }
  return read;
}
