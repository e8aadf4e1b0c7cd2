import type { CheckpointDir } from "./checkpoint-dir.js";
import { countFindings, type Finding, finding } from "./findings.js";
import { layoutOf } from "./inspect.js";
import { quantizationConfig, type ReportLayout } from "./layout.js";
import { countBadScales, decodeScaleValues } from "./scale-values.js";
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
  /** Skip reading scale values (NaN/Inf/zero/negative checks): headers only. */
  headersOnly?: boolean;
  path?: string;
}

/**
 * `fp8kit lint`: the strict reader's rules on every shard header, the index against the shards in
 * both directions and its `total_size`, each quantized weight paired with exactly one scale of the
 * right grid, no orphan scales, config.json against the tensors, and (unless `headersOnly`) every
 * scale value finite and positive. Reads headers, config, index and the scale tensors only (scales
 * are about 1/16000 of a block-FP8 checkpoint); never weight data.
 */
export async function lintCheckpoint(dir: CheckpointDir, options: LintOptions = {}): Promise<LintResult> {
  const s = await readSnapshot(dir);
  const findings: Finding[] = [...s.problems];
  const layout = layoutOf(s);
  const shardOf = (t: string) => s.byName.get(t)?.shard ?? s.name;
  for (const p of layout.problems)
    findings.push(finding("error", p.code, shardOf(p.tensor), p.tensor, p.message, p.fix));
  for (const sh of s.shards) {
    if (sh.metadata?.format === undefined && sh.tensors.length > 0) {
      findings.push(
        finding(
          "warning",
          "metadata-format",
          sh.file,
          null,
          '__metadata__ has no "format" (some transformers versions fail to load it)',
          'rewrite the shard with __metadata__ {"format": "pt"}',
        ),
      );
    }
  }
  checkConfig(s, layout, findings);
  let scaleTensorsRead = 0;
  if (!options.headersOnly) scaleTensorsRead = await checkScaleValues(dir, s, layout, findings);
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

function checkConfig(s: Snapshot, layout: ReportLayout, out: Finding[]): void {
  if (s.config === null) {
    if (!s.problems.some((p) => p.file === "config.json")) {
      out.push(
        finding(
          "warning",
          "config-mismatch",
          "config.json",
          null,
          "no config.json: architecture and quantization are unknown to loaders",
          "copy config.json from the source model",
        ),
      );
    }
    return;
  }
  const qc = quantizationConfig(s.config);
  const quantized = layout.quantized.length > 0;
  if (qc && !quantized && s.hfQuantConfig === null) {
    out.push(
      finding(
        "error",
        "config-mismatch",
        "config.json",
        null,
        `quantization_config declares quant_method ${JSON.stringify(qc.quant_method)} but no quantized tensors were found`,
        "remove quantization_config (the weights are unquantized)",
      ),
    );
  }
  if (!qc && quantized && s.hfQuantConfig === null) {
    out.push(
      finding(
        "error",
        "config-mismatch",
        "config.json",
        null,
        `${layout.quantized.length} quantized weights but no quantization_config`,
        'add the quantization_config, e.g. {"quant_method":"fp8","weight_block_size":[128,128],"activation_scheme":"dynamic","fmt":"e4m3"}',
      ),
    );
  }
  const wbs = qc?.weight_block_size;
  if (
    qc &&
    wbs !== undefined &&
    !(Array.isArray(wbs) && wbs.length === 2 && wbs.every((x) => Number.isSafeInteger(x) && x > 0))
  ) {
    out.push(
      finding(
        "error",
        "config-mismatch",
        "config.json",
        null,
        `weight_block_size ${JSON.stringify(wbs)} is not two positive integers`,
        "set weight_block_size to [128, 128]",
      ),
    );
  }
  const skip = [qc?.modules_to_not_convert, qc?.ignored_layers, qc?.ignore].find(Array.isArray) as
    | unknown[]
    | undefined;
  if (skip) {
    const mods = skip.filter((m): m is string => typeof m === "string" && !m.startsWith("re:"));
    for (const q of layout.quantized) {
      const mod = q.name.replace(/\.weight$/, "");
      if (mods.some((m) => mod === m || mod.endsWith(`.${m}`))) {
        out.push(
          finding(
            "error",
            "config-mismatch",
            shardOf(s, q.data),
            q.data,
            "quantized, but its module is listed in modules_to_not_convert/ignore",
            "remove the module from the list, or dequantize the weight",
          ),
        );
      }
    }
  }
  const hidden = typeof s.config.hidden_size === "number" ? s.config.hidden_size : null;
  const vocab = typeof s.config.vocab_size === "number" ? s.config.vocab_size : null;
  const embed = s.tensors.find((t) => /(^|\.)embed_tokens\.weight$|(^|\.)wte\.weight$/.test(t.name));
  if (embed && embed.shape.length === 2) {
    if (vocab !== null && embed.shape[0] !== vocab) {
      out.push(
        finding(
          "error",
          "config-mismatch",
          embed.shard,
          embed.name,
          `embedding has ${embed.shape[0]} rows, config vocab_size is ${vocab}`,
          "use the config.json that belongs to these weights",
        ),
      );
    }
    if (hidden !== null && embed.shape[1] !== hidden) {
      out.push(
        finding(
          "error",
          "config-mismatch",
          embed.shard,
          embed.name,
          `embedding width ${embed.shape[1]}, config hidden_size is ${hidden}`,
          "use the config.json that belongs to these weights",
        ),
      );
    }
  }
  const layers = typeof s.config.num_hidden_layers === "number" ? s.config.num_hidden_layers : null;
  if (layers !== null) {
    const extra =
      typeof s.config.num_nextn_predict_layers === "number" ? s.config.num_nextn_predict_layers : 0;
    let maxLayer = -1;
    for (const t of s.tensors) {
      const m = /(?:^|\.)layers\.(\d+)\./.exec(t.name);
      if (m) maxLayer = Math.max(maxLayer, Number(m[1]));
    }
    if (maxLayer >= layers + extra) {
      out.push(
        finding(
          "warning",
          "config-mismatch",
          "config.json",
          null,
          `tensors go up to layer ${maxLayer}, config num_hidden_layers is ${layers}${extra ? ` (+${extra} MTP)` : ""}`,
          "use the config.json that belongs to these weights",
        ),
      );
    }
  }
}

function shardOf(s: Snapshot, tensor: string): string {
  return s.byName.get(tensor)?.shard ?? s.name;
}

async function checkScaleValues(
  dir: CheckpointDir,
  s: Snapshot,
  layout: ReportLayout,
  out: Finding[],
): Promise<number> {
  const byShard = new Map<string, string[]>();
  for (const q of layout.quantized) {
    const t = s.byName.get(q.scale);
    if (!t) continue;
    const list = byShard.get(t.shard) ?? [];
    list.push(q.scale);
    byShard.set(t.shard, list);
  }
  let read = 0;
  for (const [shard, names] of byShard) {
    let source: Awaited<ReturnType<CheckpointDir["open"]>> | null = null;
    try {
      source = await dir.open(shard);
      for (const name of names) {
        const t = s.byName.get(name)!;
        const values = decodeScaleValues(t.dtype, await source.read(t.fileOffsets[0], t.byteLength));
        read++;
        if (values === null) continue;
        const c = countBadScales(values);
        const what = (n: number, kind: string) =>
          `${n} of ${values.length} scales are ${kind} (first at flat index ${c.first})`;
        const fix = `recompute the scales of ${name.replace(/\.weight_scale(_inv)?$|_scales$/, "")} from the original weights`;
        if (c.nan) out.push(finding("error", "scale-nan", shard, name, what(c.nan, "NaN"), fix));
        if (c.inf) out.push(finding("error", "scale-inf", shard, name, what(c.inf, "infinite"), fix));
        if (c.negative)
          out.push(finding("error", "scale-negative", shard, name, what(c.negative, "negative"), fix));
        if (c.zero)
          out.push(
            finding(
              "error",
              "scale-zero",
              shard,
              name,
              what(c.zero, "zero (the block dequantizes to 0)"),
              fix,
            ),
          );
      }
    } catch (e) {
      out.push(
        finding(
          "error",
          "unreadable-file",
          shard,
          null,
          `cannot read scales (${(e as Error).message})`,
          "re-download or rewrite the shard",
        ),
      );
    } finally {
      await source?.close?.();
    }
  }
  return read;
}
