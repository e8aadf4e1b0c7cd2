import { describe, expect, it } from "vitest";
import {
  checkTpSplits,
  compatibility,
  parallelStyle,
  type ReportLayout,
  type ReportQuantizedWeight,
} from "../../src/report/index.js";

function layout(kind: ReportLayout["kind"], scaleFmt: ReportLayout["scaleFmt"], n = 3): ReportLayout {
  const q = {
    name: "w",
    data: "w",
    scale: "s",
    element: "float8_e4m3fn",
    packed: false,
    shape: [256, 256],
    block: [128, 128],
  };
  return {
    kind,
    label: kind,
    scaleFmt,
    block: [128, 128],
    quantized: Array.from({ length: n }, () => q as ReportQuantizedWeight),
    problems: [],
    plain: [],
    declared: null,
  };
}
const status = (l: ReportLayout) => Object.fromEntries(compatibility(l).map((c) => [c.target, c.status]));

describe("compatibility matrix (CHECKPOINTS.md section 3, FORMATS.md section 4)", () => {
  it("block FP8: float scales requantize on Blackwell, UE8M0 ones load", () => {
    expect(status(layout("fp8-block", "float"))).toEqual({
      "vllm-sglang-hopper": "loads",
      "vllm-sglang-blackwell": "requantizes",
      "ascend-910b": "needs-conversion",
      "ascend-910c": "needs-conversion",
      "ascend-950": "loads",
      cpu: "needs-conversion",
    });
    expect(status(layout("fp8-block", "ue8m0"))["vllm-sglang-blackwell"]).toBe("loads");
  });
  it("MX and NVFP4 need Blackwell; gpt-oss also runs on Hopper; NVFP4 is not an Ascend format", () => {
    expect(status(layout("ct-mxfp8", "ue8m0"))["vllm-sglang-hopper"]).toBe("needs-conversion");
    expect(status(layout("gpt-oss-mxfp4", "ue8m0"))["vllm-sglang-hopper"]).toBe("loads");
    const nv = status(layout("modelopt-nvfp4", "float"));
    expect(nv["vllm-sglang-blackwell"]).toBe("loads");
    expect(nv["ascend-950"]).toBe("needs-conversion");
  });
  it("unquantized loads everywhere and needs no command", () => {
    for (const c of compatibility(layout("unquantized", null, 0)))
      expect(c).toMatchObject({ status: "loads", command: null });
  });
});

describe("tensor-parallel splits", () => {
  it("classifies DeepSeek projections like SGLang", () => {
    expect(parallelStyle("model.layers.3.self_attn.q_b_proj.weight")).toBe("column");
    expect(parallelStyle("model.layers.3.self_attn.kv_b_proj.weight")).toBe("column");
    expect(parallelStyle("model.layers.3.mlp.experts.7.up_proj.weight")).toBe("column");
    expect(parallelStyle("model.layers.3.self_attn.o_proj.weight")).toBe("row");
    expect(parallelStyle("model.layers.3.mlp.shared_experts.down_proj.weight")).toBe("row");
    expect(parallelStyle("model.layers.3.self_attn.q_a_proj.weight")).toBe("replicated");
    expect(parallelStyle("model.layers.3.self_attn.kv_a_proj_with_mqa.weight")).toBe("replicated");
  });
  it("DeepSeek-V3 shapes: moe down_proj [7168, 2048] splits fine up to TP 8, an odd width does not", () => {
    const w = (name: string, shape: number[]): ReportQuantizedWeight => ({
      name,
      data: name,
      scale: `${name}_scale_inv`,
      element: "float8_e4m3fn",
      packed: false,
      shape,
      block: [128, 128],
      scaleStorage: "f32",
      scaleDtype: "F32",
      scaleShape: [],
      layout: "fp8-block",
      granularity: "block",
      tensorScale: null,
      auxiliary: [],
    });
    const r = checkTpSplits([
      w("model.layers.3.mlp.experts.0.down_proj.weight", [7168, 2048]),
      w("model.layers.3.mlp.experts.0.gate_proj.weight", [2048, 7168]),
      w("model.layers.0.mlp.up_proj.weight", [18432, 7168]),
      w("x.layers.0.self_attn.o_proj.weight", [7168, 1004]),
    ]);
    const at = (tp: number) => r.find((x) => x.tp === tp)!;
    expect(at(8).problems.map((p) => [p.tensor, p.reason])).toEqual([
      ["x.layers.0.self_attn.o_proj.weight", "uneven"],
    ]);
    expect(at(2).problems.map((p) => [p.tensor, p.reason, p.partition])).toEqual([
      ["x.layers.0.self_attn.o_proj.weight", "splits-block", 502],
    ]);
  });
});

describe("tensor-parallel split check", () => {
  it("at TP 1 nothing is split, so partial edge blocks are fine; at TP 2 a 192-row expert splits a block", async () => {
    const { checkTpSplits } = await import("../../src/report/tp-split.js");
    const w = {
      name: "model.layers.1.mlp.experts.0.gate_proj.weight",
      data: "model.layers.1.mlp.experts.0.gate_proj.weight",
      scale: "model.layers.1.mlp.experts.0.gate_proj.weight_scale_inv",
      element: "float8_e4m3fn",
      packed: false,
      shape: [192, 384],
      block: [128, 128],
    } as unknown as Parameters<typeof checkTpSplits>[0][number];
    const [tp1, tp2] = checkTpSplits([w], [1, 2]);
    expect(tp1.ok).toBe(true);
    // column-parallel: 192 rows / 2 = 96, not a multiple of 128
    expect(tp2.problems).toEqual([
      expect.objectContaining({
        style: "column",
        dim: 0,
        size: 192,
        partition: 96,
        block: 128,
        reason: "splits-block",
      }),
    ]);
  });
});
