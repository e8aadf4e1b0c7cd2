import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fp8kitError } from "../../src/errors.js";
import { detectReportLayout, inspectCheckpoint, summarizeConfig } from "../../src/report/index.js";
import { NodeCheckpointDir } from "../../src/report/node.js";
import { writeShardedCheckpoint } from "../../src/safetensors/node.js";
import { CONFIG_FIXTURE, headerBytes, PROJECTIONS, ST_FIXTURES, writeDeepSeekCheckpoint } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "fp8kit-inspect-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const CLI = join(import.meta.dirname, "..", "..", "dist", "cli", "main.js");
const FP8 = join(tmp, "fp8");

beforeAll(async () => {
  await writeDeepSeekCheckpoint(FP8, { layers: 3 });
});

const inspect = async (p: string, filter?: string[]) =>
  inspectCheckpoint(await NodeCheckpointDir.open(p), { filter });

describe("inspect", () => {
  it("reads the vendored DeepSeek-V3 config", () => {
    const a = summarizeConfig(JSON.parse(readFileSync(CONFIG_FIXTURE, "utf8")));
    expect(a).toMatchObject({
      modelType: "deepseek_v3",
      hiddenSize: 7168,
      numLayers: 61,
      numExperts: 256,
      numExpertsPerToken: 8,
    });
  });

  it("describes a generated DeepSeek block-FP8 checkpoint", async () => {
    const r = await inspect(FP8);
    expect(r.schema).toBe("fp8kit.inspect/1");
    expect(r.layout).toMatchObject({
      kind: "fp8-block",
      scaleFmt: "float",
      block: [128, 128],
      quantizedWeights: 12,
    });
    expect(r.layout.scaleDtypes).toEqual({ F32: 12 });
    // Parameters by hand: embedding 64x256, 3 norms of 256, 12 projections of 384x256; scales not counted.
    expect(r.sizes.parameters).toBe(64 * 256 + 3 * 256 + 12 * 384 * 256);
    expect(r.sizes.scaleElements).toBe(12 * 6);
    const f8 = r.sizes.bytesByDtype.find((d) => d.dtype === "F8_E4M3");
    expect(f8).toEqual({ dtype: "F8_E4M3", tensors: 12, bytes: 12 * 384 * 256 });
    expect(r.shards).toBeGreaterThan(1);
    expect(r.problems).toEqual([]);
    const byTarget = Object.fromEntries(r.compatibility.map((c) => [c.target, c]));
    expect(byTarget["vllm-sglang-hopper"].status).toBe("loads");
    expect(byTarget["vllm-sglang-blackwell"]).toMatchObject({ status: "requantizes", tensors: 12 });
    expect(byTarget["ascend-910b"]).toMatchObject({ status: "needs-conversion", tensors: 12 });
    // DeepSeek-style (model_type deepseek_v3): Atlas A2/A3 get INT8 W8A8 rather than BF16.
    expect(byTarget["ascend-910b"].command).toMatch(/^fp8kit convert .* --to w8a8$/);
    expect(byTarget.cpu.command).toMatch(/^fp8kit convert .* --to bf16$/);
    expect(byTarget["ascend-950"].status).toBe("loads");
    expect(byTarget.cpu.status).toBe("needs-conversion");
  });

  it("finds the weights whose TP partitions split a 128x128 block", async () => {
    const r = await inspect(FP8);
    const at = (tp: number) => r.tensorParallel.find((t) => t.tp === tp)!;
    expect(at(1).ok).toBe(true);
    // Closed form: column-parallel (q_b, gate: 384 rows) and row-parallel (o, down: 384 cols) split
    // 384 -> 192 (tp=2), 96 (4), 48 (8): none a multiple of 128. 384 = 3 x 128, so every tp > 1 fails.
    for (const tp of [2, 4, 8]) {
      expect(at(tp).checked).toBe(12);
      expect(at(tp).problems).toHaveLength(12);
      expect(new Set(at(tp).problems.map((p) => p.reason))).toEqual(new Set(["splits-block"]));
    }
    const o = at(2).problems.find((p) => p.tensor.endsWith("o_proj.weight"))!;
    expect(o).toMatchObject({ style: "row", dim: 1, size: 384, partition: 192, block: 128 });
    const q = at(2).problems.find((p) => p.tensor.endsWith("q_b_proj.weight"))!;
    expect(q).toMatchObject({ style: "column", dim: 0, size: 384, partition: 192 });
  });

  it("filters the tensor table with a glob", async () => {
    const r = await inspect(FP8, ["**.o_proj.*"]);
    expect(r.tensors.map((t) => t.name).sort()).toEqual(
      [0, 1, 2]
        .flatMap((l) => [
          `model.layers.${l}.self_attn.o_proj.weight`,
          `model.layers.${l}.self_attn.o_proj.weight_scale_inv`,
        ])
        .sort(),
    );
    expect(r.tensors.find((t) => t.name.endsWith(".weight"))).toMatchObject({
      role: "weight",
      block: [128, 128],
    });
  });

  it("reads only headers, config and index of a 160-shard checkpoint", async () => {
    const dir = join(tmp, "many");
    mkdirSync(dir);
    const tensors = Array.from({ length: 160 }, (_, i) => [
      { name: `model.layers.${i}.mlp.down_proj.weight`, dtype: "F8_E4M3" as const, shape: [128, 256] },
      { name: `model.layers.${i}.mlp.down_proj.weight_scale_inv`, dtype: "F32" as const, shape: [1, 2] },
    ]).flat();
    await writeShardedCheckpoint(dir, tensors, (t) => new Uint8Array(t.byteLength).fill(0x38), {
      maxShardSize: 128 * 256 + 8,
    });
    writeFileSync(join(dir, "config.json"), readFileSync(CONFIG_FIXTURE));
    expect(readdirSync(dir).filter((f) => f.endsWith(".safetensors"))).toHaveLength(160);
    const d = await NodeCheckpointDir.open(dir);
    const r = await inspectCheckpoint(d);
    expect(r.shards).toBe(160);
    expect(r.layout.quantizedWeights).toBe(160);
    const expected =
      headerBytes(dir) +
      statSync(join(dir, "model.safetensors.index.json")).size +
      statSync(join(dir, "config.json")).size;
    expect(d.bytesRead).toBe(expected);
  });

  it("inspects every vendored fixture directory without throwing", async () => {
    for (const sub of [
      "candle-example-tensors",
      "compressed-tensors-hadamards",
      "hf2q-tiny-f16-unaligned",
      "safetensors-cpp-samples",
    ]) {
      const r = await inspect(join(ST_FIXTURES, sub));
      expect(r.layout.kind).toBe("unquantized");
      expect(r.sizes.tensors).toBeGreaterThan(0);
    }
    const sharded = await inspect(join(ST_FIXTURES, "safetensors-jl-dtypes-sharded", "sharded"));
    expect(sharded.shards).toBeGreaterThan(1);
    expect(sharded.problems).toEqual([]);
  });
});

