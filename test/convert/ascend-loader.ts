/**
 * Reads an output folder the way vllm-ascend loads a msModelSlim ("AscendV1") checkpoint
 * (../shared/docs/ASCEND.md §1.2-§1.4, §2, §2.3, §4.2), written from those facts and not from the
 * library's writer or its description checker, and returns every step that would fail there as a
 * message (an empty list: it would load). Tests assert on the list; nothing here throws for a bad
 * folder. Headers are read with the library's safetensors reader (headers only, no tensor data).
 *
 * The rules, with their upstream source (VA = vllm-project/vllm-ascend@182b75e):
 * - the description is exactly `quant_model_description.json` (VA modelslim_config.py:95); no other
 *   `quant_model_description*.json` (old versions glob `*quant_model_description.json` and refuse
 *   several; ASCEND.md §1.2);
 * - config.json has no `quantization_config` (it would win over the description, §1.4);
 * - every weight vLLM builds a Linear / Embedding / LMHead for is looked up as
 *   `quant_description[prefix + ".weight"]`, a KeyError when absent (modelslim_config.py:431-470):
 *   here every tensor named `*.weight` with at least two dimensions;
 * - fused modules share one type, else ValueError (modelslim_config.py:444-467,779-800): q_a_proj +
 *   kv_a_proj_with_mqa, gate_proj + up_proj, and the MoE layer (its type is expert 0's, and every
 *   expert is loaded into that scheme's parameters);
 * - W8A8_DYNAMIC parameters (w8a8_dynamic.py:51-83,198-222): weight I8 `[out, in]`, weight_scale and
 *   weight_offset `[out, 1]` (vLLM's loaders assert equal shapes: a 1-D `[out]` scale fails);
 *   W4A8_DYNAMIC, MoE only (w4a8.py:52-66,142-195): weight I8 `[out / 2, in]`, weight_scale and
 *   weight_offset `[out, 1]`, scale_bias `[out, 1]` or `[out, 16]`, group_size 0;
 * - kv_b_proj is unquantized (mla_v1.py:908-909); embeddings and heads are FLOAT
 *   (`UnquantizedEmbeddingMethod`, modelslim_config.py:766-772);
 * - a checkpoint tensor with no parameter to go to is a KeyError in vLLM's DeepSeek `load_weights`
 *   (a leftover `weight_scale_inv`, a `weight_scale` of a FLOAT layer; §2.3);
 * - shards: every `*.safetensors` is loaded unless an index filters them, so every tensor of the
 *   shards must be in the index and every indexed tensor in its shard (weight_utils.py, §1.1).
 * Leading dimensions (stacked experts `[E, out, in]`) carry through to the scales (`[E, out, 1]`).
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { SafetensorsFile } from "../../src/safetensors/index.js";
import { NodeFileSource } from "../../src/safetensors/node.js";

export const DESCRIPTION = "quant_model_description.json";

/** Keys of the description that are not tensors (msModelSlim's globals, those vllm-ascend reads). */
const GLOBAL_KEYS = new Set([
  "version",
  "model_quant_type",
  "group_size",
  "metadata",
  "optional",
  "kv_cache_type",
  "kv_quant_type",
  "fa_quant_type",
  "reduce_quant_type",
  "indexer_quant_type",
]);

const FLOAT_DTYPES = new Set(["BF16", "F16", "F32"]);

interface Entry {
  dtype: string;
  shape: number[];
  shard: string;
}

const same = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((v, i) => v === b[i]);
const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, "utf8"));
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Every tensor of every shard vLLM would open (headers only), and the failures found doing it. */
async function readShards(dir: string, files: string[], failures: string[]): Promise<Map<string, Entry>> {
  const tensors = new Map<string, Entry>();
  for (const f of files.filter((n) => n.endsWith(".safetensors") && !n.startsWith("."))) {
    const st = await SafetensorsFile.open(await NodeFileSource.open(join(dir, f)));
    try {
      for (const t of st.header.tensors) {
        const prev = tensors.get(t.name);
        if (prev) failures.push(`${t.name}: in two shards, ${prev.shard} and ${f}`);
        tensors.set(t.name, { dtype: t.dtype, shape: t.shape, shard: f });
      }
    } finally {
      await st.close();
    }
  }
  return tensors;
}

/** Every index's weight_map against the shards' tensors, both ways. */
async function checkIndexes(
  dir: string,
  files: string[],
  tensors: Map<string, Entry>,
  failures: string[],
): Promise<void> {
  for (const f of files.filter((n) => n.endsWith(".safetensors.index.json"))) {
    const index = await readJson(join(dir, f));
    const map = isObject(index) && isObject(index.weight_map) ? index.weight_map : null;
    if (map === null) {
      failures.push(`${f}: no weight_map object`);
      continue;
    }
    for (const [name, shard] of Object.entries(map)) {
      const t = tensors.get(name);
      if (!t) failures.push(`${f}: "${name}" is indexed in ${String(shard)} but no shard holds it`);
      else if (t.shard !== shard)
        failures.push(`${f}: "${name}" is indexed in ${String(shard)}, found in ${t.shard}`);
    }
    for (const [name, t] of tensors)
      if (!(name in map)) failures.push(`${f}: "${name}" (in ${t.shard}) is not in the index, vLLM skips it`);
  }
}

