import { describe, expect, it } from "vitest";
import {
  type AscendProblem,
  type AscendQuantType,
  ascendDescription,
  ascendModelQuantType,
  checkAscendDescription,
  isDeepSeekStyle,
  summarizeAscendDescription,
  type TensorEntry,
} from "../../src/checkpoint/index.js";

type Entry = TensorEntry & { type: AscendQuantType };
const t = (name: string, dtype: TensorEntry["dtype"], shape: number[], type: AscendQuantType): Entry => ({
  name,
  dtype,
  shape,
  type,
});
/** W8A8_DYNAMIC linear: I8 [out, in], F32 scale and offset [out, 1] (optionally stacked experts). */
const w8a8 = (base: string, out: number, inn: number, lead: number[] = []): Entry[] => [
  t(`${base}.weight`, "I8", [...lead, out, inn], "W8A8_DYNAMIC"),
  t(`${base}.weight_scale`, "F32", [...lead, out, 1], "W8A8_DYNAMIC"),
  t(`${base}.weight_offset`, "F32", [...lead, out, 1], "W8A8_DYNAMIC"),
];
/** W4A8_DYNAMIC expert: I8 [out/2, in], scales [out, 1], scale_bias [out, 1] or [out, 16] for down_proj. */
const w4a8 = (base: string, out: number, inn: number): Entry[] => [
  t(`${base}.weight`, "I8", [out / 2, inn], "W4A8_DYNAMIC"),
  t(`${base}.weight_scale`, "F32", [out, 1], "W4A8_DYNAMIC"),
  t(`${base}.weight_offset`, "F32", [out, 1], "W4A8_DYNAMIC"),
  t(`${base}.scale_bias`, "F32", [out, /(down_proj|o_proj)$/.test(base) ? 16 : 1], "W4A8_DYNAMIC"),
];
const float = (name: string, shape: number[], dtype: TensorEntry["dtype"] = "BF16") =>
  t(name, dtype, shape, "FLOAT");

const H = 64;
const I = 32;
/** A two-layer DeepSeek-shaped checkpoint: layer 0 dense, layer 1 MoE with two routed experts. */
function model(o: { w4a8?: boolean } = {}): Entry[] {
  const out: Entry[] = [float("model.embed_tokens.weight", [100, H])];
  for (const l of [0, 1]) {
    const p = `model.layers.${l}`;
    out.push(float(`${p}.input_layernorm.weight`, [H]));
    out.push(...w8a8(`${p}.self_attn.q_a_proj`, 48, H));
    out.push(...w8a8(`${p}.self_attn.kv_a_proj_with_mqa`, 40, H));
    out.push(float(`${p}.self_attn.kv_a_layernorm.weight`, [32]));
    out.push(float(`${p}.self_attn.kv_b_proj.weight`, [96, 32]));
    out.push(...w8a8(`${p}.self_attn.o_proj`, H, 64));
    if (l === 0) {
      for (const m of ["gate_proj", "up_proj"]) out.push(...w8a8(`${p}.mlp.${m}`, 96, H));
      out.push(...w8a8(`${p}.mlp.down_proj`, H, 96));
      continue;
    }
    out.push(float(`${p}.mlp.gate.weight`, [2, H]));
    out.push(float(`${p}.mlp.gate.e_score_correction_bias`, [2], "F32"));
    for (const e of [0, 1]) {
      const q = o.w4a8 ? w4a8 : w8a8;
      out.push(...q(`${p}.mlp.experts.${e}.gate_proj`, I, H), ...q(`${p}.mlp.experts.${e}.up_proj`, I, H));
      out.push(...q(`${p}.mlp.experts.${e}.down_proj`, H, I));
    }
    for (const m of ["gate_proj", "up_proj"]) out.push(...w8a8(`${p}.mlp.shared_experts.${m}`, I, H));
    out.push(...w8a8(`${p}.mlp.shared_experts.down_proj`, H, I));
  }
  out.push(float("model.norm.weight", [H]), float("lm_head.weight", [100, H]));
  return out;
}
const CONFIG = { model_type: "deepseek_v3", hidden_size: H };

