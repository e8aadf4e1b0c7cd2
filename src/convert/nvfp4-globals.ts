/**
 * The per-tensor scalar of every NVFP4 output that is quantized or requantized (relabels keep the
 * source's): ModelOpt's `weight_scale_2` and compressed-tensors' `weight_global_scale` come from
 * the amax of the whole tensor, so they must be known before its first band is encoded. This
 * pre-pass decodes each such op's source band by band (any source codec, through the same
 * `decodeBand` as the conversion; memory stays at one band), takes the largest finite magnitude,
 * then the largest over each fusion group, and turns it into the scalar by the target's rule
 * (`nvfp4TensorScale`).
 *
 * Fusion groups: serving stacks run some linears as one GEMM with one per-tensor scalar, and the
 * producers write one value for all of them. ModelOpt's export unifies the weight amax of linears
 * sharing an input (`modelopt/torch/export/quant_utils.py` `preprocess_linear_fusion`), and
 * llm-compressor gives q/k/v and gate/up the smallest global scale of the group
 * (`update_fused_layer_weight_global_scales`). vLLM takes the max over the shards of the fused layer
 * without rescaling the block scales (`vllm/model_executor/layers/quantization/modelopt.py`
 * `ModelOptNvFp4LinearMethod.process_weights_after_loading`; for MoE `w13_weight_scale_2[:, 0]`),
 * so members with different scalars would decode wrongly there. A group's members are found in the
 * whole plan, so a member written by another `--part` is read too.
 *
 * Cost: one extra read of every quantized NVFP4 weight's source before anything is written.
 * NaN and Inf are left out of the amax (the producers' amax would make every scale NaN or 0; such
 * values are refused by convert unless `--allow-nonfinite`).
 */
import { f32FromBits } from "../quant/float32.js";
import { nvfp4TensorScale } from "../quant/kernels/encode-nvfp4.js";
import { finiteAmaxBitsBf16 } from "../quant/kernels/fast-quant-bf16.js";
import type { Checkpoint } from "../safetensors/index.js";
import { bandsOf, readBandValues } from "./bands.js";
import { type ConvertPlan, shardsOfPart, type TensorOp } from "./plan.js";
import { readTensorScale } from "./tensor-scale.js";

/**
 * Linears fused into one GEMM by vLLM (and unified by the producers), as the last component of the
 * module name; members of one group share their parent module (one attention, one MLP, one expert).
 * - q/k/v: `qkv_proj` (vLLM `packed_modules_mapping` of Llama, Qwen, Mistral, ...).
 * - gate/up: `gate_up_proj` of an MLP, and of each expert (`FusedMoE` `w13`).
 * - w1/w3: Mixtral's expert names for gate/up (`FusedMoE` `w13`).
 * - q_a_proj + kv_a_proj_with_mqa: DeepSeek-V2/V3 MLA with a q LoRA rank, `fused_qkv_a_proj`
 *   (vLLM `model_executor/models/deepseek_v2.py`).
 */
export const FUSION_GROUPS: readonly { fused: string; members: readonly string[] }[] = [
  { fused: "qkv_proj", members: ["q_proj", "k_proj", "v_proj"] },
  { fused: "gate_up_proj", members: ["gate_proj", "up_proj"] },
  { fused: "w13", members: ["w1", "w3"] },
  { fused: "fused_qkv_a_proj", members: ["q_a_proj", "kv_a_proj_with_mqa"] },
];

/** The module of an NVFP4 output weight (`X.weight` in ModelOpt, `X.weight_packed` in compressed-tensors). */
const moduleOf = (name: string) => name.replace(/\.weight(_packed)?$/, "");

/** The fused module `module` belongs to (`model.layers.0.self_attn.qkv_proj`), or null. */
export function fusionGroupOf(module: string): string | null {
  const dot = module.lastIndexOf(".");
  const leaf = module.slice(dot + 1);
  const group = FUSION_GROUPS.find((g) => g.members.includes(leaf));
  return group ? `${module.slice(0, dot + 1)}${group.fused}` : null;
}

/** Whether `op` encodes an NVFP4 output (and so needs a scalar from this pre-pass). */
const encodesNvfp4 = (op: TensorOp) =>
  (op.action === "quantize" || op.action === "requantize") && op.target?.kind === "nvfp4";

/** Largest finite |value| of `op`'s source, decoded band by band (BF16: from the bits). */
async function finiteAmax(input: Checkpoint, op: TensorOp): Promise<number> {
  const { cols, bands } = bandsOf(op);
  if (op.source?.kind === "plain" && op.source.dtype === "BF16") {
    let bits = 0;
    for (const band of bands)
      bits = finiteAmaxBitsBf16(await input.readRange(op.input.data, band.inData[0], band.inData[1]), bits);
    return f32FromBits(bits << 16);
  }
  const tensorScale = await readTensorScale(input, op);
  let m = 0;
  for (const band of bands) {
    const x = await readBandValues(input, op, band, cols, tensorScale);
    for (let i = 0; i < x.length; i++) {
      const a = Math.abs(x[i]);
      if (a > m && a !== Number.POSITIVE_INFINITY) m = a; // NaN compares false
    }
  }
  return m;
}

/**
 * The float32 scalar of each NVFP4 op this run encodes (op index -> value), for the shards of
 * `part` (all when null): see the file header. Empty when no op encodes NVFP4.
 */
export async function nvfp4TensorScales(
  input: Checkpoint,
  plan: ConvertPlan,
  part: [number, number] | null | undefined,
): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  const encoded = plan.ops.filter(encodesNvfp4);
  if (encoded.length === 0) return out;
  const shards = part ? shardsOfPart(plan.shards, part[0], part[1]) : plan.shards;
  const mine = new Set(shards.flatMap((s) => s.ops));
  const groups = new Map<string, TensorOp[]>();
  for (const op of encoded) {
    const name = op.output.data.name;
    const key = fusionGroupOf(moduleOf(name)) ?? name;
    const members = groups.get(key);
    if (members) members.push(op);
    else groups.set(key, [op]);
  }
  for (const members of groups.values()) {
    if (!members.some((op) => mine.has(op.index))) continue;
    let amax = 0;
    for (const op of members) amax = Math.max(amax, await finiteAmax(input, op));
    for (const op of members) {
      const t = op.target as Extract<TensorOp["target"], { kind: "nvfp4" }>;
      if (mine.has(op.index)) out.set(op.index, nvfp4TensorScale(t.rule, amax));
    }
  }
  return out;
}
