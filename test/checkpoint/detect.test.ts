import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  detectLayout,
  matchGlob,
  parseConfigJson,
  rewriteConfig,
  selectTensors,
  type TensorEntry,
} from "../../src/checkpoint/index.js";
import { openCheckpoint } from "../../src/safetensors/node.js";
import { ROOT, SAMPLE } from "../convert/helpers.js";

const t = (name: string, dtype: TensorEntry["dtype"], shape: number[]): TensorEntry => ({
  name,
  dtype,
  shape,
});

describe("detectLayout", () => {
  it("finds the DeepSeek FP8 layout of the sample, with every scale paired", async () => {
    const ck = await openCheckpoint(SAMPLE);
    const config = parseConfigJson(await readFile(join(SAMPLE, "config.json"), "utf8"));
    const d = detectLayout(config, ck.tensors);
    await ck.close();
    expect(d.kind).toBe("fp8-block");
    expect(d.scaleFmt).toBe("float");
    expect(d.block).toEqual([128, 128]);
    expect(d.problems).toEqual([]);
    const kv = d.quantized.find((w) => w.name === "model.layers.0.self_attn.kv_a_proj_with_mqa.weight")!;
    expect(kv.shape).toEqual([576, 384]);
    expect(kv.scaleShape).toEqual([5, 3]);
    expect(kv.scaleStorage).toBe("f32");
    expect(d.plain.some((p) => p.name === "lm_head.weight")).toBe(true);
    expect(d.plain.some((p) => p.name.endsWith("_scale_inv"))).toBe(false);
  });

  it("reads scale_fmt ue8m0 from quantization_config", async () => {
    const real = parseConfigJson(await readFile(join(ROOT, "sample/deepseek-v3-tiny/config.json"), "utf8"));
    const qc = { ...(real.quantization_config as object), scale_fmt: "ue8m0" };
    const d = detectLayout({ ...real, quantization_config: qc }, [
      t("a.weight", "F8_E4M3", [300, 200]),
      t("a.weight_scale_inv", "F32", [3, 2]),
    ]);
    expect(d.scaleFmt).toBe("ue8m0");
  });

  it("reports a missing scale and a mismatched scale grid", () => {
    const d = detectLayout(null, [
      t("a.weight", "F8_E4M3", [256, 256]),
      t("b.weight", "F8_E4M3", [256, 256]),
      t("b.weight_scale_inv", "F32", [2, 3]),
    ]);
    expect(d.problems.map((p) => p.tensor)).toEqual(["a.weight", "b.weight_scale_inv"]);
    expect(d.problems[1].message).toContain("needs [2,2]");
  });

  it("recognises compressed-tensors MXFP8 / MXFP4 / FP8 block and gpt-oss MXFP4", () => {
    expect(
      detectLayout(null, [t("l.weight", "F8_E4M3", [64, 128]), t("l.weight_scale", "U8", [64, 4])]).kind,
    ).toBe("ct-mxfp8");
    const fp4 = detectLayout(null, [
      t("l.weight_packed", "U8", [64, 64]),
      t("l.weight_scale", "U8", [64, 4]),
    ]);
    expect(fp4.kind).toBe("ct-mxfp4");
    expect(fp4.quantized[0].shape).toEqual([64, 128]);
    const ct = detectLayout({ quantization_config: { quant_method: "compressed-tensors" } }, [
      t("l.weight", "F8_E4M3", [256, 256]),
      t("l.weight_scale", "BF16", [2, 2]),
    ]);
    expect(ct.kind).toBe("ct-fp8-block");
    const oss = detectLayout(null, [
      t("m.experts.gate_up_proj_blocks", "U8", [2, 64, 3, 16]),
      t("m.experts.gate_up_proj_scales", "U8", [2, 64, 3]),
    ]);
    expect(oss.kind).toBe("gpt-oss-mxfp4");
    expect(oss.quantized[0].shape).toEqual([2, 64, 96]);
  });
});