/** Checks `entries` (the description written from them, then edited) against `tensors`. */
function check(
  entries: Entry[],
  o: {
    tensors?: TensorEntry[];
    edit?: (d: Record<string, unknown>) => void;
    config?: Record<string, unknown> | null;
  } = {},
): AscendProblem[] {
  const d = ascendDescription(entries);
  o.edit?.(d);
  return checkAscendDescription(d, o.tensors ?? entries, o.config === undefined ? CONFIG : o.config);
}
const brief = (ps: readonly AscendProblem[]) => ps.map((p) => [p.severity, p.code, p.tensor]);
const swap = (es: Entry[], name: string, f: (e: Entry) => Entry | null): Entry[] =>
  es.flatMap((e) => (e.name === name ? (f(e) ?? []) : [e]));

describe("ascendDescription", () => {
  it("writes the global keys, then one entry per tensor in order", () => {
    const d = ascendDescription([
      { name: "model.embed_tokens.weight", type: "FLOAT" },
      { name: "model.layers.0.mlp.down_proj.weight", type: "W8A8_DYNAMIC" },
      { name: "model.layers.0.mlp.down_proj.weight_scale", type: "W8A8_DYNAMIC" },
    ]);
    expect(JSON.stringify(d)).toBe(
      '{"version":"1.0.0","model_quant_type":"W8A8_DYNAMIC","group_size":0,"metadata":{},"optional":{},' +
        '"model.embed_tokens.weight":"FLOAT","model.layers.0.mlp.down_proj.weight":"W8A8_DYNAMIC",' +
        '"model.layers.0.mlp.down_proj.weight_scale":"W8A8_DYNAMIC"}',
    );
  });

  it("refuses a tensor named twice or named like a global key", () => {
    expect(() => ascendDescription([{ name: "version", type: "FLOAT" }])).toThrow(/global key/);
    const twice = [
      { name: "a.weight", type: "FLOAT" as const },
      { name: "a.weight", type: "FLOAT" as const },
    ];
    expect(() => ascendDescription(twice)).toThrow(/quant_model_description\.json: tensor "a\.weight"/);
  });

  it("model_quant_type: msModelSlim's priority, W4A8_DYNAMIC hidden", () => {
    expect(ascendModelQuantType(["FLOAT", "W4A8_DYNAMIC", "W8A8_DYNAMIC"])).toBe("W8A8_DYNAMIC");
    expect(ascendModelQuantType(["FLOAT", "W4A8_DYNAMIC"])).toBe("FLOAT");
    expect(ascendModelQuantType(["W8A8_DYNAMIC", "W8A8", "W8A16"])).toBe("W8A8");
    expect(ascendModelQuantType(["W8A8", "W8A8_MXFP8", "W8A8_MIX"])).toBe("W8A8_MXFP8");
    expect(ascendModelQuantType(["W4A4_MXFP4", "W4A8_MXFP"])).toBe("W4A4_MXFP4");
    expect(ascendModelQuantType(["C8", "FAQuant"])).toBe("FLOAT");
    expect(ascendModelQuantType([])).toBe("FLOAT");
    expect(ascendDescription(model({ w4a8: true })).model_quant_type).toBe("W8A8_DYNAMIC");
  });

  it("summarizes: entries by type, quantized layers", () => {
    const es = model();
    const s = summarizeAscendDescription(ascendDescription(es))!;
    const nFloat = es.filter((e) => e.type === "FLOAT").length;
    expect(s).toEqual({
      modelQuantType: "W8A8_DYNAMIC",
      version: "1.0.0",
      groupSize: 0,
      entries: es.length,
      types: { FLOAT: nFloat, W8A8_DYNAMIC: es.length - nFloat },
      // layer 0: q_a, kv_a, o, gate, up, down; layer 1: q_a, kv_a, o, 2 x 3 experts, 3 shared.
      quantizedWeights: 6 + 3 + 6 + 3,
    });
    expect(summarizeAscendDescription([1])).toBeNull();
  });
});

