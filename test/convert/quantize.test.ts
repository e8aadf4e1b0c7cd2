/**
 * BF16 -> FP8 UE8M0 (DeepGEMM per_block_cast_to_fp8(use_ue8m0=True)) and the MX layouts, checked
 * against independent computations: scales from 2^ceil(log2(max(amax, 1e-4) / 448)) with Math.log2,
 * and the E4M3 rounding-error bound on the dequantized values.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { makeDeepseekCheckpoint, TINY } from "../../scripts/make-sample.js";
import { convertCheckpoint } from "../../src/convert/node.js";
import { openCheckpoint } from "../../src/safetensors/node.js";
import { tempDir } from "./helpers.js";

function e4m3(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const e = (code >> 3) & 15;
  const m = code & 7;
  return e === 0 ? sign * (m / 8) * 2 ** -6 : sign * (1 + m / 8) * 2 ** (e - 7);
}
const bf16 = (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0];
const e2m1 = (c: number) => (c & 8 ? -1 : 1) * [0, 0.5, 1, 1.5, 2, 3, 4, 6][c & 7];

let work: string;
let bf16In: string;
beforeAll(async () => {
  work = await tempDir();
  bf16In = join(work, "in-bf16");
  await makeDeepseekCheckpoint(bf16In, {
    format: "bf16",
    dims: { ...TINY, routedExperts: 2, vocab: 256 },
    maxShardSize: "1MB",
  });
});

/** What transformers / vLLM rely on when loading: index total_size, one shard per tensor, format pt. */
async function expectLoadable(dir: string): Promise<void> {
  const index = JSON.parse(await readFile(join(dir, "model.safetensors.index.json"), "utf8"));
  const ck = await openCheckpoint(dir);
  expect(index.metadata.total_size).toBe(ck.tensors.reduce((s, t) => s + t.byteLength, 0));
  expect(Object.keys(index.weight_map).sort()).toEqual(ck.tensors.map((t) => t.name).sort());
  for (const t of ck.tensors) expect(index.weight_map[t.name]).toBe(t.shard);
  for (const s of ck.shards) expect(ck.shardMetadata(s)).toEqual({ format: "pt" });
  await ck.close();
}

async function values(dir: string, name: string): Promise<{ x: Float32Array; shape: number[] }> {
  const ck = await openCheckpoint(dir);
  const t = ck.get(name);
  const b = await ck.readBytes(name);
  await ck.close();
  const h = new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  return { x: Float32Array.from(h, (v) => bf16(v)), shape: t.shape };
}

describe("bf16 -> fp8 ue8m0", () => {
  it("every scale is 2^ceil(log2(max(amax,1e-4)/448)) and every value is within the E4M3 bound", async () => {
    const out = join(work, "fp8");
    const res = await convertCheckpoint({
      input: bf16In,
      output: out,
      target: "fp8",
      workers: 0,
      scaleDtype: "e8m0",
    });
    expect(res.status).toBe("complete");
    const ck = await openCheckpoint(out);
    const quantized = ck.tensors.filter((t) => t.dtype === "F8_E4M3");
    expect(quantized.length).toBe(res.tensors.filter((t) => t.action === "quantize").length);
    expect(quantized.length).toBeGreaterThan(20);
    for (const t of quantized) {
      const { x, shape } = await values(bf16In, t.name);
      const [rows, cols] = shape;
      const st = ck.get(`${t.name}_scale_inv`);
      expect(st.dtype).toBe("F8_E8M0");
      expect(st.shape).toEqual([Math.ceil(rows / 128), Math.ceil(cols / 128)]);
      const sbytes = await ck.readBytes(st.name);
      const codes = await ck.readBytes(t.name);
      const sc = Math.ceil(cols / 128);
      const amax = new Float64Array(st.shape[0] * sc);
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) {
          const k = Math.floor(r / 128) * sc + Math.floor(c / 128);
          amax[k] = Math.max(amax[k], Math.abs(x[r * cols + c]));
        }
      for (let k = 0; k < amax.length; k++) {
        const want = Math.ceil(Math.log2(Math.fround(Math.max(amax[k], Math.fround(1e-4)) / 448)));
        expect(sbytes[k] - 127, `${st.name}[${k}]`).toBe(want);
      }
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) {
          const i = r * cols + c;
          const s = 2 ** (sbytes[Math.floor(r / 128) * sc + Math.floor(c / 128)] - 127);
          const y = e4m3(codes[i]) * s;
          const bound = Math.abs(x[i]) * 2 ** -4 + 2 ** -10 * s;
          if (!(Math.abs(y - x[i]) <= bound))
            expect(`${t.name}[${r},${c}] ${y} vs ${x[i]}`).toBe("within bound");
        }
    }
    await ck.close();
    await expectLoadable(out);
    const config = JSON.parse(await readFile(join(out, "config.json"), "utf8"));
    expect(config.quantization_config).toEqual({
      activation_scheme: "dynamic",
      fmt: "e4m3",
      quant_method: "fp8",
      scale_fmt: "ue8m0",
      weight_block_size: [128, 128],
    });
  });

  it("keeps what DeepSeek keeps (embeddings, heads, norms, router, MTP extras)", async () => {
    const ck = await openCheckpoint(join(work, "fp8"));
    for (const name of [
      "model.embed_tokens.weight",
      "lm_head.weight",
      "model.layers.1.mlp.gate.weight",
      "model.layers.2.eh_proj.weight",
      "model.layers.2.shared_head.head.weight",
      "model.layers.0.input_layernorm.weight",
    ])
      expect(ck.get(name).dtype, name).toBe("BF16");
    expect(ck.get("model.layers.1.mlp.gate.e_score_correction_bias").dtype).toBe("F32");
    expect(ck.get("model.layers.2.self_attn.kv_a_proj_with_mqa.weight").dtype).toBe("F8_E4M3");
    await ck.close();
  });
});

