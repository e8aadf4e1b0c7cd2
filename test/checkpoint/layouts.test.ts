/**
 * The one layout detector: every family the recognizers describe, the problems it reports, and the
 * one support rule `convert` and `inspect` share. Each case states the expected pairing by hand
 * from the stacks' documented layouts (the recognizers' file headers cite them).
 */
import { describe, expect, it } from "vitest";
import {
  conversionRefusal,
  detectLayout,
  expectedScaleShape,
  sourceCodecOf,
  type TensorEntry,
} from "../../src/checkpoint/index.js";
import { planConversion } from "../../src/convert/plan.js";
import { detectReportLayout } from "../../src/report/layout.js";

const t = (name: string, dtype: TensorEntry["dtype"], shape: number[]): TensorEntry => ({
  name,
  dtype,
  shape,
});
const ct = { quantization_config: { quant_method: "compressed-tensors" } };
const modelopt = (algo: string) => ({ quantization: { quant_algo: algo } });

describe("one detector for every layout family", () => {
  it("ModelOpt NVFP4: packed U8 weight, E4M3 scale per 16, weight_scale_2 multiplies, input_scale is activation-side", () => {
    const d = detectLayout(
      null,
      [
        t("a.weight", "U8", [64, 64]),
        t("a.weight_scale", "F8_E4M3", [64, 8]),
        t("a.weight_scale_2", "F32", []),
        t("a.input_scale", "F32", []),
        t("norm.weight", "BF16", [64]),
      ],
      modelopt("NVFP4"),
    );
    expect(d).toMatchObject({ kind: "modelopt-nvfp4", declared: "NVFP4", problems: [] });
    expect(d.quantized[0]).toMatchObject({
      name: "a.weight",
      element: "float4_e2m1fn",
      packed: true,
      shape: [64, 128],
      block: [1, 16],
      scaleStorage: "e4m3",
      tensorScale: { name: "a.weight_scale_2", mode: "multiply" },
      auxiliary: ["a.input_scale"],
    });
    expect(d.plain.map((x) => x.name)).toEqual(["norm.weight"]);
    expect(sourceCodecOf(d.quantized[0])).toEqual({
      kind: "block",
      element: "float4_e2m1fn",
      packed: true,
      block: [1, 16],
      scaleStorage: "e4m3",
      tensorScale: "multiply",
    });
  });

  it("compressed-tensors NVFP4: weight_global_scale divides (it is ModelOpt's weight_scale_2 inverted)", () => {
    const d = detectLayout(ct, [
      t("a.weight_packed", "U8", [32, 32]),
      t("a.weight_scale", "F8_E4M3", [32, 4]),
      t("a.weight_global_scale", "F32", [1]),
      t("a.input_global_scale", "F32", [1]),
    ]);
    expect(d).toMatchObject({ kind: "ct-nvfp4", problems: [] });
    expect(d.quantized[0].tensorScale).toEqual({ name: "a.weight_global_scale", mode: "divide" });
    expect(d.plain).toEqual([]);
  });

  it("per-tensor FP8 (scalar weight_scale): fp8-tensor, or modelopt-fp8 under a ModelOpt config; E5M2 too", () => {
    const ts = [
      t("a.weight", "F8_E4M3", [48, 80]),
      t("a.weight_scale", "F32", []),
      t("b.weight", "F8_E5M2", [8, 8]),
      t("b.weight_scale", "F32", [1]),
    ];
    const plain = detectLayout(null, ts);
    expect(plain).toMatchObject({ kind: "fp8-tensor", block: null, problems: [] });
    expect(plain.quantized.map((q) => [q.element, q.granularity])).toEqual([
      ["float8_e4m3fn", "tensor"],
      ["float8_e5m2", "tensor"],
    ]);
    expect(sourceCodecOf(plain.quantized[1])).toEqual({ kind: "tensor", element: "float8_e5m2" });
    expect(detectLayout(null, ts, modelopt("FP8")).kind).toBe("modelopt-fp8");
  });

  it("E8M0 weight_scale: ct-mxfp8, or modelopt-mxfp8 under a ModelOpt config", () => {
    const ts = [t("a.weight", "F8_E4M3", [32, 96]), t("a.weight_scale", "U8", [32, 3])];
    expect(detectLayout(ct, ts)).toMatchObject({ kind: "ct-mxfp8", scaleFmt: "ue8m0", block: [1, 32] });
    expect(detectLayout(null, ts, modelopt("MXFP8"))).toMatchObject({
      kind: "modelopt-mxfp8",
      scaleFmt: "ue8m0",
    });
  });

  it("duplicate scales (weight_scale_inv and weight_scale) and orphan scales are problems with their tensors", () => {
    const d = detectLayout(null, [
      t("a.weight", "F8_E4M3", [128, 128]),
      t("a.weight_scale_inv", "F32", [1, 1]),
      t("a.weight_scale", "F32", [1, 1]),
      t("b.weight_scale_inv", "F32", [1, 1]),
      t("c_scales", "U8", [4, 2]),
    ]);
    expect(d.problems.map((p) => [p.code, p.tensor])).toEqual([
      ["duplicate-scale", "a.weight"],
      ["orphan-scale", "b.weight_scale_inv"],
      ["orphan-scale", "c_scales"],
    ]);
  });

  it("a config that declares quantization with no quantized tensors is `unknown`", () => {
    const d = detectLayout(ct, [t("a.weight", "BF16", [4, 4])]);
    expect(d.kind).toBe("unknown");
    expect(conversionRefusal(d, { name: "bf16", dense: true })).toMatch(
      /no tensor matches a layout fp8kit knows/,
    );
  });

  it("the report's layout is the checkpoint layer's, problems given fixes", () => {
    const ts = [t("a.weight", "F8_E4M3", [128, 128])];
    const r = detectReportLayout(null, null, ts);
    const d = detectLayout(null, ts);
    expect(r.kind).toBe(d.kind);
    expect(r.problems).toEqual([
      {
        code: "missing-scale",
        tensor: "a.weight",
        message: d.problems[0].message,
        fix: expect.stringMatching(/a\.weight_scale_inv/),
      },
    ]);
  });

  it("rank-3 (stacked experts): the scale grid is per matrix", () => {
    expect(expectedScaleShape([2, 192, 128], [128, 128])).toEqual([2, 2, 1]);
    const d = detectLayout(null, [
      t("e.weight", "F8_E4M3", [2, 192, 128]),
      t("e.weight_scale_inv", "F32", [2, 2, 1]),
    ]);
    expect(d.problems).toEqual([]);
  });
});

