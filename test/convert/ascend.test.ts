/**
 * `convert --to w8a8 / w4a8` (Ascend, issue 12) against an independent computation: every INT8 and
 * INT4 code, scale and scale_bias of the output equals test/convert/ascend-reference.ts's plain
 * transcription of msModelSlim's steps, byte for byte; FLOAT tensors equal its BF16 dequantization;
 * kept tensors are the input's bytes. Checked on the sample (partial 128-blocks, an MoE layer, the
 * MTP layer 2) and on a generated DeepSeek-layout checkpoint (partial blocks in rows and columns,
 * stacked experts `[E, out, in]`, an FP8 router gate, an MTP layer). Each output is also read the way
 * vllm-ascend loads it (test/convert/ascend-loader.ts), which must pass, and must fail on broken
 * copies. Then `--mtp drop`, `--part`/`--finalize`, `--resume` and worker threads against a single
 * run, and the options convert refuses. Two tests run the built CLI (`npx tsc -p tsconfig.build.json`).
 */
import { cp, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint, type RunOptions } from "../../src/convert/node.js";
import { ascendLoadFailures, DESCRIPTION } from "./ascend-loader.js";
import { bf16Code, e4m3, refBand, refDequant, refPackInt4, refScaleBias } from "./ascend-reference.js";
import { hashTree, runCli, SAMPLE, tempDir } from "./helpers.js";
import { bf16Tensor, f32, fp8Block, readTensors, safetensorsBytes, type T } from "./layout-fixtures.js";

let work: string;
let generated: string;

