/**
 * `fp8kit convert --to nvfp4` end to end through the built CLI, in both dialects: a small BF16
 * checkpoint written by this test (q/k/v and gate/up with different magnitudes, so a shared
 * per-tensor scalar is visible) and the FP8 sample (requantization, written in six parts so that
 * fused members land in different `--part`s). The outputs must be detected as the target layout,
 * pass `--verify`, give fused members one scalar (the largest amax of the group's), and hold exactly
 * the codes, scales and values of the plain implementation in test/quant/nvfp4-reference.ts,
 * decoded by the test's own reader (layout-fixtures.ts), not by the library.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { detectLayout, type TensorEntry } from "../../src/checkpoint/index.js";
import { finiteAmaxBitsBf16 } from "../../src/quant/kernels/fast-quant-bf16.js";
import { withBackend } from "../formats/helpers.js";
import { ctReference, modeloptReference, type Reference, tensorAmax } from "../quant/nvfp4-reference.js";
import { bf16, bf16Value, E4M3_VALUES, firstDiff } from "../quant/reference.js";
import { runCli, SAMPLE } from "./helpers.js";
import { bytes, decodeWeight, readTensors, safetensorsBytes, type T, values } from "./layout-fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "fp8kit-nvfp4-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const f = Math.fround;
const A = "model.layers.0.self_attn";
const M = "model.layers.0.mlp";

/** The weights of the BF16 checkpoint: name, shape, magnitude (k and up are their group's largest). */
const WEIGHTS: [string, number[], number][] = [
  [`${A}.q_proj.weight`, [32, 64], 1],
  [`${A}.k_proj.weight`, [16, 64], 8],
  [`${A}.v_proj.weight`, [16, 64], 0.25],
  [`${A}.o_proj.weight`, [64, 32], 0.5],
  [`${M}.gate_proj.weight`, [48, 64], 1],
  [`${M}.up_proj.weight`, [48, 64], 4],
  [`${M}.down_proj.weight`, [64, 48], 2],
];
const GROUPS = [
  [`${A}.q_proj.weight`, `${A}.k_proj.weight`, `${A}.v_proj.weight`],
  [`${M}.gate_proj.weight`, `${M}.up_proj.weight`],
  [`${A}.o_proj.weight`],
  [`${M}.down_proj.weight`],
];

/** BF16 values of each weight (a zero block and a tiny block in q to take the special scale paths). */
function bf16Values(): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  WEIGHTS.forEach(([name, shape, scale], k) => {
    const x = values(shape[0] * shape[1], 40 + k, scale).map((v) => bf16Value(bf16(v)));
    if (k === 0) {
      x.fill(0, 16, 32);
      for (let i = 32; i < 48; i++) x[i] = bf16Value(bf16(1e-20 * (i - 40)));
    }
    out.set(name, x);
  });
  return out;
}

function writeBf16Checkpoint(dir: string, vals: Map<string, Float32Array>): void {
  const tensors: T[] = WEIGHTS.map(([name, shape]) => ({
    name,
    dtype: "BF16",
    shape,
    data: bytes(Uint16Array.from(vals.get(name)!, (v) => bf16(v))),
  }));
  tensors.push({ name: "model.norm.weight", dtype: "BF16", shape: [64], data: new Uint8Array(128) });
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({ architectures: ["LlamaForCausalLM"], model_type: "llama", torch_dtype: "bfloat16" }),
  );
  writeFileSync(join(dir, "model.safetensors"), safetensorsBytes(tensors));
}

/** The output's tensors, and its layout as the checkpoint layer detects it. */
function readOutput(dir: string) {
  const got = readTensors(dir);
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  let hfq: unknown = null;
  try {
    hfq = JSON.parse(readFileSync(join(dir, "hf_quant_config.json"), "utf8"));
  } catch {}
  const entries = [...got.values()].map(({ name, dtype, shape }) => ({ name, dtype, shape }) as TensorEntry);
  return { got, layout: detectLayout(config, entries, hfq) };
}