describe("the support rule convert and inspect share", () => {
  const nvfp4 = [
    t("a.weight", "U8", [64, 64]),
    t("a.weight_scale", "F8_E4M3", [64, 8]),
    t("a.weight_scale_2", "F32", []),
    t("a.input_scale", "F32", []),
    t("n.weight", "BF16", [64]),
  ].map((x) => ({ ...x, shard: "model.safetensors", byteLength: 4 }));

  it("ModelOpt NVFP4 to BF16: one dequantize op reading the block scales and the scalar; input_scale dropped", () => {
    const plan = planConversion(
      { config: {}, hfQuantConfig: modelopt("NVFP4"), tensors: nvfp4 },
      { target: "bf16" },
    );
    expect(plan.ops.map((o) => [o.action, o.input.data, o.output.data.name, o.output.data.dtype])).toEqual([
      ["dequantize", "a.weight", "a.weight", "BF16"],
      ["copy", "n.weight", "n.weight", "BF16"],
    ]);
    expect(plan.ops[0].input).toMatchObject({ scale: "a.weight_scale", tensorScale: "a.weight_scale_2" });
    expect(plan.ops[0].output.data.shape).toEqual([64, 128]);
  });

  it("before this rule, NVFP4 was copied under a BF16 label; now every quantized target reads its codes and scalar", () => {
    for (const target of ["fp8", "mxfp8", "mxfp4"] as const) {
      const plan = planConversion(
        { config: {}, hfQuantConfig: modelopt("NVFP4"), tensors: nvfp4 },
        { target },
      );
      expect(plan.ops[0].action).toBe("requantize");
      expect(plan.ops[0].source).toMatchObject({
        kind: "block",
        element: "float4_e2m1fn",
        tensorScale: "multiply",
      });
      expect(plan.ops[0].input).toMatchObject({ scale: "a.weight_scale", tensorScale: "a.weight_scale_2" });
    }
  });

  it("NVFP4 relabelled across dialects keeps its activation scale (as its reciprocal) and stays W4A4", () => {
    const plan = planConversion(
      { config: {}, hfQuantConfig: modelopt("NVFP4"), tensors: nvfp4 },
      { layout: "compressed-tensors" },
    );
    expect(plan.ops.map((o) => [o.action, o.input.data, o.output.data.name])).toEqual([
      ["relabel", "a.weight", "a.weight_packed"],
      ["copy", "a.input_scale", "a.input_global_scale"],
      ["copy", "n.weight", "n.weight"],
    ]);
    // compressed-tensors' input_global_scale is ModelOpt's input_scale inverted (converters/modelopt_nvfp4.py).
    expect(plan.ops[1].reciprocal).toBe(true);
    expect(plan.ops[1].output.data).toMatchObject({ dtype: "F32", shape: [1] });
    const q = plan.config!.quantization_config as { config_groups: { group_0: Record<string, unknown> } };
    expect(q.config_groups.group_0.input_activations).toMatchObject({
      num_bits: 4,
      strategy: "tensor_group",
      group_size: 16,
      dynamic: "local",
    });
    // Quantizing (not relabelling) into NVFP4 leaves no activation scale: weight-only.
    const requant = planConversion(
      { config: {}, hfQuantConfig: modelopt("NVFP4"), tensors: nvfp4 },
      { layout: "compressed-tensors", requantize: true },
    );
    expect(requant.ops.map((o) => o.input.data)).toEqual(["a.weight", "n.weight"]);
    const rq = requant.config!.quantization_config as { config_groups: { group_0: Record<string, unknown> } };
    expect(rq.config_groups.group_0.input_activations).toBeNull();
    const mo = planConversion(
      { config: {}, hfQuantConfig: modelopt("NVFP4"), tensors: nvfp4 },
      { layout: "modelopt", target: "nvfp4" },
    );
    expect(mo.hfQuantConfig).toMatchObject({ quantization: { quant_algo: "NVFP4", group_size: 16 } });
    expect(mo.ops[1]).toMatchObject({ action: "copy", reciprocal: false });
  });

  it("without the ModelOpt description the tensors are still never copied as dense: the stray U8 weight is refused", () => {
    // No hf_quant_config.json: U8 + E4M3 scale is still NVFP4 by its tensors.
    const plan = planConversion({ config: {}, tensors: nvfp4 }, { target: "bf16" });
    expect(plan.ops[0].action).toBe("dequantize");
    const stray = [t("q.weight", "F8_E4M3", [4, 4]), t("q.weight_scale", "F32", [2, 2])].map((x) => ({
      ...x,
      shard: "s.safetensors",
      byteLength: 16,
    }));
    expect(() =>
      planConversion({ config: {}, tensors: [...stray, ...nvfp4.slice(4)] }, { target: "bf16" }),
    ).toThrow(/s\.safetensors: scale "q\.weight_scale" has shape \[2,2\]/);
  });

  it("per-tensor FP8 to BF16 plans a tensor-scaled source (it was refused with a 128x128 grid error)", () => {
    const ts = [t("a.weight", "F8_E4M3", [48, 80]), t("a.weight_scale", "F32", [])].map((x) => ({
      ...x,
      shard: "model.safetensors",
      byteLength: 4,
    }));
    const plan = planConversion({ config: {}, tensors: ts }, { target: "bf16" });
    expect(plan.ops).toHaveLength(1);
    expect(plan.ops[0]).toMatchObject({
      action: "dequantize",
      source: { kind: "tensor", element: "float8_e4m3fn" },
      input: { scale: null, tensorScale: "a.weight_scale" },
    });
  });
});