/** The module prefix of a `.weight` tensor. */
const moduleOf = (name: string) => name.slice(0, -".weight".length);
const isEmbeddingOrHead = (p: string) => /(^|\.)(embed_tokens|lm_head|shared_head\.head)$/.test(p);
const isRoutedExpert = (p: string) =>
  /\.mlp\.experts\.(\d+\.)?(gate_proj|up_proj|down_proj|gate_up_proj)$/.test(p);

/** The parameters of one described Linear: shapes and dtypes as vllm-ascend allocates them. */
function checkLinear(
  p: string,
  type: string,
  tensors: Map<string, Entry>,
  description: Record<string, unknown>,
  failures: string[],
): void {
  const w = tensors.get(`${p}.weight`)!;
  const extra = [".weight_scale", ".weight_offset", ".scale_bias", ".weight_scale_second", ".input_scale"];
  if (type === "FLOAT") {
    if (!FLOAT_DTYPES.has(w.dtype)) failures.push(`${p}.weight: described FLOAT but stored ${w.dtype}`);
    for (const s of extra)
      if (tensors.has(`${p}${s}`)) failures.push(`${p}${s}: a FLOAT layer has no such parameter (KeyError)`);
    return;
  }
  if (type === "W8A8_MXFP8") {
    // w8a8_mxfp8.py:42-77: weight float8_e4m3fn [out, in], weight_scale uint8 [out, ceil(in / group_size)].
    const s = tensors.get(`${p}.weight_scale`);
    const g = description.group_size;
    const group = typeof g === "number" ? g : 32;
    if (w.dtype !== "F8_E4M3") failures.push(`${p}.weight: W8A8_MXFP8 weight is ${w.dtype}, not F8_E4M3`);
    const want = [...w.shape.slice(0, -1), Math.ceil(w.shape[w.shape.length - 1] / group)];
    if (s?.dtype !== "U8" || s.shape.join() !== want.join())
      failures.push(
        `${p}.weight_scale: W8A8_MXFP8 needs U8 [${want}], got ${s ? `${s.dtype} [${s.shape}]` : "none"}`,
      );
    if (/\.kv_b_proj$/.test(p))
      failures.push(`${p}.weight: kv_b_proj must be unquantized (FLOAT), is ${type}`);
    return;
  }
  if (type !== "W8A8_DYNAMIC" && type !== "W4A8_DYNAMIC") {
    failures.push(`${p}.weight: type ${JSON.stringify(type)} is not one this converter writes`);
    return;
  }
  if (/\.kv_b_proj$/.test(p)) failures.push(`${p}.weight: kv_b_proj must be unquantized (FLOAT), is ${type}`);
  if (isEmbeddingOrHead(p)) failures.push(`${p}.weight: an embedding / head must be FLOAT, is ${type}`);
  if (/\.mlp\.gate$/.test(p)) failures.push(`${p}.weight: the router gate is built unquantized, is ${type}`);
  const int4 = type === "W4A8_DYNAMIC";
  if (int4 && !isRoutedExpert(p))
    failures.push(`${p}.weight: W4A8_DYNAMIC is registered for MoE experts only (NotImplementedError)`);
  if (w.dtype !== "I8") failures.push(`${p}.weight: ${type} weight must be I8, is ${w.dtype}`);
  if (w.shape.length < 2) {
    failures.push(`${p}.weight: ${type} weight must be [out, in], is ${fmt(w.shape)}`);
    return;
  }
  const lead = w.shape.slice(0, -2);
  const out = w.shape[w.shape.length - 2] * (int4 ? 2 : 1);
  const params: [string, number[][]][] = [
    [".weight_scale", [[...lead, out, 1]]],
    [".weight_offset", [[...lead, out, 1]]],
  ];
  if (int4)
    params.push([
      ".scale_bias",
      [
        [...lead, out, 1],
        [...lead, out, 16],
      ],
    ]);
  for (const [suffix, shapes] of params) {
    const name = `${p}${suffix}`;
    const t = tensors.get(name);
    if (!t) {
      failures.push(`${name}: missing (${type} allocates it)`);
      continue;
    }
    if (t.dtype !== "F32") failures.push(`${name}: must be F32, is ${t.dtype}`);
    if (!shapes.some((s) => same(s, t.shape)))
      failures.push(`${name}: shape ${fmt(t.shape)}, vllm-ascend allocates ${shapes.map(fmt).join(" or ")}`);
    if (description[name] !== type)
      failures.push(`${name}: described ${JSON.stringify(description[name])}, its weight ${type}`);
  }
  if (!int4 && tensors.has(`${p}.scale_bias`))
    failures.push(`${p}.scale_bias: W8A8_DYNAMIC has no scale_bias`);
}