describe("checkAscendDescription", () => {
  it("a sound W8A8 checkpoint and a sound W4A8 one have no problems", () => {
    expect(check(model())).toEqual([]);
    expect(check(model({ w4a8: true }))).toEqual([]);
    // Stacked experts [E, out, in] with scales [E, out, 1].
    const stacked = [...w8a8("model.layers.1.mlp.experts.gate_proj", I, H, [4])];
    expect(check(stacked)).toEqual([]);
  });

  it("not an object, no model_quant_type, a wrong one, a non-string entry", () => {
    for (const d of [null, [], "W8A8_DYNAMIC"]) {
      expect(brief(checkAscendDescription(d, [], null))).toEqual([["error", "bad-description", null]]);
    }
    expect(brief(check(model(), { edit: (d) => delete d.model_quant_type }))).toEqual([
      ["error", "bad-description", null],
    ]);
    const wrong = check(model(), { edit: (d) => (d.model_quant_type = "W8A8") });
    expect(brief(wrong)).toEqual([["warning", "description-mismatch", null]]);
    expect(wrong[0].fix).toBe('set "model_quant_type": "W8A8_DYNAMIC"');
    const n = "model.norm.weight";
    expect(brief(check(model(), { edit: (d) => (d[n] = 1) }))).toEqual([
      ["error", "bad-description", n],
      ["warning", "description-missing-entry", n],
    ]);
  });

  it("every .weight has an entry: an error for a layer, a warning for a norm, one warning for the rest", () => {
    const es = model();
    const without =
      (...names: string[]) =>
      (d: Record<string, unknown>) => {
        for (const n of names) delete d[n];
      };
    const emb = "model.embed_tokens.weight";
    const p = check(es, { edit: without(emb) });
    expect(brief(p)).toEqual([["error", "description-missing-entry", emb]]);
    expect(p[0]).toMatchObject({
      file: "quant_model_description.json",
      message: expect.stringMatching(/KeyError/),
    });
    const norm = "model.layers.0.input_layernorm.weight";
    expect(brief(check(es, { edit: without(norm) }))).toEqual([
      ["warning", "description-missing-entry", norm],
    ]);
    const s1 = "model.layers.0.mlp.down_proj.weight_scale";
    const s2 = "model.layers.1.mlp.gate.e_score_correction_bias";
    const rest = check(es, { edit: without(s1, s2) });
    expect(brief(rest)).toEqual([["warning", "description-missing-entry", s1]]);
    expect(rest[0].message).toMatch(/^2 tensors have no entry/);
  });

  it("an entry naming no tensor is a warning", () => {
    const es = model();
    const gone = "model.layers.1.mlp.gate.e_score_correction_bias";
    const p = check(es, { tensors: es.filter((e) => e.name !== gone) });
    expect(brief(p)).toEqual([["warning", "description-extra-entry", gone]]);
  });

  it("W8A8_DYNAMIC: weight I8 2-D or 3-D, scale and offset F32/BF16 [..., out, 1]", () => {
    const w = "model.layers.0.self_attn.o_proj";
    const edit = (suffix: string, f: (e: Entry) => Entry | null) => {
      const es = swap(model(), `${w}${suffix}`, f);
      return brief(check(es));
    };
    expect(edit(".weight", (e) => ({ ...e, dtype: "BF16" }))).toEqual([
      ["error", "description-mismatch", `${w}.weight`],
    ]);
    expect(edit(".weight", (e) => ({ ...e, shape: [H * 64] }))).toEqual([
      ["error", "description-mismatch", `${w}.weight`],
    ]);
    expect(edit(".weight_scale", (e) => ({ ...e, shape: [H] }))).toEqual([
      ["error", "description-mismatch", `${w}.weight_scale`],
    ]);
    expect(edit(".weight_scale", (e) => ({ ...e, dtype: "I32" }))).toEqual([
      ["error", "description-mismatch", `${w}.weight_scale`],
    ]);
    expect(edit(".weight_scale", (e) => ({ ...e, dtype: "BF16" }))).toEqual([]);
    expect(edit(".weight_offset", (e) => ({ ...e, shape: [H, 2] }))).toEqual([
      ["error", "description-mismatch", `${w}.weight_offset`],
    ]);
    // A missing scale is an error on the weight; a missing offset loads (computed, not loaded): a warning.
    const noScale = swap(model(), `${w}.weight_scale`, () => null);
    expect(brief(check(noScale))).toEqual([["error", "description-mismatch", `${w}.weight`]]);
    const noOffset = swap(model(), `${w}.weight_offset`, () => null);
    expect(brief(check(noOffset))).toEqual([["warning", "description-mismatch", `${w}.weight`]]);
    // A scale tag other than its weight's is a warning.
    const tag = swap(model(), `${w}.weight_scale`, (e) => ({ ...e, type: "FLOAT" }));
    expect(brief(check(tag))).toEqual([["warning", "description-mismatch", `${w}.weight_scale`]]);
  });

  it("W4A8_DYNAMIC: out = 2 x rows, scale_bias [out, 1] for gate/up and [out, 16] for down", () => {
    const x = "model.layers.1.mlp.experts.1";
    const es = (name: string, f: (e: Entry) => Entry | null) =>
      brief(check(swap(model({ w4a8: true }), name, f)));
    // Scales sized for the unpacked rows of an unpacked weight: [I, 1] against a [I, H] weight.
    expect(es(`${x}.gate_proj.weight`, (e) => ({ ...e, shape: [I, H] }))).toEqual([
      ["error", "description-mismatch", `${x}.gate_proj.weight_scale`],
      ["error", "description-mismatch", `${x}.gate_proj.weight_offset`],
      ["error", "description-mismatch", `${x}.gate_proj.scale_bias`],
    ]);
    expect(es(`${x}.down_proj.scale_bias`, (e) => ({ ...e, shape: [H, 1] }))).toEqual([
      ["error", "description-mismatch", `${x}.down_proj.scale_bias`],
    ]);
    expect(es(`${x}.up_proj.scale_bias`, (e) => ({ ...e, shape: [I, 16] }))).toEqual([
      ["error", "description-mismatch", `${x}.up_proj.scale_bias`],
    ]);
    expect(es(`${x}.up_proj.scale_bias`, () => null)).toEqual([
      ["error", "description-mismatch", `${x}.up_proj.weight`],
    ]);
  });

  it("W4A8_DYNAMIC: group_size > 0 is rejected, version 1.0.0 expected; group_size alone is fine for W8A8", () => {
    const gs = (d: Record<string, unknown>) => (d.group_size = 64);
    expect(brief(check(model({ w4a8: true }), { edit: gs }))).toEqual([
      ["error", "description-mismatch", null],
    ]);
    expect(check(model(), { edit: gs })).toEqual([]);
    expect(brief(check(model(), { edit: (d) => (d.group_size = -1) }))).toEqual([
      ["error", "bad-description", null],
    ]);
    const v = check(model({ w4a8: true }), { edit: (d) => delete d.version });
    expect(brief(v)).toEqual([["warning", "description-mismatch", null]]);
  });

  it("a (type, layer) vllm-ascend does not register: W4A8_DYNAMIC on a linear, an unknown type", () => {
    const o = "model.layers.0.self_attn.o_proj";
    const es = model().filter((e) => !e.name.startsWith(o));
    const linear = [...es, ...w4a8(o, H, 64)];
    expect(brief(check(linear))).toEqual([["error", "ascend-unsupported", `${o}.weight`]]);
    const unknown = check(model(), { edit: (d) => (d[`${o}.weight`] = "W3A7") });
    expect(brief(unknown)).toContainEqual(["error", "ascend-unsupported", `${o}.weight`]);
  });

  it("kv_b_proj must be FLOAT (mla_v1.py assert)", () => {
    const kv = "model.layers.1.self_attn.kv_b_proj";
    const es = [...model().filter((e) => !e.name.startsWith(kv)), ...w8a8(kv, 96, 32)];
    const p = check(es);
    expect(brief(p)).toEqual([["error", "ascend-unsupported", `${kv}.weight`]]);
    expect(p[0].message).toMatch(/kv_b_proj is unquantized/);
  });

  it("FLOAT layers: a float weight and no quantization parameters", () => {
    const kv = "model.layers.1.self_attn.kv_b_proj.weight";
    expect(brief(check(swap(model(), kv, (e) => ({ ...e, dtype: "I8" }))))).toEqual([
      ["error", "description-mismatch", kv],
    ]);
    const extra = [...model(), float("model.layers.1.self_attn.kv_b_proj.weight_scale", [96, 1], "F32")];
    expect(brief(check(extra))).toEqual([
      ["error", "description-mismatch", "model.layers.1.self_attn.kv_b_proj.weight_scale"],
    ]);
  });

  it("fused modules share one type: q_a + kv_a, gate + up, and every expert follows expert 0", () => {
    // Every tag of the layer changed (a lower-priority or unlisted type, so model_quant_type stays).
    const type = (base: string, ty: AscendQuantType) => (d: Record<string, unknown>) => {
      for (const s of [".weight", ".weight_scale", ".weight_offset"]) d[`${base}${s}`] = ty;
    };
    const kv = "model.layers.0.self_attn.kv_a_proj_with_mqa";
    expect(brief(check(model(), { edit: type(kv, "W8A16") }))).toEqual([
      ["error", "ascend-unsupported", `${kv}.weight`],
    ]);
    const up = "model.layers.0.mlp.up_proj";
    expect(brief(check(model(), { edit: type(up, "W8A16") }))).toEqual([
      ["error", "ascend-unsupported", `${up}.weight`],
    ]);
    const e1 = "model.layers.1.mlp.experts.1.down_proj";
    const p = check(model(), { edit: type(e1, "W8A8FP8_DYNAMIC") });
    expect(brief(p)).toEqual([["error", "ascend-unsupported", `${e1}.weight`]]);
    expect(p[0].message).toMatch(/model\.layers\.1\.mlp\.experts\.0\.gate_proj\.weight is W8A8_DYNAMIC/);
    // Expert 0's own down_proj disagreeing with its gate_proj.
    const e0 = "model.layers.1.mlp.experts.0.down_proj";
    expect(brief(check(model(), { edit: type(e0, "W8A8FP8_DYNAMIC") }))).toEqual([
      ["error", "ascend-unsupported", `${e0}.weight`],
    ]);
  });

  it("config.json must not keep quantization_config; no weight_scale_inv may be left", () => {
    const qc = { quantization_config: { quant_method: "fp8" } };
    const p = check(model(), { config: { ...CONFIG, ...qc } });
    expect(p).toEqual([
      expect.objectContaining({ severity: "error", code: "config-mismatch", file: "config.json" }),
    ]);
    const text = check(model(), { config: { ...CONFIG, text_config: qc } });
    expect(text[0].message).toMatch(/^text_config\.quantization_config/);
    expect(check(model(), { config: null })).toEqual([]);
    const inv = "model.layers.0.mlp.down_proj.weight_scale_inv";
    const es = [...model(), float(inv, [1, 1], "F32")];
    const left = check(es, { tensors: es });
    expect(brief(left)).toEqual([["error", "orphan-scale", inv]]);
    expect(left[0].file).toBeNull();
  });
});

describe("isDeepSeekStyle", () => {
  it("reads model_type, or finds MLA's kv_a_proj_with_mqa", () => {
    expect(isDeepSeekStyle({ model_type: "kimi_k2" }, [])).toBe(true);
    expect(isDeepSeekStyle({ model_type: "llama" }, [])).toBe(false);
    expect(isDeepSeekStyle(null, model())).toBe(true);
    expect(isDeepSeekStyle(null, [float("model.layers.0.self_attn.q_proj.weight", [4, 4])])).toBe(false);
  });
});
