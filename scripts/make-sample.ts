/**
 * Makes the bundled sample checkpoint `sample/deepseek-v3-tiny/` (run: `npx tsx scripts/make-sample.ts`)
 * and, as a library, DeepSeek-layout checkpoints of any size for tests and benchmarks.
 *
 * The layout is the real DeepSeek-V3 FP8 release's: `config.json` with the real `quantization_config`
 * (`quant_method: "fp8"`, `weight_block_size: [128, 128]`, no `scale_fmt`), the real tensor names,
 * F8_E4M3 weights + F32 `weight_scale_inv` for the attention projections and every MLP, BF16
 * embeddings / head / norms / router, F32 `e_score_correction_bias`, the MTP layer at index
 * `num_hidden_layers` with `enorm` / `hnorm` / `eh_proj` / `shared_head`. Weights are Student-t
 * (nu = 4) with a few outlier input channels, quantized per 128x128 block as DeepSeek does
 * (`scale_inv = amax / 448`, float scales). Deterministic: a fixed-seed mulberry32 generator.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { seededUniform } from "../src/formats/prng.js";
import { encodeBand } from "../src/quant/kernels/encode-band.js";
import type { Dtype, TensorDescriptor } from "../src/safetensors/index.js";
import { writeShardedCheckpoint } from "../src/safetensors/node.js";

export interface SampleDims {
  vocab: number;
  hidden: number;
  qLoraRank: number;
  kvLoraRank: number;
  heads: number;
  qkNope: number;
  qkRope: number;
  vHead: number;
  intermediate: number;
  moeIntermediate: number;
  routedExperts: number;
  layers: number;
  firstDense: number;
}

/** The bundled sample: partial 128-blocks in rows (576 = 512 + 64) and columns (704, 192). */
export const TINY: SampleDims = {
  vocab: 512,
  hidden: 384,
  qLoraRank: 384,
  kvLoraRank: 512,
  heads: 4,
  qkNope: 64,
  qkRope: 64,
  vHead: 64,
  intermediate: 704,
  moeIntermediate: 192,
  routedExperts: 4,
  layers: 2,
  firstDense: 1,
};

interface Spec {
  name: string;
  shape: number[];
  kind: "fp8" | "bf16" | "norm" | "f32bias";
}

/** Every tensor of a DeepSeek-V3-layout model with `dims`, in model order. */
export function deepseekTensorSpecs(d: SampleDims): Spec[] {
  const s: Spec[] = [];
  const lin = (name: string, out: number, inp: number) =>
    s.push({ name: `${name}.weight`, shape: [out, inp], kind: "fp8" });
  s.push({ name: "model.embed_tokens.weight", shape: [d.vocab, d.hidden], kind: "bf16" });
  const layer = (i: number) => {
    const p = `model.layers.${i}`;
    s.push({ name: `${p}.input_layernorm.weight`, shape: [d.hidden], kind: "norm" });
    s.push({ name: `${p}.post_attention_layernorm.weight`, shape: [d.hidden], kind: "norm" });
    lin(`${p}.self_attn.q_a_proj`, d.qLoraRank, d.hidden);
    s.push({ name: `${p}.self_attn.q_a_layernorm.weight`, shape: [d.qLoraRank], kind: "norm" });
    lin(`${p}.self_attn.q_b_proj`, d.heads * (d.qkNope + d.qkRope), d.qLoraRank);
    lin(`${p}.self_attn.kv_a_proj_with_mqa`, d.kvLoraRank + d.qkRope, d.hidden);
    s.push({ name: `${p}.self_attn.kv_a_layernorm.weight`, shape: [d.kvLoraRank], kind: "norm" });
    lin(`${p}.self_attn.kv_b_proj`, d.heads * (d.qkNope + d.vHead), d.kvLoraRank);
    lin(`${p}.self_attn.o_proj`, d.hidden, d.heads * d.vHead);
    if (i < d.firstDense) {
      lin(`${p}.mlp.gate_proj`, d.intermediate, d.hidden);
      lin(`${p}.mlp.up_proj`, d.intermediate, d.hidden);
      lin(`${p}.mlp.down_proj`, d.hidden, d.intermediate);
    } else {
      s.push({ name: `${p}.mlp.gate.weight`, shape: [d.routedExperts, d.hidden], kind: "bf16" });
      s.push({ name: `${p}.mlp.gate.e_score_correction_bias`, shape: [d.routedExperts], kind: "f32bias" });
      for (let e = 0; e < d.routedExperts; e++) {
        lin(`${p}.mlp.experts.${e}.gate_proj`, d.moeIntermediate, d.hidden);
        lin(`${p}.mlp.experts.${e}.up_proj`, d.moeIntermediate, d.hidden);
        lin(`${p}.mlp.experts.${e}.down_proj`, d.hidden, d.moeIntermediate);
      }
      lin(`${p}.mlp.shared_experts.gate_proj`, d.moeIntermediate, d.hidden);
      lin(`${p}.mlp.shared_experts.up_proj`, d.moeIntermediate, d.hidden);
      lin(`${p}.mlp.shared_experts.down_proj`, d.hidden, d.moeIntermediate);
    }
  };
  for (let i = 0; i < d.layers; i++) layer(i);
  // MTP layer (num_nextn_predict_layers = 1) at index num_hidden_layers.
  const m = `model.layers.${d.layers}`;
  s.push({ name: `${m}.embed_tokens.weight`, shape: [d.vocab, d.hidden], kind: "bf16" });
  s.push({ name: `${m}.enorm.weight`, shape: [d.hidden], kind: "norm" });
  s.push({ name: `${m}.hnorm.weight`, shape: [d.hidden], kind: "norm" });
  s.push({ name: `${m}.eh_proj.weight`, shape: [d.hidden, 2 * d.hidden], kind: "bf16" });
  layer(d.layers);
  s.push({ name: `${m}.shared_head.norm.weight`, shape: [d.hidden], kind: "norm" });
  s.push({ name: `${m}.shared_head.head.weight`, shape: [d.vocab, d.hidden], kind: "bf16" });
  s.push({ name: "model.norm.weight", shape: [d.hidden], kind: "norm" });
  s.push({ name: "lm_head.weight", shape: [d.vocab, d.hidden], kind: "bf16" });
  return s;
}

