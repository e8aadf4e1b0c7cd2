/**
 * FP8 -> BF16 on the DeepSeek-layout sample against an independent, deliberately simple
 * computation of DeepSeek's fp8_cast_bf16.py (Triton `weight_dequant`): decode E4M3 by its closed
 * form, multiply by the block's scale_inv in float32, round to BF16 to nearest-even by hand.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../../src/convert/node.js";
import { openCheckpoint } from "../../src/safetensors/node.js";
import { SAMPLE, tempDir } from "./helpers.js";

function e4m3(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const e = (code >> 3) & 15;
  const m = code & 7;
  if (e === 15 && m === 7) return Number.NaN;
  return e === 0 ? sign * (m / 8) * 2 ** -6 : sign * (1 + m / 8) * 2 ** (e - 7);
}

function bf16Rne(x: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, x);
  const b = dv.getUint32(0);
  const lsb = (b >>> 16) & 1;
  return ((b + 0x7fff + lsb) >>> 16) & 0xffff;
}

let out: string;
beforeAll(async () => {
  out = join(await tempDir(), "bf16");
  await convertCheckpoint({ input: SAMPLE, output: out, target: "bf16", workers: 0 });
});
afterAll(() => {});

describe("fp8 -> bf16 on the sample", () => {
  it("is bit-identical to fp8_cast_bf16.py's arithmetic for every quantized weight (partial blocks included)", async () => {
    const inp = await openCheckpoint(SAMPLE);
    const res = await openCheckpoint(out);
    let checked = 0;
    let partial = 0;
    for (const t of inp.tensors) {
      if (t.dtype !== "F8_E4M3") continue;
      const [rows, cols] = t.shape;
      if (rows % 128 !== 0 || cols % 128 !== 0) partial++;
      const codes = await inp.readBytes(t.name);
      const sb = await inp.readBytes(`${t.name}_scale_inv`);
      const scales = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
      const o = res.get(t.name);
      expect(o.dtype).toBe("BF16");
      expect(o.shape).toEqual([rows, cols]);
      const ob = await res.readBytes(t.name);
      const got = new DataView(ob.buffer, ob.byteOffset, ob.byteLength);
      const sc = Math.ceil(cols / 128);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const s = scales.getFloat32(4 * (Math.floor(r / 128) * sc + Math.floor(c / 128)), true);
          const want = bf16Rne(Math.fround(e4m3(codes[r * cols + c]) * s));
          const have = got.getUint16(2 * (r * cols + c), true);
          if (have !== want) expect(`${t.name}[${r},${c}] = ${have}`).toBe(`${t.name}[${r},${c}] = ${want}`);
        }
      }
      expect(res.has(`${t.name}_scale_inv`)).toBe(false);
      checked++;
    }
    expect(checked).toBe(48);
    expect(partial).toBeGreaterThan(10);
    // Plain tensors are copied unchanged.
    for (const name of [
      "lm_head.weight",
      "model.layers.1.mlp.gate.e_score_correction_bias",
      "model.layers.2.eh_proj.weight",
    ]) {
      expect(Buffer.compare(await inp.readBytes(name), await res.readBytes(name))).toBe(0);
    }
    await inp.close();
    await res.close();
  });

  it("writes a loadable checkpoint: config without quantization_config, metadata format pt, index total_size", async () => {
    const config = JSON.parse(await readFile(join(out, "config.json"), "utf8"));
    expect(config.quantization_config).toBeUndefined();
    expect(config.model_type).toBe("deepseek_v3");
    const index = JSON.parse(await readFile(join(out, "model.safetensors.index.json"), "utf8"));
    const ck = await openCheckpoint(out);
    expect(index.metadata.total_size).toBe(ck.tensors.reduce((s, t) => s + t.byteLength, 0));
    expect(Object.keys(index.weight_map).length).toBe(ck.tensors.length);
    for (const s of ck.shards) expect(ck.shardMetadata(s)).toEqual({ format: "pt" });
    await ck.close();
    expect(await readFile(join(out, "tokenizer_config.json"), "utf8")).toBe(
      await readFile(join(SAMPLE, "tokenizer_config.json"), "utf8"),
    );
    expect(await readFile(join(out, "generation_config.json"), "utf8")).toBe(
      await readFile(join(SAMPLE, "generation_config.json"), "utf8"),
    );
  });
});
