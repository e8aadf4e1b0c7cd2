import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encode } from "../../src/formats/index.js";
import { seededUniform } from "../../src/formats/prng.js";
import { quantize } from "../../src/quant/quantize.js";
import type { TensorDescriptor } from "../../src/safetensors/index.js";
import { writeShardedCheckpoint } from "../../src/safetensors/node.js";

export const CONFIG_FIXTURE = join(import.meta.dirname, "fixtures", "deepseek-v3", "config.json");
export const ST_FIXTURES = join(import.meta.dirname, "..", "fixtures", "safetensors");

/** Deterministic PRNG (the library's mulberry32). */
export const rng: (seed: number) => () => number = seededUniform;

/** Gaussian-ish weights (sum of uniforms) with a few larger rows, so block scales differ. */
export function weights(rows: number, cols: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const rowScale = 0.02 * (1 + 4 * r() ** 4);
    for (let j = 0; j < cols; j++) x[i * cols + j] = (r() + r() + r() - 1.5) * rowScale;
  }
  return x;
}

export interface GenTensor extends TensorDescriptor {
  data: Uint8Array;
}

export interface GenOptions {
  layers?: number;
  /** DeepSeek-V3.1 style power-of-two scales (and scale_fmt "ue8m0" in config). */
  ue8m0?: boolean;
  /** Multiply every o_proj scale by this (DeepSeek-V3.1's o_proj mantissa 1.32288). */
  oProjScaleFactor?: number;
  /** Write BF16 weights instead of FP8 (the "original" model). */
  bf16?: boolean;
  maxShardSize?: number;
  seed?: number;
  /** Change the tensor list before writing. */
  mutate?: (tensors: GenTensor[]) => void;
  /** Change config.json before writing. */
  mutateConfig?: (config: Record<string, unknown>) => void;
}

const f32Bytes = (x: Float32Array) =>
  new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
const bf16Bytes = (x: Float32Array) => {
  const c = encode("bfloat16", x);
  return new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
};

/** The projections of one generated layer: [name, rows, cols]. */
export const PROJECTIONS: [string, number, number][] = [
  ["self_attn.q_b_proj", 384, 256],
  ["self_attn.o_proj", 256, 384],
  ["mlp.gate_proj", 384, 256],
  ["mlp.down_proj", 256, 384],
];

/**
 * Writes a small DeepSeek-layout checkpoint into `dir` with the safetensors writer: per layer four
 * F8_E4M3 projections with F32 `weight_scale_inv` [ceil(r/128), ceil(c/128)] (quantized by
 * src/quant's deepseek-v3 / deepseek-v3.1 presets), a BF16 norm, plus a BF16 embedding; the config
 * is the vendored DeepSeek-V3 config.json with the sizes overridden.
 */
export async function writeDeepSeekCheckpoint(dir: string, o: GenOptions = {}): Promise<GenTensor[]> {
  mkdirSync(dir, { recursive: true });
  const layers = o.layers ?? 3;
  const seed = o.seed ?? 1;
  const hidden = 256;
  const vocab = 64;
  const tensors: GenTensor[] = [];
  tensors.push({
    name: "model.embed_tokens.weight",
    dtype: "BF16",
    shape: [vocab, hidden],
    data: bf16Bytes(weights(vocab, hidden, seed)),
  });
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    tensors.push({
      name: `${p}input_layernorm.weight`,
      dtype: "BF16",
      shape: [hidden],
      data: bf16Bytes(new Float32Array(hidden).fill(1)),
    });
    PROJECTIONS.forEach(([proj, rows, cols], k) => {
      const x = weights(rows, cols, seed * 1000 + l * 10 + k);
      if (o.bf16) {
        tensors.push({ name: `${p}${proj}.weight`, dtype: "BF16", shape: [rows, cols], data: bf16Bytes(x) });
        return;
      }
      const q = quantize(x, [rows, cols], o.ue8m0 ? "deepseek-v3.1" : "deepseek-v3");
      const scales = Float32Array.from(q.scales as Float32Array);
      if (o.oProjScaleFactor && proj.endsWith("o_proj"))
        for (let i = 0; i < scales.length; i++) scales[i] *= o.oProjScaleFactor;
      tensors.push({ name: `${p}${proj}.weight`, dtype: "F8_E4M3", shape: [rows, cols], data: q.data });
      tensors.push({
        name: `${p}${proj}.weight_scale_inv`,
        dtype: "F32",
        shape: q.scaleShape,
        data: f32Bytes(scales),
      });
    });
  }
  o.mutate?.(tensors);
  const config = JSON.parse(readFileSync(CONFIG_FIXTURE, "utf8")) as Record<string, unknown>;
  Object.assign(config, {
    hidden_size: hidden,
    num_hidden_layers: layers,
    vocab_size: vocab,
    num_nextn_predict_layers: 0,
  });
  if (o.bf16) delete config.quantization_config;
  else if (o.ue8m0) (config.quantization_config as Record<string, unknown>).scale_fmt = "ue8m0";
  o.mutateConfig?.(config);
  writeFileSync(join(dir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  await writeShardedCheckpoint(dir, tensors, (info) => byName.get(info.name)!.data, {
    maxShardSize: o.maxShardSize ?? 200_000,
  });
  return tensors;
}

/** Sum of 8 + N over every .safetensors file in `dir`, read with plain fs (independent of src/). */
export function headerBytes(dir: string): number {
  let total = 0;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".safetensors")) continue;
    const b = readFileSync(join(dir, f));
    total += 8 + Number(b.readBigUInt64LE(0));
  }
  return total;
}

/** Edit the index JSON of `dir` in place. */
export function editIndex(
  dir: string,
  edit: (ix: { metadata: Record<string, unknown>; weight_map: Record<string, string> }) => void,
): void {
  const p = join(dir, "model.safetensors.index.json");
  const ix = JSON.parse(readFileSync(p, "utf8"));
  edit(ix);
  writeFileSync(p, JSON.stringify(ix));
}