/** Types of the members of each fused module, which must agree. */
function checkFused(weights: Map<string, string>, failures: string[]): void {
  const typeOf = (p: string) => weights.get(p);
  const agree = (what: string, members: string[]) => {
    const present = members.filter((m) => typeOf(m) !== undefined);
    const types = new Set(present.map(typeOf));
    if (types.size > 1)
      failures.push(
        `${what}: fused members have different types (${present.map((m) => `${m}=${typeOf(m)}`).join(", ")})`,
      );
  };
  for (const p of weights.keys()) {
    let m = /^(.*\.self_attn)\.q_a_proj$/.exec(p);
    if (m) agree(`${m[1]}.fused_qkv_a_proj`, [p, `${m[1]}.kv_a_proj_with_mqa`]);
    m = /^(.*)\.gate_proj$/.exec(p);
    if (m) agree(`${m[1]}.gate_up_proj`, [p, `${m[1]}.up_proj`]);
  }
  // MoE layers: per-expert modules take expert 0's scheme; stacked ones share one too.
  const moe = new Map<string, string[]>();
  for (const p of weights.keys()) {
    const m = /^(.*\.mlp\.experts)\.(?:\d+\.)?(?:gate_proj|up_proj|down_proj|gate_up_proj)$/.exec(p);
    if (m) moe.set(m[1], [...(moe.get(m[1]) ?? []), p]);
  }
  for (const [layer, members] of moe) {
    const perExpert = members.filter((p) => /\.experts\.\d+\./.test(p));
    if (perExpert.length > 0) {
      const zero = ["gate_proj", "up_proj", "down_proj"].map((k) => `${layer}.0.${k}`);
      for (const z of zero)
        if (!weights.has(z))
          failures.push(`${z}.weight: KeyError (the MoE layer's scheme is read from expert 0)`);
      agree(`${layer} (expert 0)`, zero);
      const scheme = typeOf(zero[0]);
      for (const p of perExpert)
        if (scheme !== undefined && typeOf(p) !== scheme)
          failures.push(`${p}.weight: ${typeOf(p)}, but the MoE layer ${layer} is ${scheme} (expert 0)`);
    }
    agree(
      layer,
      members.filter((p) => !/\.experts\.\d+\./.test(p)),
    );
  }
}

/**
 * What fails when vllm-ascend loads the folder `dir` (see the file header); empty when nothing does.
 */
export async function ascendLoadFailures(dir: string): Promise<string[]> {
  const failures: string[] = [];
  const files = await readdir(dir);
  for (const f of files)
    if (f !== DESCRIPTION && (/^quant_model_description.*\.json$/.test(f) || f.endsWith(DESCRIPTION)))
      failures.push(
        `${f}: a second description file (only ${DESCRIPTION} is read; old versions refuse several)`,
      );
  let description: Record<string, unknown> = {};
  if (!files.includes(DESCRIPTION))
    failures.push(`${DESCRIPTION}: missing (vllm-ascend requires this exact name)`);
  else {
    const d = await readJson(join(dir, DESCRIPTION));
    if (isObject(d)) description = d;
    else failures.push(`${DESCRIPTION}: not a JSON object`);
  }
  if (!files.includes("config.json")) failures.push("config.json: missing");
  else {
    const config = await readJson(join(dir, "config.json"));
    if (!isObject(config)) failures.push("config.json: not a JSON object");
    else {
      if ("quantization_config" in config)
        failures.push("config.json: has quantization_config (it would be used instead of the description)");
      if (isObject(config.text_config) && "quantization_config" in config.text_config)
        failures.push("config.json: text_config has quantization_config");
    }
  }
  const groupSize = description.group_size;
  const tensors = await readShards(dir, files, failures);
  await checkIndexes(dir, files, tensors, failures);

  for (const [name, t] of tensors) {
    if (name.endsWith(".weight_scale_inv"))
      failures.push(`${name}: an FP8 scale left in the output (KeyError)`);
    // FP8 is for Ascend 950's W8A8_MXFP8 only (vllm-ascend: "for A2/A3 it's a no go").
    if (t.dtype.startsWith("F8_") && description[name] !== "W8A8_MXFP8")
      failures.push(`${name}: ${t.dtype} (Ascend 910B/910C have no FP8)`);
    if (!(name in description)) {
      if (name.endsWith(".weight") && t.shape.length >= 2)
        failures.push(`KeyError: '${name}' (no description entry)`);
      else failures.push(`${name}: no description entry`);
    }
  }
  for (const key of Object.keys(description))
    if (!GLOBAL_KEYS.has(key) && !tensors.has(key))
      failures.push(`${DESCRIPTION}: describes "${key}", no shard holds it`);

  const weights = new Map<string, string>();
  for (const [name, t] of tensors) {
    if (!name.endsWith(".weight") || t.shape.length < 2 || !(name in description)) continue;
    const type = description[name];
    const p = moduleOf(name);
    if (typeof type !== "string") {
      failures.push(`${name}: description entry is not a string`);
      continue;
    }
    weights.set(p, type);
    checkLinear(p, type, tensors, description, failures);
    if (type === "W4A8_DYNAMIC" && groupSize !== undefined && groupSize !== 0)
      failures.push(`${DESCRIPTION}: group_size ${JSON.stringify(groupSize)} (W4A8_DYNAMIC needs 0)`);
  }
  checkFused(weights, failures);
  return [...new Set(failures)];
}