/** The per-tensor scalar stored for weight `name` (and its shape). */
function scalarOf(got: Map<string, T>, kind: string, name: string): { value: number; shape: number[] } {
  const base = name.replace(/\.weight$/, "");
  const t = got.get(`${base}${kind === "ct-nvfp4" ? ".weight_global_scale" : ".weight_scale_2"}`)!;
  expect(t.dtype).toBe("F32");
  return { value: new DataView(t.data.buffer, t.data.byteOffset).getFloat32(0, true), shape: t.shape };
}

/** Checks weight `name` of an output against the reference with the scalar it stores. */
function checkWeight(
  got: Map<string, T>,
  kind: string,
  name: string,
  shape: number[],
  x: Float32Array,
): Reference {
  const [rows, cols] = shape;
  const { value } = scalarOf(got, kind, name);
  const ref = (kind === "ct-nvfp4" ? ctReference : modeloptReference)(x, rows, cols, value);
  const d = decodeWeight(got, kind, name, shape);
  const codes = Array.from(d.codes).flatMap((b) => [b & 15, b >> 4]);
  expect(firstDiff(codes, ref.codes), `${name} codes`).toBe(-1);
  expect(firstDiff(d.values, ref.y), `${name} values`).toBe(-1);
  const scales = got.get(name.replace(/\.weight$/, ".weight_scale"))!;
  expect(firstDiff(scales.data, ref.scales), `${name} block scales`).toBe(-1);
  return ref;
}

/** The scalar the reference gives a group whose largest finite magnitude is `amax`. */
function groupScalar(kind: string, amax: number): number {
  return (kind === "ct-nvfp4" ? ctReference : modeloptReference)(new Float32Array(16).fill(amax), 1, 16)
    .global;
}

describe("the per-tensor amax of a BF16 source", () => {
  it("is the largest finite |value| (NaN, Inf, -0, subnormals among them), read from the bits", () => {
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 8;
    };
    const specials = [0x7f80, 0xff80, 0x7fc0, 0xffc1, 0x7f81, 0x8000, 0x0000, 0x0001, 0x807f, 0x7f7f, 0xff7f];
    // Up to several of the WebAssembly loop's chunks (262144 values), with a tail of odd length.
    for (const n of [1, 2, 7, 1000, 4097, 600_001]) {
      for (const withMax of [false, true]) {
        const h = Uint16Array.from({ length: n }, () =>
          rnd() % 5 === 0 ? specials[rnd() % specials.length] : rnd() & 0xffff,
        );
        if (!withMax) for (let i = 0; i < n; i++) if ((h[i] & 0x7fff) === 0x7f7f) h[i] = 0x3f80;
        // The largest finite value last (in the tail) in one case, first in another.
        if (withMax && n > 2) h[n % 2 === 0 ? 0 : n - 1] = 0x7f7f;
        // Decode each value and take the largest finite magnitude, as the decoding pre-pass does.
        let want = 0;
        for (const v of h) {
          const a = Math.abs(bf16Value(v));
          if (Number.isFinite(a) && a > want) want = a;
        }
        // At an odd byte offset too (the bits are read through a copy).
        const odd = new Uint8Array(2 * n + 1);
        odd.set(new Uint8Array(h.buffer), 1);
        for (const data of [new Uint8Array(h.buffer), odd.subarray(1)])
          for (const backend of ["ts", "wasm"] as const) {
            const bits = withBackend(backend, () => finiteAmaxBitsBf16(data, 0));
            expect(bf16Value(bits), `${n} values, ${backend}`).toBe(want);
          }
      }
    }
    // Only non-finite values: 0, as the decoding pre-pass (which starts from 0).
    expect(finiteAmaxBitsBf16(new Uint8Array(Uint16Array.of(0x7fc0, 0xff80).buffer), 0)).toBe(0);
  });
});

