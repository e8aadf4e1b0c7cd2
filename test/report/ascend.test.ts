/**
 * inspect, lint and the compatibility matrix on Ascend msModelSlim-layout checkpoints (real files
 * written with the safetensors writer, a quant_model_description.json beside them).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type AscendQuantType, ascendDescription } from "../../src/checkpoint/index.js";
import { encode } from "../../src/formats/index.js";
import {
  compatibility,
  inspectCheckpoint,
  lintCheckpoint,
  type ReportLayout,
} from "../../src/report/index.js";
import { NodeCheckpointDir } from "../../src/report/node.js";
import { writeShardedCheckpoint } from "../../src/safetensors/node.js";
import { type GenTensor, rng, writeDeepSeekCheckpoint } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "fp8kit-ascend-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

type Tensor = GenTensor & { type: AscendQuantType };
const H = 64;
const I = 32;

const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
function int8(out: number, inn: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: out * inn }, () => Math.floor(r() * 256));
}
const bf16 = (shape: number[], seed: number) => {
  const r = rng(seed);
  const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() - 0.5);
  return bytes(encode("bfloat16", x));
};
const f32 = (count: number, v: number) => bytes(new Float32Array(count).fill(v));

/** W8A8_DYNAMIC linear: I8 [out, in], F32 scale 0.01 and zero offset [out, 1]. */
const w8a8 = (base: string, out: number, inn: number, seed: number): Tensor[] => [
  {
    name: `${base}.weight`,
    dtype: "I8",
    shape: [out, inn],
    data: int8(out, inn, seed),
    type: "W8A8_DYNAMIC",
  },
  { name: `${base}.weight_scale`, dtype: "F32", shape: [out, 1], data: f32(out, 0.01), type: "W8A8_DYNAMIC" },
  { name: `${base}.weight_offset`, dtype: "F32", shape: [out, 1], data: f32(out, 0), type: "W8A8_DYNAMIC" },
];
const float = (name: string, shape: number[], seed: number): Tensor => ({
  name,
  dtype: "BF16",
  shape,
  data: bf16(shape, seed),
  type: "FLOAT",
});

/** Layer 0 dense, layer 1 MoE with two routed experts and a shared expert; kv_b_proj and the router FLOAT. */
function tensors(): Tensor[] {
  const out: Tensor[] = [float("model.embed_tokens.weight", [100, H], 1)];
  for (const l of [0, 1]) {
    const p = `model.layers.${l}`;
    const s = 100 * (l + 1);
    out.push(float(`${p}.input_layernorm.weight`, [H], s));
    out.push(...w8a8(`${p}.self_attn.q_a_proj`, 48, H, s + 1));
    out.push(...w8a8(`${p}.self_attn.kv_a_proj_with_mqa`, 40, H, s + 2));
    out.push(float(`${p}.self_attn.kv_b_proj.weight`, [96, 32], s + 3));
    out.push(...w8a8(`${p}.self_attn.o_proj`, H, 64, s + 4));
    const mlp =
      l === 0 ? [`${p}.mlp`] : [`${p}.mlp.experts.0`, `${p}.mlp.experts.1`, `${p}.mlp.shared_experts`];
    if (l === 1) out.push(float(`${p}.mlp.gate.weight`, [2, H], s + 5));
    mlp.forEach((m, k) => {
      out.push(
        ...w8a8(`${m}.gate_proj`, I, H, s + 10 * k + 6),
        ...w8a8(`${m}.up_proj`, I, H, s + 10 * k + 7),
      );
      out.push(...w8a8(`${m}.down_proj`, H, I, s + 10 * k + 8));
    });
  }
  out.push(float("model.norm.weight", [H], 7), float("lm_head.weight", [100, H], 8));
  return out;
}

interface AscendOptions {
  mutate?: (ts: Tensor[]) => void;
  /** Edit the description object before it is written; `"raw"` writes this text instead. */
  description?: ((d: Record<string, unknown>) => void) | { raw: string };
  mutateConfig?: (c: Record<string, unknown>) => void;
}