describe("fp8 float scales -> fp8 ue8m0 (Blackwell requantization)", () => {
  it("reports the error it adds per tensor and stores F32 powers of two", async () => {
    const fp8f = join(work, "fp8-float");
    await convertCheckpoint({ input: bf16In, output: fp8f, target: "fp8", scaleFmt: "float", workers: 0 });
    const out = join(work, "fp8-requant");
    const res = await convertCheckpoint({
      input: fp8f,
      output: out,
      target: "fp8",
      workers: 0,
      verify: true,
    });
    expect(res.plan.layout.kind).toBe("fp8-block");
    expect(res.plan.layout.scaleFmt).toBe("float");
    const req = res.tensors.filter((t) => t.action === "requantize");
    expect(req.length).toBeGreaterThan(20);
    for (const t of req) expect(t.stats!.ee).toBeGreaterThan(0);
    expect(res.verify!.mismatches).toEqual([]);
    const ck = await openCheckpoint(out);
    const s = ck.get("model.layers.0.self_attn.o_proj.weight_scale_inv");
    expect(s.dtype).toBe("F32");
    const b = await ck.readBytes(s.name);
    const u = new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    for (const v of u) expect(v & 0x7fffff).toBe(0);
    await ck.close();
  });
});

describe("MX targets (compressed-tensors layouts)", () => {
  it("mxfp8 and mxfp4 write U8 E8M0 scales per 32 and the compressed-tensors config", async () => {
    for (const target of ["mxfp8", "mxfp4"] as const) {
      const out = join(work, target);
      const res = await convertCheckpoint({ input: bf16In, output: out, target, workers: 0, verify: true });
      expect(res.verify!.mismatches).toEqual([]);
      const ck = await openCheckpoint(out);
      const base = "model.layers.0.mlp.down_proj.weight"; // [384, 704]
      const { x } = await values(bf16In, base);
      const scale = ck.get(`${base}_scale`);
      expect(scale.dtype).toBe("U8");
      expect(scale.shape).toEqual([384, 22]);
      const sb = await ck.readBytes(scale.name);
      if (target === "mxfp8") {
        const d = ck.get(base);
        expect(d.dtype).toBe("F8_E4M3");
        const codes = await ck.readBytes(base);
        for (let i = 0; i < x.length; i += 7) {
          const s = 2 ** (sb[Math.floor(i / 32)] - 127);
          const y = e4m3(codes[i]) * s;
          // Under FLOOR amax lies in [256, 512) * s and values beyond 448 * s saturate.
          if (Math.abs(x[i]) / s > 448) expect(Math.abs(y)).toBe(448 * s);
          else
            expect(Math.abs(y - x[i])).toBeLessThanOrEqual(Math.abs(x[i]) * 2 ** -4 + 2 ** -10 * s + 1e-30);
        }
      } else {
        const d = ck.get(`${base}_packed`);
        expect(d.dtype).toBe("U8");
        expect(d.shape).toEqual([384, 352]);
        const packed = await ck.readBytes(d.name);
        // Group scale: compressed-tensors' rule (the layout's default), 127 + E - 2 with
        // E = floor(log2(amax)), plus one when amax / 2^E >= 1.75 (OCP's floor would not add it).
        for (let g = 0; g < 22 * 384; g += 13) {
          let amax = 0;
          for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[g * 32 + i]));
          const E = Math.floor(Math.log2(amax));
          expect(sb[g]).toBe(127 + E + (amax / 2 ** E >= 1.75 ? 1 : 0) - 2);
          const i = g * 32 + 5;
          const code = (packed[i >> 1] >> (i & 1 ? 4 : 0)) & 15;
          expect(Math.abs(e2m1(code) * 2 ** (sb[g] - 127) - x[i])).toBeLessThanOrEqual(
            2 ** (sb[g] - 127) * 2,
          );
        }
      }
      const qc = JSON.parse(await readFile(join(out, "config.json"), "utf8")).quantization_config;
      expect(qc.format).toBe(target === "mxfp8" ? "mxfp8-quantized" : "mxfp4-pack-quantized");
      expect(qc.ignore).toContain("lm_head");
      await ck.close();
      await expectLoadable(out);
    }
  });
});