describe("convert --to nvfp4 (end to end)", () => {
  const vals = bf16Values();
  const input = join(tmp, "bf16");
  writeBf16Checkpoint(input, vals);

  for (const [kind, args] of [
    ["ct-nvfp4", ["--to", "nvfp4"]],
    ["modelopt-nvfp4", ["--layout", "modelopt", "--to", "nvfp4"]],
  ] as const) {
    it(`BF16 -> ${kind}: detected, verified, one scalar per fusion group, values of the reference rule`, async () => {
      const out = join(tmp, kind);
      const r = await runCli(["convert", input, out, ...args, "--verify"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/, 0 mismatches/);
      const { got, layout } = readOutput(out);
      expect(layout.kind).toBe(kind);
      expect(layout.problems).toEqual([]);
      expect(layout.quantized.length).toBe(WEIGHTS.length);
      for (const group of GROUPS) {
        const amax = Math.max(...group.map((n) => tensorAmax(vals.get(n)!)));
        for (const name of group) {
          const s = scalarOf(got, kind, name);
          // compressed-tensors writes `reshape([1])`, ModelOpt a 0-dim tensor.
          expect(s.shape).toEqual(kind === "ct-nvfp4" ? [1] : []);
          expect(s.value, name).toBe(groupScalar(kind, amax));
          const shape = WEIGHTS.find(([n]) => n === name)![1];
          checkWeight(got, kind, name, shape, vals.get(name)!);
        }
      }
      // q holds neither its group's amax nor k's values: sharing k's scalar is what moved it.
      expect(groupScalar(kind, tensorAmax(vals.get(`${A}.q_proj.weight`)!))).not.toBe(
        scalarOf(got, kind, `${A}.q_proj.weight`).value,
      );
    });
  }

  it("FP8 -> modelopt NVFP4 in six parts: fused members written by different parts share one scalar", async () => {
    const out = join(tmp, "parts");
    const args = ["--layout", "modelopt", "--to", "nvfp4", "--max-shard-size", "1MB", "--workers", "0"];
    for (let i = 1; i <= 6; i++) {
      const r = await runCli(["convert", SAMPLE, out, ...args, "--part", `${i}/6`]);
      expect(r.code, `part ${i}: ${r.stderr}`).toBe(0);
    }
    const fin = await runCli(["convert", SAMPLE, out, ...args, "--finalize", "--verify"]);
    expect(fin.code, fin.stderr).toBe(0);
    expect(fin.stdout).toMatch(/, 0 mismatches/);
    const index = JSON.parse(readFileSync(join(out, "model.safetensors.index.json"), "utf8")).weight_map;
    const qa = "model.layers.0.self_attn.q_a_proj.weight";
    const kva = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight";
    // Six shards, one per part: the two members are written by different runs.
    expect(new Set(Object.values(index)).size).toBe(6);
    expect(index[qa]).not.toBe(index[kva]);
    const { got, layout } = readOutput(out);
    expect(layout.kind).toBe("modelopt-nvfp4");
    const input = readTensors(SAMPLE);
    const decoded = (name: string) => {
      const t = input.get(name)!;
      const s = new Float32Array(input.get(`${name}_scale_inv`)!.data.slice().buffer);
      const [rows, cols] = t.shape;
      const sc = Math.ceil(cols / 128);
      expect(t.data.length).toBe(rows * cols);
      return Float32Array.from(t.data, (code, i) => {
        const v = E4M3_VALUES[code & 0x7f] * (code & 0x80 ? -1 : 1);
        return f(v * s[Math.floor(i / cols / 128) * sc + Math.floor((i % cols) / 128)]);
      });
    };
    const groups = [
      [qa, kva],
      ["model.layers.1.mlp.experts.0.gate_proj.weight", "model.layers.1.mlp.experts.0.up_proj.weight"],
      ["model.layers.1.mlp.experts.0.down_proj.weight"],
    ];
    for (const group of groups) {
      const xs = group.map(decoded);
      const amax = Math.max(...xs.map(tensorAmax));
      group.forEach((name, k) => {
        expect(scalarOf(got, "modelopt-nvfp4", name).value, name).toBe(groupScalar("modelopt-nvfp4", amax));
        checkWeight(got, "modelopt-nvfp4", name, input.get(name)!.shape, xs[k]);
      });
    }
    // On their own, the two would have had different scalars.
    const own = [qa, kva].map((n) => groupScalar("modelopt-nvfp4", tensorAmax(decoded(n))));
    expect(own[0]).not.toBe(own[1]);
  }, 60_000);
});