/** Writes an Ascend W8A8_DYNAMIC checkpoint the way fp8kit's writer lays it out; returns its directory. */
async function writeAscend(o: AscendOptions = {}): Promise<string> {
  const dir = join(tmp, `a${n++}`);
  mkdirSync(dir, { recursive: true });
  const ts = tensors();
  o.mutate?.(ts);
  const config: Record<string, unknown> = {
    architectures: ["DeepseekV3ForCausalLM"],
    model_type: "deepseek_v3",
    hidden_size: H,
    num_hidden_layers: 2,
    vocab_size: 100,
    quantize: "w8a8_dynamic",
  };
  o.mutateConfig?.(config);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const d = ascendDescription(ts.map((t) => ({ name: t.name, type: t.type })));
  if (typeof o.description === "function") o.description(d);
  const text = o.description && "raw" in o.description ? o.description.raw : JSON.stringify(d);
  writeFileSync(join(dir, "quant_model_description.json"), text);
  const byName = new Map(ts.map((t) => [t.name, t]));
  await writeShardedCheckpoint(dir, ts, (info) => byName.get(info.name)!.data, { maxShardSize: 40_000 });
  return dir;
}

const lint = async (dir: string) => lintCheckpoint(await NodeCheckpointDir.open(dir));
const inspect = async (dir: string) => inspectCheckpoint(await NodeCheckpointDir.open(dir), { path: dir });
const byTarget = (cs: ReturnType<typeof compatibility>) => Object.fromEntries(cs.map((c) => [c.target, c]));