describe("layout detection from headers", () => {
  const t = (name: string, dtype: string, shape: number[]) => ({ name, dtype, shape }) as never;
  it("gpt-oss MXFP4", () => {
    const l = detectReportLayout({ quantization_config: { quant_method: "mxfp4" } }, null, [
      t("model.layers.0.mlp.experts.gate_up_proj_blocks", "U8", [4, 512, 8, 16]),
      t("model.layers.0.mlp.experts.gate_up_proj_scales", "U8", [4, 512, 8]),
      t("model.layers.0.mlp.experts.down_proj_blocks", "U8", [4, 256, 8, 16]),
      t("model.layers.0.mlp.experts.down_proj_scales", "U8", [4, 256, 8]),
    ]);
    expect(l.kind).toBe("gpt-oss-mxfp4");
    expect(l.quantized[0]).toMatchObject({
      name: "model.layers.0.mlp.experts.gate_up_proj",
      shape: [4, 512, 256],
      block: [1, 32],
      packed: true,
    });
    expect(l.problems).toEqual([]);
  });
  it("compressed-tensors MXFP4, MXFP8 and ModelOpt NVFP4", () => {
    const ct4 = detectReportLayout({ quantization_config: { quant_method: "compressed-tensors" } }, null, [
      t("a.weight_packed", "U8", [64, 64]),
      t("a.weight_scale", "U8", [64, 4]),
    ]);
    expect(ct4).toMatchObject({ kind: "ct-mxfp4", problems: [] });
    const ct8 = detectReportLayout({ quantization_config: { quant_method: "compressed-tensors" } }, null, [
      t("a.weight", "F8_E4M3", [64, 128]),
      t("a.weight_scale", "U8", [64, 4]),
    ]);
    expect(ct8).toMatchObject({ kind: "ct-mxfp8", scaleFmt: "ue8m0", problems: [] });
    const mo = detectReportLayout(null, { quantization: { quant_algo: "NVFP4" } }, [
      t("a.weight", "U8", [64, 64]),
      t("a.weight_scale", "F8_E4M3", [64, 8]),
      t("a.weight_scale_2", "F32", []),
      t("a.input_scale", "F32", []),
    ]);
    expect(mo).toMatchObject({ kind: "modelopt-nvfp4", declared: "NVFP4", problems: [] });
    expect(mo.quantized[0]).toMatchObject({
      shape: [64, 128],
      block: [1, 16],
      tensorScale: { name: "a.weight_scale_2", mode: "multiply" },
    });
  });
});