beforeAll(async () => {
  work = await tempDir("fp8kit-ascend-");
  generated = join(work, "generated");
  await writeGenerated(generated);
});
afterAll(() => rm(work, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// A generated DeepSeek-layout checkpoint
// ---------------------------------------------------------------------------------------------

const H = 160;
/** num_hidden_layers of the generated model: layer 2 is its MTP layer. */
const GEN_LAYERS = 2;

/**
 * Layer 0 dense, layer 1 MoE with stacked experts (`[2, 130, 160]` gate_up, `[2, 160, 208]` down:
 * partial 128-blocks in rows and columns inside every expert) and an FP8 router gate, layer 2 the
 * MTP layer (per-expert MoE, eh_proj, shared_head), F32 e_score_correction_bias.
 */
async function writeGenerated(dir: string): Promise<void> {
  let seed = 1;
  const fp8 = (base: string, rows: number, cols: number, experts?: number) =>
    fp8Block(base, rows, cols, "_scale_inv", "F32", seed++, { experts }).tensors;
  const bf = (name: string, shape: number[]) => bf16Tensor(name, shape, seed++);
  const attn = (p: string) => [
    bf(`${p}.input_layernorm.weight`, [H]),
    bf(`${p}.post_attention_layernorm.weight`, [H]),
    ...fp8(`${p}.self_attn.q_a_proj`, 200, H),
    bf(`${p}.self_attn.q_a_layernorm.weight`, [200]),
    ...fp8(`${p}.self_attn.q_b_proj`, 136, 200),
    ...fp8(`${p}.self_attn.kv_a_proj_with_mqa`, 136, H),
    bf(`${p}.self_attn.kv_a_layernorm.weight`, [72]),
    ...fp8(`${p}.self_attn.kv_b_proj`, 192, 72),
    ...fp8(`${p}.self_attn.o_proj`, H, 130),
  ];
  const bias = (p: string): T => ({
    name: `${p}.mlp.gate.e_score_correction_bias`,
    dtype: "F32",
    shape: [2],
    data: f32(0.125, -3.5e-3),
  });
  const l0 = "model.layers.0";
  const l1 = "model.layers.1";
  const m = `model.layers.${GEN_LAYERS}`;
  const tensors: T[] = [
    bf("model.embed_tokens.weight", [32, H]),
    ...attn(l0),
    ...fp8(`${l0}.mlp.gate_proj`, 260, H),
    ...fp8(`${l0}.mlp.up_proj`, 260, H),
    ...fp8(`${l0}.mlp.down_proj`, H, 260),
    ...attn(l1),
    ...fp8(`${l1}.mlp.gate`, 2, H),
    bias(l1),
    ...fp8(`${l1}.mlp.experts.gate_up_proj`, 130, H, 2),
    ...fp8(`${l1}.mlp.experts.down_proj`, H, 208, 2),
    ...fp8(`${l1}.mlp.shared_experts.gate_proj`, 130, H),
    ...fp8(`${l1}.mlp.shared_experts.up_proj`, 130, H),
    ...fp8(`${l1}.mlp.shared_experts.down_proj`, H, 130),
    bf(`${m}.enorm.weight`, [H]),
    bf(`${m}.hnorm.weight`, [H]),
    bf(`${m}.eh_proj.weight`, [H, 2 * H]),
    ...attn(m),
    bf(`${m}.mlp.gate.weight`, [2, H]),
    bias(m),
    ...[0, 1].flatMap((e) => [
      ...fp8(`${m}.mlp.experts.${e}.gate_proj`, 130, H),
      ...fp8(`${m}.mlp.experts.${e}.up_proj`, 130, H),
      ...fp8(`${m}.mlp.experts.${e}.down_proj`, H, 130),
    ]),
    bf(`${m}.shared_head.norm.weight`, [H]),
    bf(`${m}.shared_head.head.weight`, [32, H]),
    bf("model.norm.weight", [H]),
    bf("lm_head.weight", [32, H]),
  ];
  await mkdir(dir, { recursive: true });
  // Two shards and their index, as a release is.
  const half = tensors.findIndex((t) => t.name.startsWith(`${l1}.`));
  const shards = [tensors.slice(0, half), tensors.slice(half)];
  const weightMap: Record<string, string> = {};
  for (const [i, s] of shards.entries()) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    await writeFile(join(dir, file), safetensorsBytes(s));
    for (const t of s) weightMap[t.name] = file;
  }
  await writeFile(
    join(dir, "model.safetensors.index.json"),
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
  await writeFile(
    join(dir, "config.json"),
    JSON.stringify({
      architectures: ["DeepseekV3ForCausalLM"],
      model_type: "deepseek_v3",
      hidden_size: H,
      num_hidden_layers: GEN_LAYERS,
      num_nextn_predict_layers: 1,
      first_k_dense_replace: 1,
      n_routed_experts: 2,
      torch_dtype: "bfloat16",
      quantization_config: {
        activation_scheme: "dynamic",
        fmt: "e4m3",
        quant_method: "fp8",
        weight_block_size: [128, 128],
      },
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// The output against the reference
// ---------------------------------------------------------------------------------------------

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const f32Of = (t: T) => new Float32Array(t.data.slice().buffer);

/** Index of the first differing byte (or the shorter length), -1 when equal. */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function expectBytes(got: T | undefined, want: Uint8Array, what: string): void {
  expect(got, `${what}: missing`).toBeDefined();
  expect(firstDiff(got!.data, want), `${what}: first differing byte`).toBe(-1);
}

/** msModelSlim's DeepSeek choice (ASCEND.md §7 step 2), stated here on its own. */
function quantizedByAscend(name: string): boolean {
  return (
    /\.(self_attn|mlp)\./.test(name) && !/\.kv_b_proj\./.test(name) && !/\.mlp\.gate\.weight$/.test(name)
  );
}
const isExpert = (name: string) =>
  /\.mlp\.experts\.(\d+\.)?(gate_proj|up_proj|down_proj|gate_up_proj)\.weight$/.test(name);

interface Expect {
  to: "w8a8" | "w4a8";
  mtp: "float" | "drop";
  layers: number;
}

interface Counts {
  int8: number;
  int4: number;
  dequantized: number;
  kept: number;
  mtp: number;
}

/**
 * Every tensor of `outDir` against the reference applied to `inDir`'s tensors: codes, scales,
 * offsets, scale_bias, BF16 dequantizations, kept bytes; the description's entries; nothing else.
 */
async function expectReference(inDir: string, outDir: string, e: Expect): Promise<Counts> {
  const input = readTensors(inDir);
  const output = readTensors(outDir);
  const desc = JSON.parse(await readFile(join(outDir, DESCRIPTION), "utf8")) as Record<string, unknown>;
  const counts: Counts = { int8: 0, int4: 0, dequantized: 0, kept: 0, mtp: 0 };
  const written = new Map<string, string>(); // output tensor -> its description type
  const mtpLayer = (name: string) => {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    return m !== null && Number(m[1]) >= e.layers;
  };
  for (const [name, t] of input) {
    if (name.endsWith("_scale_inv")) continue;
    const mtp = mtpLayer(name);
    if (mtp) counts.mtp++;
    if (mtp && e.mtp === "drop") continue;
    const scaleInv = input.get(`${name}_scale_inv`);
    if (!scaleInv) {
      // Not FP8: kept as it is (router gate, e_score_correction_bias, embeddings, norms, eh_proj).
      expectBytes(output.get(name), t.data, name);
      expect(output.get(name)!.dtype).toBe(t.dtype);
      expect(output.get(name)!.shape).toEqual(t.shape);
      written.set(name, "FLOAT");
      counts.kept++;
      continue;
    }
    expect(t.dtype).toBe("F8_E4M3");
    const rows = t.shape[t.shape.length - 2];
    const cols = t.shape[t.shape.length - 1];
    const lead = t.shape.slice(0, -2);
    const experts = lead.reduce((a, b) => a * b, 1);
    const w = refDequant(t.data, f32Of(scaleInv), rows, cols, experts);
    const p = name.slice(0, -".weight".length);
    if (mtp || !quantizedByAscend(name)) {
      // FLOAT: the BF16 dequantization (kv_b_proj, an FP8 router gate, the MTP layer).
      const want = Uint16Array.from(w, bf16Code);
      const got = output.get(name);
      expectBytes(got, bytesOf(want), `${name} (BF16 dequantization)`);
      expect(got!.dtype).toBe("BF16");
      expect(got!.shape).toEqual(t.shape);
      written.set(name, "FLOAT");
      counts.dequantized++;
      continue;
    }
    const int4 = e.to === "w4a8" && isExpert(name);
    const type = int4 ? "W4A8_DYNAMIC" : "W8A8_DYNAMIC";
    const ref = refBand(w, experts * rows, cols, int4 ? 4 : 8);
    const data = output.get(name);
    if (int4) {
      expectBytes(data, refPackInt4(ref.codes, experts * rows, cols), `${name} (packed INT4)`);
      expect(data!.shape).toEqual([...lead, rows / 2, cols]);
      const chunks = /down_proj\.weight$/.test(name) ? 16 : 1;
      const sb = output.get(`${p}.scale_bias`);
      expectBytes(
        sb,
        bytesOf(refScaleBias(ref.codes, ref.scales, experts * rows, cols, chunks)),
        `${p}.scale_bias`,
      );
      expect(sb!.dtype).toBe("F32");
      expect(sb!.shape).toEqual([...lead, rows, chunks]);
      written.set(`${p}.scale_bias`, type);
      counts.int4++;
    } else {
      expectBytes(data, bytesOf(ref.codes), `${name} (INT8)`);
      expect(data!.shape).toEqual(t.shape);
      counts.int8++;
    }
    expect(data!.dtype).toBe("I8");
    const scale = output.get(`${p}.weight_scale`);
    expectBytes(scale, bytesOf(ref.scales), `${p}.weight_scale`);
    const offset = output.get(`${p}.weight_offset`);
    expectBytes(offset, new Uint8Array(ref.scales.byteLength), `${p}.weight_offset (zeros)`);
    for (const s of [scale!, offset!]) {
      expect(s.dtype).toBe("F32");
      expect(s.shape).toEqual([...lead, rows, 1]);
    }
    for (const n of [name, `${p}.weight_scale`, `${p}.weight_offset`]) written.set(n, type);
  }
  // Nothing else is written, and the description has one entry per written tensor.
  expect([...output.keys()].sort()).toEqual([...written.keys()].sort());
  const entries = Object.fromEntries(Object.entries(desc).filter(([k]) => output.has(k) || written.has(k)));
  expect(entries).toEqual(Object.fromEntries(written));
  expect(desc).toMatchObject({ version: "1.0.0", model_quant_type: "W8A8_DYNAMIC", group_size: 0 });
  const globals = Object.keys(desc).filter((k) => !written.has(k));
  expect(globals.sort()).toEqual(["group_size", "metadata", "model_quant_type", "optional", "version"]);
  return counts;
}

async function convert(input: string, name: string, o: Partial<RunOptions>): Promise<string> {
  const output = join(work, name);
  const r = await convertCheckpoint({ input, output, workers: 0, verify: true, ...o });
  expect(r.status).toBe("complete");
  expect(r.verify!.mismatches).toEqual([]);
  return output;
}

/** The conversions several tests read, each run once (whichever test asks first), so tests run alone too. */
const RUNS = {
  "sample-w8a8": () => convert(SAMPLE, "sample-w8a8", { target: "w8a8", maxShardSize: "3MB" }),
  "sample-w4a8": () => convert(SAMPLE, "sample-w4a8", { target: "w4a8" }),
  "gen-w8a8": () => convert(generated, "gen-w8a8", { target: "w8a8", layout: "ascend" }),
  "gen-w4a8": () => convert(generated, "gen-w4a8", { target: "w4a8" }),
} as const;
const runs = new Map<keyof typeof RUNS, Promise<string>>();
function output(name: keyof typeof RUNS): Promise<string> {
  if (!runs.has(name)) runs.set(name, RUNS[name]());
  return runs.get(name)!;
}

/** `input` dequantized to BF16 by `--to bf16`, then converted with `o`: the BF16 model msModelSlim reads. */
async function viaBf16(input: string, name: string, o: Partial<RunOptions>): Promise<string> {
  const bf16In = join(work, `${name}-bf16`);
  const d = await convertCheckpoint({ input, output: bf16In, target: "bf16", workers: 0 });
  expect(d.status).toBe("complete");
  return convert(bf16In, name, o);
}

/** The tensors and description of `got` equal those of `want` (shards may differ). */
async function expectSameTensors(got: string, want: string): Promise<void> {
  const w = readTensors(want);
  const g = readTensors(got);
  expect([...g.keys()].sort()).toEqual([...w.keys()].sort());
  for (const [name, t] of w) {
    expectBytes(g.get(name), t.data, name);
    expect(g.get(name)!.shape, name).toEqual(t.shape);
  }
  const desc = async (dir: string) => JSON.parse(await readFile(join(dir, DESCRIPTION), "utf8"));
  expect(await desc(got)).toEqual(await desc(want));
}

const SAMPLE_LAYERS = 2;

describe("convert --to w8a8: every code and scale equals msModelSlim's steps", () => {
  it("the sample (partial blocks, MoE, MTP layer 2 FLOAT by default), in 3 MB shards", async () => {
    const out = await output("sample-w8a8");
    const c = await expectReference(SAMPLE, out, { to: "w8a8", mtp: "float", layers: SAMPLE_LAYERS });
    // Layer 0: 4 attention + 3 dense MLP; layer 1: 4 attention + 12 experts + 3 shared.
    // FLOAT from FP8: kv_b_proj of layers 0 and 1, the MTP layer's 5 attention + 15 MLP weights.
    expect(c).toMatchObject({ int8: 26, int4: 0, dequantized: 22 });
    expect(await ascendLoadFailures(out)).toEqual([]);
    const config = JSON.parse(await readFile(join(out, "config.json"), "utf8"));
    expect(config.quantization_config).toBeUndefined();
    expect(config.num_nextn_predict_layers).toBe(1);
  });

  it("a generated checkpoint: stacked experts, partial blocks in rows and columns, FP8 router, MTP", async () => {
    const out = await output("gen-w8a8");
    const c = await expectReference(generated, out, { to: "w8a8", mtp: "float", layers: GEN_LAYERS });
    // 4 attention weights in each of layers 0 and 1, 3 dense MLP, 2 stacked experts, 3 shared.
    expect(c).toMatchObject({ int8: 16, int4: 0 });
    // kv_b_proj x 2, the router gate, the MTP layer's 5 attention and 6 expert weights.
    expect(c.dequantized).toBe(2 + 1 + 5 + 6);
    expect(await ascendLoadFailures(out)).toEqual([]);
  });
  it("from BF16: the sample dequantized first gives the same tensors and description", async () => {
    // msModelSlim quantizes the BF16 model: fp8kit's FP8 path must equal its BF16 path.
    const out = await viaBf16(SAMPLE, "sample-bf16-w8a8", { target: "w8a8" });
    await expectSameTensors(out, await output("sample-w8a8"));
    expect(await ascendLoadFailures(out)).toEqual([]);
  });

  it("from BF16: stacked experts [E, out, in] named .weight are read as the FP8 path reads them", async () => {
    const out = await viaBf16(generated, "gen-bf16-w8a8", { target: "w8a8" });
    await expectSameTensors(out, await output("gen-w8a8"));
    expect(await ascendLoadFailures(out)).toEqual([]);
  });
});

describe("convert --to w4a8: INT4 routed experts, INT8 elsewhere", () => {
  it("the sample: per-expert gate/up/down packed INT4 with scale_bias [out, 1] / [out, 16]", async () => {
    const out = await output("sample-w4a8");
    const c = await expectReference(SAMPLE, out, { to: "w4a8", mtp: "float", layers: SAMPLE_LAYERS });
    expect(c).toMatchObject({ int8: 14, int4: 12, dequantized: 22 });
    const desc = JSON.parse(await readFile(join(out, DESCRIPTION), "utf8"));
    expect(desc["model.layers.1.mlp.experts.0.down_proj.weight"]).toBe("W4A8_DYNAMIC");
    expect(desc["model.layers.1.mlp.shared_experts.down_proj.weight"]).toBe("W8A8_DYNAMIC");
    expect(await ascendLoadFailures(out)).toEqual([]);
  });

  it("a generated checkpoint: stacked experts [E, out, in] packed per expert", async () => {
    const out = await output("gen-w4a8");
    const c = await expectReference(generated, out, { to: "w4a8", mtp: "float", layers: GEN_LAYERS });
    expect(c).toMatchObject({ int8: 14, int4: 2 });
    expect(await ascendLoadFailures(out)).toEqual([]);
  });

  it("a down projection whose input width is not 16 chunks: refused naming it, or written loadable", async () => {
    // scale_bias of a down projection is [out, 16] (ASCEND.md §4.2): 66 columns do not split in 16.
    const dir = join(work, "odd-down");
    await mkdir(dir, { recursive: true });
    const base = "model.layers.0.mlp.experts.0.down_proj";
    const tensors = [
      ...fp8Block(base, H, 66, "_scale_inv", "F32", 90).tensors,
      ...fp8Block("model.layers.0.mlp.experts.0.gate_proj", 66, H, "_scale_inv", "F32", 91).tensors,
      ...fp8Block("model.layers.0.mlp.experts.0.up_proj", 66, H, "_scale_inv", "F32", 92).tensors,
    ];
    await writeFile(join(dir, "model.safetensors"), safetensorsBytes(tensors));
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({
        model_type: "deepseek_v3",
        num_hidden_layers: 1,
        quantization_config: { quant_method: "fp8", weight_block_size: [128, 128] },
      }),
    );
    const out = join(work, "odd-down-out");
    const r = await convertCheckpoint({ input: dir, output: out, target: "w4a8", workers: 0 }).then(
      () => null,
      (err: Error) => err,
    );
    if (r === null) expect(await ascendLoadFailures(out)).toEqual([]);
    else {
      expect(r.name).toBe("ConvertError");
      expect(r.message).toContain(`${base}.weight`);
    }
  });
});

describe("--mtp", () => {
  it("drop: no tensor of layers >= num_hidden_layers, none described, num_nextn_predict_layers 0", async () => {
    const out = await convert(generated, "gen-drop", { target: "w8a8", mtp: "drop" });
    const c = await expectReference(generated, out, { to: "w8a8", mtp: "drop", layers: GEN_LAYERS });
    expect(c.mtp).toBeGreaterThan(20);
    const desc = JSON.parse(await readFile(join(out, DESCRIPTION), "utf8"));
    expect(Object.keys(desc).filter((k) => k.startsWith(`model.layers.${GEN_LAYERS}.`))).toEqual([]);
    expect([...readTensors(out).keys()].filter((k) => k.startsWith(`model.layers.${GEN_LAYERS}.`))).toEqual(
      [],
    );
    const config = JSON.parse(await readFile(join(out, "config.json"), "utf8"));
    expect(config.num_nextn_predict_layers).toBe(0);
    expect(config.num_hidden_layers).toBe(GEN_LAYERS);
    expect(await ascendLoadFailures(out)).toEqual([]);
  });

  it("float (the default): the MTP layer is BF16 and every tensor of it described FLOAT", async () => {
    const out = await output("gen-w8a8");
    const desc = JSON.parse(await readFile(join(out, DESCRIPTION), "utf8"));
    const mtp = [...readTensors(out).values()].filter((t) =>
      t.name.startsWith(`model.layers.${GEN_LAYERS}.`),
    );
    expect(mtp.length).toBeGreaterThan(20);
    for (const t of mtp) {
      expect(desc[t.name], t.name).toBe("FLOAT");
      expect(["BF16", "F32"], t.name).toContain(t.dtype);
    }
    const config = JSON.parse(await readFile(join(out, "config.json"), "utf8"));
    expect(config.num_nextn_predict_layers).toBe(1);
  });
});

describe("the loader-shaped reader fails on broken copies", () => {
  /** A copy of the generated W8A8 output, changed by `edit`, and what the reader says of it. */
  async function broken(name: string, edit: (dir: string) => Promise<void>): Promise<string[]> {
    const dir = join(work, `broken-${name}`);
    await cp(await output("gen-w8a8"), dir, { recursive: true });
    await edit(dir);
    return ascendLoadFailures(dir);
  }
  const editJson = async (file: string, f: (j: Record<string, unknown>) => void) => {
    const j = JSON.parse(await readFile(file, "utf8"));
    f(j);
    await writeFile(file, JSON.stringify(j, null, 2));
  };
  const O_PROJ = "model.layers.0.self_attn.o_proj";
  const KV_B = "model.layers.1.self_attn.kv_b_proj";

  it("a description entry removed: KeyError on that weight", async () => {
    const f = await broken("entry", (d) =>
      editJson(join(d, DESCRIPTION), (j) => {
        delete j[`${O_PROJ}.weight`];
      }),
    );
    expect(f).toEqual([`KeyError: '${O_PROJ}.weight' (no description entry)`]);
  });

  it("kv_b_proj described W8A8_DYNAMIC", async () => {
    const f = await broken("kvb", (d) =>
      editJson(join(d, DESCRIPTION), (j) => {
        j[`${KV_B}.weight`] = "W8A8_DYNAMIC";
      }),
    );
    expect(f.some((m) => m.startsWith(`${KV_B}.weight: kv_b_proj must be unquantized`))).toBe(true);
  });

  it("a weight_scale rewritten 1-D [out]", async () => {
    const name = `${O_PROJ}.weight_scale`;
    const f = await broken("scale-1d", async (d) => {
      const index = JSON.parse(await readFile(join(d, "model.safetensors.index.json"), "utf8"));
      const file = join(d, index.weight_map[name]);
      const b = await readFile(file);
      const n = Number(b.readBigUInt64LE(0));
      const header = JSON.parse(b.subarray(8, 8 + n).toString("utf8"));
      expect(header[name].shape).toEqual([H, 1]);
      header[name].shape = [H];
      const json = JSON.stringify(header).padEnd(n, " "); // shorter: same data offsets
      expect(json.length).toBe(n);
      b.write(json, 8, "utf8");
      await writeFile(file, b);
    });
    expect(f).toEqual([`${name}: shape [${H}], vllm-ascend allocates [${H}, 1]`]);
  });

  it("a stale quantization_config in config.json", async () => {
    const f = await broken("config", (d) =>
      editJson(join(d, "config.json"), (j) => {
        j.quantization_config = { quant_method: "fp8", weight_block_size: [128, 128] };
      }),
    );
    expect(f).toEqual(["config.json: has quantization_config (it would be used instead of the description)"]);
  });

  it("a second description file, and a description under another name only", async () => {
    const second = await broken("second", (d) =>
      cp(join(d, DESCRIPTION), join(d, "quant_model_description_w8a8_dynamic.json")),
    );
    expect(second).toHaveLength(1);
    expect(second[0]).toMatch(/^quant_model_description_w8a8_dynamic\.json: a second description file/);
    const renamed = await broken("renamed", async (d) => {
      await rename(join(d, DESCRIPTION), join(d, "quant_model_description_w8a8_dynamic.json"));
    });
    expect(renamed).toContain(`${DESCRIPTION}: missing (vllm-ascend requires this exact name)`);
  });

  it("the MoE layer's experts of different types, a stale index", async () => {
    const mixed = await broken("mixed", (d) =>
      editJson(join(d, DESCRIPTION), (j) => {
        j["model.layers.1.mlp.experts.down_proj.weight"] = "FLOAT";
      }),
    );
    expect(mixed.some((m) => /fused members have different types/.test(m))).toBe(true);
    const stale = await broken("index", (d) =>
      editJson(join(d, "model.safetensors.index.json"), (j) => {
        const map = j.weight_map as Record<string, string>;
        delete map[`${O_PROJ}.weight`];
      }),
    );
    expect(stale.some((m) => m.includes(`"${O_PROJ}.weight"`) && /not in the index/.test(m))).toBe(true);
  });
});

describe("streaming: --part and --resume give the single run's bytes", () => {
  const OPTIONS = { target: "w8a8", maxShardSize: "3MB", workers: 0 } as const;

  it("--part 1/2 + --part 2/2 + --finalize --verify", async () => {
    const reference = await hashTree(await output("sample-w8a8"));
    expect(Object.keys(reference).filter((f) => f.endsWith(".safetensors")).length).toBeGreaterThanOrEqual(3);
    const out = join(work, "parts");
    for (const part of [1, 2] as const) {
      const r = await convertCheckpoint({ input: SAMPLE, output: out, ...OPTIONS, part: [part, 2] });
      expect(r.status).toBe("part-done");
    }
    const fin = await convertCheckpoint({
      input: SAMPLE,
      output: out,
      ...OPTIONS,
      finalize: true,
      verify: true,
    });
    expect(fin.status).toBe("complete");
    expect(fin.verify!.mismatches).toEqual([]);
    expect(await hashTree(out)).toEqual(reference);
  });

  it("a run stopped after 40 tensors, then --resume --verify", async () => {
    const reference = await hashTree(await output("sample-w8a8"));
    const out = join(work, "resumed");
    const controller = new AbortController();
    const reason = new Error("stopped");
    const stopped = await convertCheckpoint({
      input: SAMPLE,
      output: out,
      ...OPTIONS,
      signal: controller.signal,
      afterTensor: (done) => {
        if (done === 40) controller.abort(reason);
      },
    }).then(
      (r) => r.status,
      (e) => e,
    );
    expect(stopped).toBe(reason);
    const r = await convertCheckpoint({ input: SAMPLE, output: out, ...OPTIONS, resume: true, verify: true });
    expect(r.status).toBe("complete");
    expect(r.shardsSkipped.length).toBeGreaterThanOrEqual(1);
    expect(r.verify!.mismatches).toEqual([]);
    expect(await hashTree(out)).toEqual(reference);
  });

  it("the CLI with 2 worker threads (the built dist) gives the in-process bytes", async () => {
    const reference = await hashTree(await output("sample-w8a8"));
    const out = join(work, "threads");
    const args = ["--to", "w8a8", "--max-shard-size", "3MB", "--workers", "2", "--verify"];
    const r = await runCli(["convert", SAMPLE, out, ...args]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ 0 mismatches/);
    expect(await hashTree(out)).toEqual(reference);
  });
});

describe("options convert refuses", () => {
  const refused = (o: Partial<RunOptions>) =>
    convertCheckpoint({ input: SAMPLE, output: join(work, "refused"), workers: 0, dryRun: true, ...o }).then(
      () => null,
      (e: Error & { code?: string }) => e,
    );

  it("--mtp with --to fp8 names the flag", async () => {
    const e = await refused({ target: "fp8", mtp: "drop" });
    expect(e?.name).toBe("ConvertError");
    expect(e?.code).toBe("invalid-option");
    expect(e?.message).toMatch(/--mtp/);
    const r = await runCli(["convert", SAMPLE, join(work, "refused-cli"), "--to", "fp8", "--mtp", "drop"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--mtp/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("--to w8a8 --layout compressed-tensors", async () => {
    const e = await refused({ target: "w8a8", layout: "compressed-tensors" });
    expect(e?.name).toBe("ConvertError");
    expect(e?.code).toBe("invalid-option");
    expect(e?.message).toMatch(/compressed-tensors/);
    expect(e?.message).toMatch(/w8a8/);
  });
});

// ---------------------------------------------------------------------------------------------
// Ascend 950: W8A8_MXFP8
// ---------------------------------------------------------------------------------------------

/** The 127 non-negative finite E4M3 (fn) magnitudes, by code (increasing with the code). */
const E4M3_POS = Array.from({ length: 0x7f }, (_, c) => e4m3(c));

/** E4M3 (fn) code of `v` by search over those magnitudes: nearest, ties to the even code, saturating at 448. */
function e4m3Nearest(v: number): number {
  const sign = v < 0 || Object.is(v, -0) ? 0x80 : 0;
  const a = Math.min(Math.abs(v), 448);
  let lo = 0;
  let hi = 0x7e;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (E4M3_POS[mid] <= a) lo = mid;
    else hi = mid;
  }
  const dl = a - E4M3_POS[lo];
  const dh = E4M3_POS[hi] - a;
  const c = dl < dh ? lo : dh < dl ? hi : (lo & 1) === 0 ? lo : hi;
  return sign | c;
}

/** OCP MX `floor`: 2^(floor(log2 amax) - 8) for E4M3, clamped to E8M0's [-127, 127]; as the stored byte. */
function floorScaleByte(amax: number): number {
  if (amax === 0) return 0;
  const k = Math.floor(Math.log2(amax));
  // Math.log2 is exact at powers of two; away from them one below / above is checked directly.
  const e = 2 ** k > amax ? k - 1 : 2 ** (k + 1) <= amax ? k + 1 : k;
  return Math.min(Math.max(e - 8, -127), 127) + 127;
}

describe("--layout ascend --to mxfp8 (Ascend 950 W8A8_MXFP8)", () => {
  it("from FP8 float scales: through BF16 as msModelSlim, OCP floor scales, E4M3 RNE; described W8A8_MXFP8, group_size 32", async () => {
    const out = await convert(SAMPLE, "sample-mxfp8", { layout: "ascend", target: "mxfp8" });
    expect(await ascendLoadFailures(out)).toEqual([]);
    const desc = JSON.parse(await readFile(join(out, DESCRIPTION), "utf8"));
    expect(desc).toMatchObject({ model_quant_type: "W8A8_MXFP8", group_size: 32 });
    const config = JSON.parse(await readFile(join(out, "config.json"), "utf8"));
    expect(config.quantization_config).toBeUndefined();
    expect(config.quantize).toBeUndefined();
    const input = readTensors(SAMPLE);
    const got = readTensors(out);
    let checked = 0;
    for (const [name, t] of got) {
      if (desc[name] !== "W8A8_MXFP8" || !name.endsWith(".weight")) continue;
      const [rows, cols] = t.shape;
      const base = name.slice(0, -".weight".length);
      const x = refDequant(input.get(name)!.data, f32Of(input.get(`${base}.weight_scale_inv`)!), rows, cols);
      const scale = got.get(`${base}.weight_scale`)!;
      expect(scale.dtype).toBe("U8");
      expect(scale.shape).toEqual([rows, cols / 32]);
      const wantCodes = new Uint8Array(rows * cols);
      const wantScale = new Uint8Array(rows * (cols / 32));
      for (let r = 0; r < rows; r++)
        for (let g = 0; g < cols / 32; g++) {
          let amax = 0;
          for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[r * cols + g * 32 + i]));
          const byte = floorScaleByte(amax);
          wantScale[r * (cols / 32) + g] = byte;
          for (let i = 0; i < 32; i++) {
            const k = r * cols + g * 32 + i;
            wantCodes[k] = e4m3Nearest(x[k] / 2 ** (byte - 127));
          }
        }
      expectBytes(t, wantCodes, name);
      expectBytes(scale, wantScale, `${base}.weight_scale`);
      checked++;
    }
    expect(checked).toBe(26);
  });

  it("from DeepSeek-V3.1 UE8M0: a relabel, every code byte kept", async () => {
    const v31 = join(work, "sample-ue8m0");
    const d = await convertCheckpoint({
      input: SAMPLE,
      output: v31,
      target: "fp8",
      scaleDtype: "e8m0",
      workers: 0,
    });
    expect(d.status).toBe("complete");
    const out = join(work, "ue8m0-mxfp8");
    const r = await convertCheckpoint({
      input: v31,
      output: out,
      layout: "ascend",
      target: "mxfp8",
      workers: 0,
      verify: true,
    });
    expect(r.verify!.mismatches).toEqual([]);
    const actions = new Set(
      // Layers 0 and 1 (layer 2 is the MTP layer, written FLOAT).
      r.tensors
        .filter((t) => t.stats && /^model\.layers\.[01]\.mlp\.experts\./.test(t.name))
        .map((t) => t.action),
    );
    expect(actions).toEqual(new Set(["relabel"]));
    expect(await ascendLoadFailures(out)).toEqual([]);
    const input = readTensors(v31);
    const got = readTensors(out);
    const desc = JSON.parse(await readFile(join(out, DESCRIPTION), "utf8"));
    for (const [name, t] of got)
      if (desc[name] === "W8A8_MXFP8" && name.endsWith(".weight"))
        expectBytes(t, input.get(name)!.data, name);
  });
});