describe("Ascend layout: lint", () => {
  it("a sound W8A8_DYNAMIC checkpoint lints clean", async () => {
    const r = await lint(await writeAscend());
    expect(r.findings).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it("a .weight with no description entry is an error naming the tensor and the file", async () => {
    const w = "model.layers.1.mlp.experts.1.down_proj.weight";
    const r = await lint(await writeAscend({ description: (d) => delete d[w] }));
    expect(r.findings).toEqual([
      expect.objectContaining({
        severity: "error",
        code: "description-missing-entry",
        file: "quant_model_description.json",
        tensor: w,
      }),
    ]);
    expect(r.ok).toBe(false);
  });

  it("a quantized kv_b_proj is an error naming it", async () => {
    const kv = "model.layers.0.self_attn.kv_b_proj";
    const r = await lint(
      await writeAscend({
        mutate: (ts) => {
          ts.splice(
            ts.findIndex((t) => t.name === `${kv}.weight`),
            1,
            ...w8a8(kv, 96, 32, 9),
          );
        },
      }),
    );
    expect(r.findings).toEqual([
      expect.objectContaining({ severity: "error", code: "ascend-unsupported", tensor: `${kv}.weight` }),
    ]);
  });

  it("a leftover quantization_config is one error on config.json", async () => {
    const r = await lint(
      await writeAscend({
        mutateConfig: (c) => (c.quantization_config = { quant_method: "fp8", weight_block_size: [128, 128] }),
      }),
    );
    expect(r.findings).toEqual([
      expect.objectContaining({
        severity: "error",
        code: "config-mismatch",
        file: "config.json",
        tensor: null,
      }),
    ]);
    expect(r.findings[0].message).toMatch(
      /quantization_config is present beside quant_model_description\.json/,
    );
  });

  it("a description that is not JSON is a bad-description error, and inspect still works", async () => {
    const dir = await writeAscend({ description: { raw: '{"version": ' } });
    const r = await lint(dir);
    expect(r.findings).toEqual([
      expect.objectContaining({ code: "bad-description", file: "quant_model_description.json" }),
    ]);
    const i = await inspect(dir);
    expect(i.ascend?.label).toMatch(/unreadable/);
  });
});

describe("Ascend layout: inspect and compatibility", () => {
  it("inspect names the Ascend layout and counts the description's types", async () => {
    const r = await inspect(await writeAscend());
    const all = tensors();
    const nFloat = all.filter((t) => t.type === "FLOAT").length;
    // By hand: layer 0 has q_a, kv_a, o, gate, up, down; layer 1 q_a, kv_a, o and 3 x (gate, up, down).
    expect(r.ascend).toEqual({
      file: "quant_model_description.json",
      label: "Ascend msModelSlim / vllm-ascend layout (quant_model_description.json: W8A8_DYNAMIC)",
      modelQuantType: "W8A8_DYNAMIC",
      version: "1.0.0",
      groupSize: 0,
      entries: all.length,
      types: { FLOAT: nFloat, W8A8_DYNAMIC: all.length - nFloat },
      quantizedWeights: 6 + 3 + 9,
    });
    // FLOAT: embedding, 2 input norms, 2 kv_b_proj, the router, model.norm, lm_head.
    expect(nFloat).toBe(8);
    expect(r.layout.kind).toBe("ascend-w8a8");
    expect(r.layout.quantizedWeights).toBe(18);
    const c = byTarget(r.compatibility);
    expect(c["ascend-910b"]).toMatchObject({ status: "loads", command: null });
    expect(c["ascend-910c"].status).toBe("loads");
    expect(c["vllm-sglang-hopper"].status).toBe("needs-conversion");
    expect(c.cpu.status).toBe("needs-conversion");
    // Offsets are zero points, not parameters: parameters are the I8 and BF16 elements only.
    const params = all.filter((t) => !/weight_(scale|offset)$/.test(t.name));
    expect(r.sizes.parameters).toBe(params.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0));
  });

  it("a checkpoint without the description has no ascend section", async () => {
    const dir = join(tmp, "fp8");
    await writeDeepSeekCheckpoint(dir, { layers: 1 });
    expect((await inspect(dir)).ascend).toBeNull();
  });

  it("a DeepSeek FP8 checkpoint: Ascend 910B/910C suggest --to w8a8; a Llama one keeps --to bf16", async () => {
    const ds = join(tmp, "ds-fp8");
    await writeDeepSeekCheckpoint(ds, { layers: 1 });
    const c = byTarget((await inspect(ds)).compatibility);
    for (const t of ["ascend-910b", "ascend-910c"]) {
      expect(c[t].status).toBe("needs-conversion");
      expect(c[t].command).toBe(`fp8kit convert ${ds} <out> --to w8a8`);
      expect(c[t].reason).toMatch(/INT8 W8A8_DYNAMIC, about half of BF16's memory/);
    }
    const llama = join(tmp, "llama-fp8");
    await writeDeepSeekCheckpoint(llama, { layers: 1, mutateConfig: (x) => (x.model_type = "llama") });
    const l = byTarget((await inspect(llama)).compatibility);
    expect(l["ascend-910b"].command).toBe(`fp8kit convert ${llama} <out> --to bf16`);
  });

  it("a DeepSeek BF16 checkpoint loads on Ascend 910B, with --to w8a8 offered", async () => {
    const dir = join(tmp, "ds-bf16");
    await writeDeepSeekCheckpoint(dir, { layers: 1, bf16: true });
    const c = byTarget((await inspect(dir)).compatibility);
    expect(c["ascend-910b"]).toMatchObject({
      status: "loads",
      command: `fp8kit convert ${dir} <out> --to w8a8`,
    });
    expect(c["vllm-sglang-hopper"]).toMatchObject({ status: "loads", command: null });
  });

  it("Ascend INT8 without its description does not load on vllm-ascend", () => {
    const layout = {
      kind: "ascend-w8a8",
      label: "",
      scaleFmt: null,
      block: null,
      quantized: [],
      plain: [],
      problems: [],
      declared: null,
    } as ReportLayout;
    const c = byTarget(compatibility(layout, "in", "out", { ascend: null }));
    expect(c["ascend-910b"]).toMatchObject({ status: "needs-conversion", command: null });
    expect(c["ascend-910b"].reason).toMatch(/no quant_model_description\.json/);
    const d = byTarget(compatibility(layout, "in", "out", { ascend: { modelQuantType: "W8A8_DYNAMIC" } }));
    expect(d["ascend-910b"].status).toBe("loads");
  });
});