describe("bad input", () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  it("a directory without safetensors", async () => {
    const dir = join(tmp, "empty");
    mkdirSync(dir);
    await expect(inspect(dir)).rejects.toThrow(Fp8kitError);
    const r = cli("inspect", dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^fp8kit: error: .*no model\.safetensors\.index\.json and no \.safetensors files/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
  it("a config.json that is not JSON", async () => {
    const dir = join(tmp, "badcfg");
    await writeDeepSeekCheckpoint(dir, { layers: 1 });
    writeFileSync(join(dir, "config.json"), "{ not json");
    await expect(inspect(dir)).rejects.toThrow(/config\.json: not valid JSON/);
    const r = cli("inspect", dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^fp8kit: error: .*config\.json: not valid JSON/);
  });
  it("an index pointing outside the directory", async () => {
    const dir = join(tmp, "escape");
    await writeDeepSeekCheckpoint(dir, { layers: 2 });
    const p = join(dir, "model.safetensors.index.json");
    const ix = JSON.parse(readFileSync(p, "utf8"));
    ix.weight_map["model.embed_tokens.weight"] = "../../etc/passwd";
    writeFileSync(p, JSON.stringify(ix));
    await expect(inspect(dir)).rejects.toThrow(/not a plain file name/);
    const r = cli("lint", dir);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(
      /error: model\.safetensors\.index\.json: .*not a plain file name.*\[bad-index\]/,
    );
  });
  it("an unreadable shard is a finding, not a stack trace", async () => {
    const dir = join(tmp, "trunc");
    await writeDeepSeekCheckpoint(dir, { layers: 2 });
    const shard =
      readdirSync(dir).find((f) => f.endsWith("-00001-of-00002.safetensors")) ??
      readdirSync(dir).find((f) => f.endsWith(".safetensors"))!;
    writeFileSync(join(dir, shard), readFileSync(join(dir, shard)).subarray(0, 100));
    const r = cli("inspect", dir);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`error ${shard}:`);
    expect(r.stderr).toBe("");
    expect(PROJECTIONS).toHaveLength(4);
  });
});