/** Student-t (nu = 4) values scaled to `std`-ish, with a few outlier input channels (x 8..32). */
export function heavyTailed(rand: () => number, rows: number, cols: number, std = 0.02): Float32Array {
  const out = new Float32Array(rows * cols);
  const nu = 4;
  const normal = () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  const outliers = new Map<number, number>();
  const nOut = Math.max(1, Math.floor(cols / 128));
  for (let k = 0; k < nOut; k++) outliers.set(Math.floor(rand() * cols), 8 + 24 * rand());
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let chi = 0;
      for (let k = 0; k < nu; k++) {
        const z = normal();
        chi += z * z;
      }
      const t = normal() / Math.sqrt(chi / nu);
      out[r * cols + c] = t * std * (outliers.get(c) ?? 1) * 0.7;
    }
  }
  return out;
}

function bf16Bytes(x: Float32Array): Uint8Array {
  return encodeBand({ kind: "plain", dtype: "BF16" }, x, 1, x.length).data;
}

export function deepseekConfig(d: SampleDims, quantized: boolean): Record<string, unknown> {
  const c: Record<string, unknown> = {
    architectures: ["DeepseekV3ForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 0,
    eos_token_id: 1,
    ep_size: 1,
    first_k_dense_replace: d.firstDense,
    hidden_act: "silu",
    hidden_size: d.hidden,
    initializer_range: 0.02,
    intermediate_size: d.intermediate,
    kv_lora_rank: d.kvLoraRank,
    max_position_embeddings: 4096,
    model_type: "deepseek_v3",
    moe_intermediate_size: d.moeIntermediate,
    moe_layer_freq: 1,
    n_group: 1,
    n_routed_experts: d.routedExperts,
    n_shared_experts: 1,
    norm_topk_prob: true,
    num_attention_heads: d.heads,
    num_experts_per_tok: 2,
    num_hidden_layers: d.layers,
    num_key_value_heads: d.heads,
    num_nextn_predict_layers: 1,
    q_lora_rank: d.qLoraRank,
    qk_nope_head_dim: d.qkNope,
    qk_rope_head_dim: d.qkRope,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    routed_scaling_factor: 2.5,
    scoring_func: "sigmoid",
    tie_word_embeddings: false,
    topk_group: 1,
    topk_method: "noaux_tc",
    torch_dtype: "bfloat16",
    transformers_version: "4.46.3",
    use_cache: true,
    v_head_dim: d.vHead,
    vocab_size: d.vocab,
  };
  if (quantized) {
    c.quantization_config = {
      activation_scheme: "dynamic",
      fmt: "e4m3",
      quant_method: "fp8",
      weight_block_size: [128, 128],
    };
  }
  return c;
}

export interface MakeOptions {
  dims?: SampleDims;
  /** `fp8` (DeepSeek release layout, default) or `bf16` (the unquantized model). */
  format?: "fp8" | "bf16";
  maxShardSize?: number | string;
  seed?: number;
  /** Faster, less realistic values (for multi-GB benchmark checkpoints): a repeated pool of t-samples. */
  fast?: boolean;
}

/** Write a DeepSeek-layout checkpoint directory at `dir` (replacing it). */
export async function makeDeepseekCheckpoint(dir: string, options: MakeOptions = {}): Promise<void> {
  const d = options.dims ?? TINY;
  const fp8 = (options.format ?? "fp8") === "fp8";
  const rand = seededUniform(options.seed ?? 20251129);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const specs = deepseekTensorSpecs(d);
  const descs: TensorDescriptor[] = [];
  const bySpec = new Map<string, Spec>();
  for (const s of specs) {
    const dtype: Dtype = s.kind === "f32bias" ? "F32" : s.kind === "fp8" && fp8 ? "F8_E4M3" : "BF16";
    descs.push({ name: s.name, dtype, shape: s.shape });
    bySpec.set(s.name, s);
    if (s.kind === "fp8" && fp8) {
      descs.push({
        name: `${s.name}_scale_inv`,
        dtype: "F32",
        shape: [Math.ceil(s.shape[0] / 128), Math.ceil(s.shape[1] / 128)],
      });
    }
  }
  const pool = options.fast ? heavyTailed(rand, 1, 1 << 20) : null;
  let poolAt = 0;
  const values = (rows: number, cols: number, std?: number) => {
    if (!pool) return heavyTailed(rand, rows, cols, std);
    const out = new Float32Array(rows * cols);
    for (let i = 0; i < out.length; i++) out[i] = pool[(poolAt + i * 7) & (pool.length - 1)];
    poolAt = (poolAt + 104729) & (pool.length - 1);
    return out;
  };
  // A weight and its scale come out of one quantization; whichever the writer asks for first
  // (layout order puts F32 scales before F8 data) computes both and keeps the other.
  const pending = new Map<string, { data: Uint8Array; scale: Uint8Array }>();
  const quantized = (base: string) => {
    let q = pending.get(base);
    if (q) {
      pending.delete(base);
      return q;
    }
    const [rows, cols] = bySpec.get(base)!.shape;
    const enc = encodeBand(
      { kind: "fp8-block", block: [128, 128], scaleFmt: "float", scaleDtype: "F32" },
      values(rows, cols),
      rows,
      cols,
    );
    q = { data: enc.data, scale: enc.scale! };
    pending.set(base, q);
    return q;
  };
  await writeShardedCheckpoint(
    dir,
    descs,
    (info) => {
      if (info.name.endsWith("_scale_inv")) return quantized(info.name.slice(0, -"_scale_inv".length)).scale;
      const s = bySpec.get(info.name)!;
      const [rows, cols] = s.shape.length === 2 ? s.shape : [1, s.shape[0]];
      if (s.kind === "norm")
        return bf16Bytes(Float32Array.from({ length: cols }, () => 1 + 0.1 * (rand() - 0.5)));
      if (s.kind === "f32bias")
        return new Uint8Array(Float32Array.from({ length: cols }, () => 0.01 * (rand() - 0.5)).buffer);
      if (s.kind === "fp8" && fp8) return quantized(info.name).data;
      return bf16Bytes(values(rows, cols));
    },
    { maxShardSize: options.maxShardSize ?? "3MB" },
  );
  await writeFile(join(dir, "config.json"), `${JSON.stringify(deepseekConfig(d, fp8), null, 2)}\n`);
  await writeFile(
    join(dir, "generation_config.json"),
    `${JSON.stringify({ _from_model_config: true, bos_token_id: 0, eos_token_id: 1, do_sample: true, temperature: 0.6, top_p: 0.95, transformers_version: "4.46.3" }, null, 2)}\n`,
  );
  await writeFile(
    join(dir, "tokenizer_config.json"),
    `${JSON.stringify({ add_bos_token: true, add_eos_token: false, bos_token: "<｜begin▁of▁sentence｜>", eos_token: "<｜end▁of▁sentence｜>", model_max_length: 4096, tokenizer_class: "LlamaTokenizerFast" }, null, 2)}\n`,
  );
}

const SAMPLE_README = `# deepseek-v3-tiny

A 2-layer model in the real DeepSeek-V3 FP8 checkpoint layout (tensor names, dtypes, 128x128 block
FP8 with F32 \`weight_scale_inv\`, \`quantization_config\` as in the Hugging Face release), made by

    npx tsx scripts/make-sample.ts

(deterministic: re-running it rewrites identical files). Layer 0 has a dense MLP
(\`first_k_dense_replace: 1\`), layer 1 an MoE with 4 routed experts and a shared expert, layer 2 is
the MTP layer (\`num_nextn_predict_layers: 1\`) with \`enorm\`, \`hnorm\`, \`eh_proj\`, \`shared_head\`.
Dimensions are small (hidden 384, q_lora_rank 384, kv_lora_rank 512 + qk_rope_head_dim 64 = 576 rows
for \`kv_a_proj_with_mqa\`, intermediate 704, moe_intermediate 192) so that partial 128-blocks occur
in rows and columns. Weights are Student-t (nu = 4) with a few outlier input channels, quantized
with \`scale_inv = amax / 448\` per block (float scales, like DeepSeek-V3/R1; V3.1 uses UE8M0).
The values are random: this is a layout sample, not a model. \`generation_config.json\` and
\`tokenizer_config.json\` are small stand-ins for the files a real checkpoint carries.
`;

async function main(): Promise<void> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const dir = join(root, "sample", "deepseek-v3-tiny");
  await makeDeepseekCheckpoint(dir);
  await writeFile(join(dir, "README.md"), SAMPLE_README);
  process.stdout.write(`wrote ${dir}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.message : e}\n`);
    process.exitCode = 1;
  });
}
