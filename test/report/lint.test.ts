import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Finding, lintCheckpoint } from "../../src/report/index.js";
import { NodeCheckpointDir } from "../../src/report/node.js";
import { editIndex, type GenOptions, headerBytes, ST_FIXTURES, writeDeepSeekCheckpoint } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "fp8kit-lint-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const CLI = join(import.meta.dirname, "..", "..", "dist", "cli", "main.js");
let n = 0;

async function lintOf(o: GenOptions, after?: (dir: string) => void) {
  const dir = join(tmp, `c${n++}`);
  await writeDeepSeekCheckpoint(dir, { layers: 2, ...o });
  after?.(dir);
  const d = await NodeCheckpointDir.open(dir);
  return { dir, d, r: await lintCheckpoint(d) };
}

const codes = (fs: readonly Finding[]) => fs.map((f) => f.code);
const O_SCALE = "model.layers.1.self_attn.o_proj.weight_scale_inv";

describe("lint", () => {
  it("a clean generated checkpoint has no findings, and lint reads no weight data", async () => {
    const { dir, d, r } = await lintOf({});
    expect(r.findings).toEqual([]);
    expect(r).toMatchObject({
      schema: "fp8kit.lint/1",
      ok: true,
      errors: 0,
      checked: { quantizedWeights: 8, scaleTensorsRead: 8 },
    });
    const files = ["model.safetensors.index.json", "config.json"].reduce(
      (s, f) => s + statSync(join(dir, f)).size,
      0,
    );
    expect(d.bytesRead).toBe(headerBytes(dir) + files + 8 * 6 * 4);
    const h = await NodeCheckpointDir.open(dir);
    await lintCheckpoint(h, { headersOnly: true });
    expect(h.bytesRead).toBe(headerBytes(dir) + files);
  });

  it("missing scale", async () => {
    const { r } = await lintOf({
      mutate: (ts) =>
        ts.splice(
          ts.findIndex((t) => t.name === O_SCALE),
          1,
        ),
    });
    const f = r.findings.find((x) => x.code === "missing-scale")!;
    expect(f).toMatchObject({ severity: "error", tensor: "model.layers.1.self_attn.o_proj.weight" });
    expect(f.file).toMatch(/^model-\d{5}-of-\d{5}\.safetensors$/);
    expect(f.fix).toMatch(/weight_scale_inv/);
    expect(r.ok).toBe(false);
  });

  it("wrong scale grid", async () => {
    const { r } = await lintOf({
      mutate: (ts) => {
        const t = ts.find((x) => x.name === O_SCALE)!;
        t.shape = [3, 2];
      },
    });
    const f = r.findings.find((x) => x.code === "scale-grid")!;
    expect(f).toMatchObject({ tensor: O_SCALE });
    expect(f.message).toMatch(/\[3,2\].*\[2,3\]/);
  });

  it("wrong weight_block_size in config", async () => {
    const { r } = await lintOf({
      mutateConfig: (c) => ((c.quantization_config as Record<string, unknown>).weight_block_size = [64, 64]),
    });
    expect(codes(r.findings).filter((c) => c === "scale-grid")).toHaveLength(8);
  });

  it("orphan scale and duplicate scale", async () => {
    const { r } = await lintOf({
      mutate: (ts) => {
        ts.push({
          name: "model.layers.0.mlp.up_proj.weight_scale_inv",
          dtype: "F32",
          shape: [1],
          data: new Uint8Array(4),
        });
        const s = ts.find((x) => x.name === O_SCALE)!;
        ts.push({ ...s, name: O_SCALE.replace("_inv", "") });
      },
    });
    expect(r.findings.find((f) => f.code === "orphan-scale")?.tensor).toBe(
      "model.layers.0.mlp.up_proj.weight_scale_inv",
    );
    expect(r.findings.find((f) => f.code === "duplicate-scale")?.tensor).toBe(
      "model.layers.1.self_attn.o_proj.weight",
    );
  });

  it("NaN, zero and negative scales", async () => {
    const { r } = await lintOf({
      mutate: (ts) => {
        const s = ts.find((x) => x.name === O_SCALE)!;
        const v = new Float32Array(s.data.slice().buffer);
        v[1] = Number.NaN;
        v[2] = 0;
        v[4] = -v[4];
        s.data = new Uint8Array(v.buffer);
      },
    });
    for (const code of ["scale-nan", "scale-zero", "scale-negative"]) {
      const f = r.findings.find((x) => x.code === code)!;
      expect(f).toMatchObject({ severity: "error", tensor: O_SCALE });
    }
    expect(r.findings.find((x) => x.code === "scale-nan")!.message).toMatch(
      /1 of 6 scales are NaN \(first at block \[0, 1\], flat index 1: NaN; the block would dequantize to NaN\)/,
    );
  });

  it("a scale so large that it overflows float32 (3e38 x 448) is an error; a subnormal one a warning", async () => {
    const { r } = await lintOf({
      mutate: (ts) => {
        const s = ts.find((x) => x.name === O_SCALE)!;
        const v = new Float32Array(s.data.slice().buffer);
        v[3] = 3e38; // 3e38 x 448 (E4M3's largest) = 1.3e41 > float32's 3.4e38
        v[5] = 2 ** -130; // below 2^-126: a float32 subnormal
        s.data = new Uint8Array(v.buffer);
      },
    });
    const scale = r.findings.filter((f) => f.tensor === O_SCALE);
    expect(scale.map((f) => [f.code, f.severity])).toEqual([
      ["scale-overflow", "error"],
      ["scale-subnormal", "warning"],
    ]);
    expect(scale[0].message).toMatch(
      /^1 of 6 scales are too large for float32 \(first at block \[1, 0\], flat index 3: 3e\+38; /,
    );
    expect(scale[1].message).toMatch(/first at block \[1, 2\], flat index 5: 7\.34684e-40; /);
    expect(scale[0].fix).toMatch(/recompute the scales of model\.layers\.1\.self_attn\.o_proj/);
    expect(r).toMatchObject({ ok: false, errors: 1, warnings: 1 });
  });

  it("index and shards disagree, in both directions, and total_size", async () => {
    const { r } = await lintOf({}, (dir) =>
      editIndex(dir, (ix) => {
        const shards = [...new Set(Object.values(ix.weight_map))];
        delete ix.weight_map["model.layers.0.input_layernorm.weight"];
        ix.weight_map["model.layers.9.ghost.weight"] = shards[0];
        const moved = Object.keys(ix.weight_map).find((k) => ix.weight_map[k] === shards[1])!;
        ix.weight_map[moved] = shards[0];
        ix.metadata.total_size = 12345;
      }),
    );
    expect(new Set(codes(r.findings))).toEqual(
      new Set(["index-extra-tensor", "index-missing-tensor", "index-wrong-shard", "index-total-size"]),
    );
    expect(r.findings.find((f) => f.code === "index-missing-tensor")?.tensor).toBe(
      "model.layers.9.ghost.weight",
    );
    expect(r.findings.find((f) => f.code === "index-extra-tensor")?.tensor).toBe(
      "model.layers.0.input_layernorm.weight",
    );
  });

  it("an index naming a missing shard, and a shard not in the index", async () => {
    const { r } = await lintOf({}, (dir) =>
      editIndex(dir, (ix) => {
        const first = Object.keys(ix.weight_map)[0];
        ix.weight_map[first] = "model-00099-of-00099.safetensors";
      }),
    );
    expect(codes(r.findings)).toContain("index-missing-shard");
  });

  it("config and tensors disagree", async () => {
    const a = await lintOf({
      bf16: true,
      mutateConfig: (c) => (c.quantization_config = { quant_method: "fp8" }),
    });
    expect(a.r.findings.map((f) => f.message).join("\n")).toMatch(
      /declares quant_method "fp8" but no quantized tensors/,
    );
    const b = await lintOf({ mutateConfig: (c) => delete c.quantization_config });
    expect(b.r.findings[0]).toMatchObject({ code: "config-mismatch", file: "config.json" });
    const c = await lintOf({ mutateConfig: (c) => (c.vocab_size = 999) });
    expect(c.r.findings[0]).toMatchObject({ code: "config-mismatch", tensor: "model.embed_tokens.weight" });
  });

  it("a truncated shard is a finding with the file and reason", async () => {
    const { r } = await lintOf({}, (dir) => {
      const shard = readdirSync(dir).find((f) => f.endsWith(".safetensors"))!;
      truncateSync(join(dir, shard), 200);
    });
    const f = r.findings.find((x) => x.code === "bad-header")!;
    expect(f.file).toMatch(/\.safetensors$/);
    expect(f.message.length).toBeGreaterThan(10);
  });

  it("the CLI exits 1 with findings and 0 when clean; --json has the documented shape", async () => {
    const bad = await lintOf({
      mutate: (ts) =>
        ts.splice(
          ts.findIndex((t) => t.name === O_SCALE),
          1,
        ),
    });
    const r1 = spawnSync(process.execPath, [CLI, "lint", bad.dir], { encoding: "utf8" });
    expect(r1.status).toBe(1);
    expect(r1.stdout).toMatch(
      /^error: model-.*: model\.layers\.1\.self_attn\.o_proj\.weight: .*\[missing-scale\]\n {2}fix: /m,
    );
    const good = await lintOf({});
    const r0 = spawnSync(process.execPath, [CLI, "lint", good.dir, "--json"], { encoding: "utf8" });
    expect(r0.status).toBe(0);
    const j = JSON.parse(r0.stdout);
    expect(Object.keys(j).sort()).toEqual([
      "checked",
      "errors",
      "findings",
      "ok",
      "path",
      "schema",
      "warnings",
    ]);
  });

  it("lints the vendored sharded fixture cleanly (apart from format metadata)", async () => {
    const r = await lintCheckpoint(
      await NodeCheckpointDir.open(join(ST_FIXTURES, "safetensors-jl-dtypes-sharded", "sharded")),
    );
    expect(r.errors).toBe(0);
  });
});