describe("selectTensors", () => {
  const names = [
    "model.embed_tokens.weight",
    "model.layers.0.self_attn.q_a_proj.weight",
    "model.layers.0.self_attn.kv_a_proj_with_mqa.weight",
    "model.layers.0.self_attn.q_a_layernorm.weight",
    "model.layers.1.mlp.gate.weight",
    "model.layers.1.mlp.experts.3.down_proj.weight",
    "model.layers.1.mlp.shared_experts.up_proj.weight",
    "model.layers.2.eh_proj.weight",
    "model.layers.2.shared_head.head.weight",
    "lm_head.weight",
  ];
  const tensors = names.map((n) => t(n, "BF16", n.includes("norm") ? [8] : [256, 256]));

  it("deepseek-v3 quantizes the attention and MLP projections and keeps the rest", () => {
    const s = selectTensors(tensors, { config: { model_type: "deepseek_v3" } });
    expect(s.preset).toBe("deepseek-v3");
    expect([...s.selected]).toEqual([
      "model.layers.0.self_attn.q_a_proj.weight",
      "model.layers.0.self_attn.kv_a_proj_with_mqa.weight",
      "model.layers.1.mlp.experts.3.down_proj.weight",
      "model.layers.1.mlp.shared_experts.up_proj.weight",
    ]);
  });

  it("generic never takes embeddings, heads, norms or routers; globs add and remove", () => {
    const s = selectTensors(tensors, {
      preset: "generic",
      exclude: ["**.experts.**"],
      include: ["lm_head.weight"],
    });
    expect(s.selected.has("model.embed_tokens.weight")).toBe(false);
    expect(s.selected.has("model.layers.1.mlp.gate.weight")).toBe(false);
    expect(s.selected.has("model.layers.1.mlp.experts.3.down_proj.weight")).toBe(false);
    expect(s.selected.has("lm_head.weight")).toBe(true);
    expect(matchGlob("model.layers.3.mlp.gate.weight", "model.layers.*.mlp.gate.weight")).toBe(true);
    expect(matchGlob("model.layers.3.x.mlp.gate.weight", "model.layers.*.mlp.gate.weight")).toBe(false);
  });
});

describe("rewriteConfig", () => {
  it("removes quantization_config for dense targets and writes the fp8 / compressed-tensors objects", () => {
    const base = {
      model_type: "deepseek_v3",
      quantization_config: { quant_method: "fp8" },
      torch_dtype: "bfloat16",
    };
    expect(rewriteConfig(base, { kind: "dense", dtype: "float16" })).toEqual({
      model_type: "deepseek_v3",
      torch_dtype: "float16",
    });
    expect(base.quantization_config).toEqual({ quant_method: "fp8" });
    const fp8 = rewriteConfig(base, {
      kind: "fp8-block",
      block: [128, 128],
      scaleFmt: "ue8m0",
    }).quantization_config;
    expect(fp8).toEqual({
      activation_scheme: "dynamic",
      fmt: "e4m3",
      quant_method: "fp8",
      scale_fmt: "ue8m0",
      weight_block_size: [128, 128],
    });
    const mx = rewriteConfig(base, {
      kind: "compressed-tensors",
      format: "mxfp4",
      weightOnly: true,
      ignore: ["lm_head"],
    }).quantization_config as Record<string, unknown>;
    expect(mx.quant_method).toBe("compressed-tensors");
    expect(mx.format).toBe("mxfp4-pack-quantized");
    expect(mx.quantization_status).toBe("compressed");
    expect(mx.ignore).toEqual(["lm_head"]);
    const w = (mx.config_groups as Record<string, { targets: string[]; weights: Record<string, unknown> }>)
      .group_0;
    expect(w.targets).toEqual(["Linear"]);
    expect(w.weights).toMatchObject({
      num_bits: 4,
      type: "float",
      strategy: "group",
      group_size: 32,
      symmetric: true,
    });
  });

  it("rejects invalid config.json with the file name", () => {
    expect(() => parseConfigJson("{nope", "x/config.json")).toThrow(/x\/config.json: invalid JSON/);
    expect(() => parseConfigJson("[1]", "config.json")).toThrow(/must hold a JSON object/);
  });
});
