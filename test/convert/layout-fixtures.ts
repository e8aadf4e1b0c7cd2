/**
 * Small checkpoints in every layout fp8kit reads, written by a few lines of this module (not by the
 * library's writer), each knowing the float32 value of every element it stands for: codes decoded
 * with the format codec, scales combined and multiplied in float32 (`Math.fround`). And a decoder of
 * every layout `convert --layout` writes, with the same arithmetic, so a test can compare an
 * output's values with its input's without leaning on the code it checks.
 *
 * Ascend's per-row INT8 / packed INT4 (`ascendInt`, `decodeAscend`) are written and decoded by plain
 * loops here too.
 *
 * Shared by test/convert/layouts.test.ts, test/convert/pairs.test.ts and scripts/layout-matrix.ts
 * (no vitest here: tsx runs it as a plain module).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decode, encode } from "../../src/formats/index.js";

export interface T {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** A safetensors file: 8-byte little-endian header length, JSON header, tensor bytes in order. */
export function safetensorsBytes(tensors: readonly T[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += " ";
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let p = 8 + json.length;
  for (const t of tensors) {
    out.set(t.data, p);
    p += t.data.length;
  }
  return out;
}

/** Every tensor of every .safetensors file in `dir`. */
export function readTensors(dir: string): Map<string, T> {
  const out = new Map<string, T>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".safetensors"))) {
    const b = readFileSync(join(dir, f));
    const n = Number(b.readBigUInt64LE(0));
    const header = JSON.parse(b.subarray(8, 8 + n).toString("utf8")) as Record<
      string,
      T & { data_offsets: number[] }
    >;
    for (const [name, h] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const [a, z] = h.data_offsets;
      out.set(name, {
        name,
        dtype: h.dtype,
        shape: h.shape,
        data: new Uint8Array(b.subarray(8 + n + a, 8 + n + z)),
      });
    }
  }
  return out;
}

/** Deterministic values in (-1, 1) (mulberry32). */
export function values(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    x[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  return x;
}
export const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
export const f32 = (...v: number[]) => bytes(Float32Array.from(v));
export const e4m3 = (x: Float32Array) => encode("float8_e4m3fn", x, { overflow: "saturate" }) as Uint8Array;
const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A quantized weight of the test: its tensors, and the float32 value of every element it stands for. */
export interface Weight {
  out: string;
  shape: number[];
  tensors: T[];
  expected: Float32Array;
}

/** E2M1 codes of `n` elements packed two per byte, low nibble first, and their float32 values. */
export function fp4(n: number, seed: number): { packed: Uint8Array; vals: Float32Array } {
  const codes = encode("float4_e2m1fn", values(n, seed, 6), { overflow: "saturate" }) as Uint8Array;
  const packed = new Uint8Array(n / 2);
  for (let i = 0; i < n; i += 2) packed[i / 2] = (codes[i] & 15) | ((codes[i + 1] & 15) << 4);
  return { packed, vals: decode("float4_e2m1fn", codes) };
}

/**
 * Element (e, r, c)'s value = fl32(code value * scale of its block), for `experts` stacked matrices
 * of `rows` x `cols` whose scale grids follow one another (partial blocks at the edges).
 */
export function blockValues(
  vals: Float32Array,
  rows: number,
  cols: number,
  br: number,
  bc: number,
  s: Float32Array,
  experts = 1,
): Float32Array {
  const gr = Math.ceil(rows / br);
  const gc = Math.ceil(cols / bc);
  const out = new Float32Array(experts * rows * cols);
  for (let e = 0; e < experts; e++)
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const i = (e * rows + r) * cols + c;
        out[i] = Math.fround(vals[i] * s[e * gr * gc + Math.floor(r / br) * gc + Math.floor(c / bc)]);
      }
  return out;
}

/** Leading dimensions of a weight of `experts` stacked matrices (none for one matrix). */
const lead = (experts: number) => (experts > 1 ? [experts] : []);

/**
 * Block FP8 (128x128, partial blocks at the edges): E4M3 codes and a scale per block stored as F32
 * (float values, or powers of two with `pow2`), BF16, or F8_E8M0 bytes; `experts` stacks matrices.
 */
export function fp8Block(
  base: string,
  rows: number,
  cols: number,
  scaleSuffix: string,
  scaleDtype: "F32" | "BF16" | "F8_E8M0",
  seed: number,
  opts: { experts?: number; pow2?: boolean } = {},
): Weight {
  const experts = opts.experts ?? 1;
  const codes = e4m3(values(experts * rows * cols, seed, 448));
  const n = experts * Math.ceil(rows / 128) * Math.ceil(cols / 128);
  let s: Float32Array;
  let sData: Uint8Array;
  if (scaleDtype === "F8_E8M0") {
    sData = Uint8Array.from({ length: n }, (_, i) => 115 + (i % 5));
    s = decode("float8_e8m0fnu", sData);
  } else if (scaleDtype === "BF16") {
    const b = encode(
      "bfloat16",
      values(n, seed + 1, 0.01).map((v) => Math.abs(v) + 1e-4),
    ) as Uint16Array;
    sData = bytes(b);
    s = decode("bfloat16", b);
  } else if (opts.pow2) {
    s = Float32Array.from({ length: n }, (_, i) => 2 ** (-12 + (i % 5)));
    sData = bytes(s);
  } else {
    s = values(n, seed + 1, 0.01).map((v) => Math.abs(v) + 1e-4);
    sData = bytes(s);
  }
  const shape = [...lead(experts), rows, cols];
  const sShape = [...lead(experts), Math.ceil(rows / 128), Math.ceil(cols / 128)];
  return {
    out: `${base}.weight`,
    shape,
    tensors: [
      { name: `${base}.weight`, dtype: "F8_E4M3", shape, data: codes },
      { name: `${base}.weight${scaleSuffix}`, dtype: scaleDtype, shape: sShape, data: sData },
    ],
    expected: blockValues(decode("float8_e4m3fn", codes), rows, cols, 128, 128, s, experts),
  };
}

/** MXFP8 / MXFP4 (compressed-tensors and ModelOpt): codes and a U8 E8M0 scale per 32; `experts` stacks matrices. */
export function mx(
  base: string,
  rows: number,
  cols: number,
  fp: "fp8" | "fp4",
  seed: number,
  dataSuffix = ".weight",
  experts = 1,
): Weight {
  const n = experts * rows * cols;
  const sData = Uint8Array.from({ length: n / 32 }, (_, i) => 118 + (i % 7));
  const s = decode("float8_e8m0fnu", sData);
  const { data, vals } =
    fp === "fp8"
      ? (() => {
          const c = e4m3(values(n, seed, 448));
          return { data: c, vals: decode("float8_e4m3fn", c) };
        })()
      : (() => {
          const p = fp4(n, seed);
          return { data: p.packed, vals: p.vals };
        })();
  const l = lead(experts);
  return {
    out: `${base}.weight`,
    shape: [...l, rows, cols],
    tensors: [
      {
        name: `${base}${dataSuffix}`,
        dtype: fp === "fp8" ? "F8_E4M3" : "U8",
        shape: fp === "fp8" ? [...l, rows, cols] : [...l, rows, cols / 2],
        data,
      },
      { name: `${base}.weight_scale`, dtype: "U8", shape: [...l, rows, cols / 32], data: sData },
    ],
    expected: blockValues(vals, experts * rows, cols, 1, 32, s),
  };
}

/** NVFP4: E2M1 packed, E4M3 scale per 16, and a per-tensor F32 that multiplies (ModelOpt) or divides (compressed-tensors). */
export function nvfp4(
  base: string,
  rows: number,
  cols: number,
  flavour: "modelopt" | "ct",
  seed: number,
  experts = 1,
): Weight {
  const n = experts * rows * cols;
  const { packed, vals } = fp4(n, seed);
  const sCodes = e4m3(values(n / 16, seed + 1, 300).map((v) => Math.abs(v) + 0.1));
  const s = decode("float8_e4m3fn", sCodes);
  const g = flavour === "modelopt" ? 1.7e-3 : 580.5;
  const eff = s.map((v) =>
    flavour === "modelopt" ? Math.fround(v * Math.fround(g)) : Math.fround(v / Math.fround(g)),
  );
  const extra: T[] =
    flavour === "modelopt"
      ? [
          { name: `${base}.weight_scale_2`, dtype: "F32", shape: [], data: f32(g) },
          { name: `${base}.input_scale`, dtype: "F32", shape: [], data: f32(0.5) },
        ]
      : [
          { name: `${base}.weight_global_scale`, dtype: "F32", shape: [1], data: f32(g) },
          { name: `${base}.input_global_scale`, dtype: "F32", shape: [1], data: f32(2) },
        ];
  const l = lead(experts);
  return {
    out: `${base}.weight`,
    shape: [...l, rows, cols],
    tensors: [
      {
        name: `${base}${flavour === "modelopt" ? ".weight" : ".weight_packed"}`,
        dtype: "U8",
        shape: [...l, rows, cols / 2],
        data: packed,
      },
      { name: `${base}.weight_scale`, dtype: "F8_E4M3", shape: [...l, rows, cols / 16], data: sCodes },
      ...extra,
    ],
    expected: blockValues(vals, experts * rows, cols, 1, 16, eff),
  };
}

export function perTensor(
  base: string,
  rows: number,
  cols: number,
  element: "F8_E4M3" | "F8_E5M2",
  seed: number,
): Weight {
  const fmt = element === "F8_E4M3" ? "float8_e4m3fn" : "float8_e5m2";
  const codes = encode(fmt, values(rows * cols, seed, 400), { overflow: "saturate" }) as Uint8Array;
  const s = Math.fround(3.1e-4);
  return {
    out: `${base}.weight`,
    shape: [rows, cols],
    tensors: [
      { name: `${base}.weight`, dtype: element, shape: [rows, cols], data: codes },
      { name: `${base}.weight_scale`, dtype: "F32", shape: [], data: f32(s) },
      { name: `${base}.input_scale`, dtype: "F32", shape: [], data: f32(0.25) },
    ],
    expected: decode(fmt, codes).map((v) => Math.fround(v * s)),
  };
}

/** gpt-oss MXFP4: stacked experts `[E, rows, cols]` as `X_blocks` U8 `[E, rows, cols/32, 16]` + `X_scales`. */
export function gptOss(base: string, experts: number, rows: number, cols: number, seed: number): Weight {
  const { packed, vals } = fp4(experts * rows * cols, seed);
  const sData = Uint8Array.from({ length: (experts * rows * cols) / 32 }, (_, i) => 120 + (i % 6));
  const s = decode("float8_e8m0fnu", sData);
  return {
    out: base,
    shape: [experts, rows, cols],
    tensors: [
      { name: `${base}_blocks`, dtype: "U8", shape: [experts, rows, cols / 32, 16], data: packed },
      { name: `${base}_scales`, dtype: "U8", shape: [experts, rows, cols / 32], data: sData },
    ],
    expected: blockValues(vals, experts * rows, cols, 1, 32, s),
  };
}

/** BF16-representable positive float32 values (what msModelSlim's scales hold). */
const bf16Scales = (n: number, seed: number) =>
  decode(
    "bfloat16",
    encode(
      "bfloat16",
      values(n, seed, 0.01).map((v) => Math.abs(v) + 1e-4),
    ) as Uint16Array,
  );

/**
 * Ascend per-output-channel integers (msModelSlim W8A8_DYNAMIC / W4A8_DYNAMIC, ASCEND.md §2.1,
 * §4.2): codes in [-qmax, qmax] with ±qmax in every row, a BF16-representable F32 scale per row
 * `[.., rows, 1]`, `weight_offset` zeros. INT8: `weight` I8 `[.., rows, cols]`. INT4: two codes per
 * byte along the output dimension, `[.., rows / 2, cols]`, byte (j, k) = (q[2j+1][k] << 4) |
 * (q[2j][k] & 15), and `scale_bias` F32 = 8 · Σ q · s over the row (`[.., rows, 1]`) or over each of
 * 16 column chunks (`[.., rows, 16]`, `chunks` 16: down projections). Value = fl32(q · s).
 */
export function ascendInt(
  base: string,
  rows: number,
  cols: number,
  bits: 8 | 4,
  seed: number,
  opts: { experts?: number; chunks?: 1 | 16 } = {},
): Weight {
  const experts = opts.experts ?? 1;
  const qmax = bits === 8 ? 127 : 7;
  const n = experts * rows * cols;
  const q = new Int8Array(n);
  const v = values(n, seed);
  for (let i = 0; i < n; i++) q[i] = Math.round(v[i] * qmax);
  for (let r = 0; r < experts * rows; r++) q[r * cols + (r % cols)] = r % 2 ? qmax : -qmax;
  const s = bf16Scales(experts * rows, seed + 1);
  const expected = new Float32Array(n);
  for (let i = 0; i < n; i++) expected[i] = Math.fround(q[i] * s[Math.floor(i / cols)]);
  const l = lead(experts);
  const sShape = [...l, rows, 1];
  const tensors: T[] = [];
  if (bits === 8) {
    tensors.push({ name: `${base}.weight`, dtype: "I8", shape: [...l, rows, cols], data: bytes(q) });
  } else {
    const packed = new Uint8Array(n / 2);
    for (let j = 0; j < (experts * rows) / 2; j++)
      for (let k = 0; k < cols; k++)
        packed[j * cols + k] = ((q[(2 * j + 1) * cols + k] << 4) | (q[2 * j * cols + k] & 15)) & 0xff;
    tensors.push({ name: `${base}.weight`, dtype: "I8", shape: [...l, rows / 2, cols], data: packed });
  }
  tensors.push(
    { name: `${base}.weight_scale`, dtype: "F32", shape: sShape, data: bytes(s) },
    { name: `${base}.weight_offset`, dtype: "F32", shape: sShape, data: bytes(new Float32Array(s.length)) },
  );
  if (bits === 4) {
    const chunks = opts.chunks ?? 1;
    const bias = new Float32Array(experts * rows * chunks);
    const w = cols / chunks;
    for (let r = 0; r < experts * rows; r++)
      for (let j = 0; j < chunks; j++) {
        let sum = 0;
        for (let k = j * w; k < (j + 1) * w; k++) sum += q[r * cols + k] * s[r];
        bias[r * chunks + j] = 8 * sum;
      }
    tensors.push({
      name: `${base}.scale_bias`,
      dtype: "F32",
      shape: [...l, rows, chunks],
      data: bytes(bias),
    });
  }
  return { out: `${base}.weight`, shape: [...l, rows, cols], tensors, expected };
}

export const bf16Tensor = (name: string, shape: number[], seed: number, scale = 0.05): T => ({
  name,
  dtype: "BF16",
  shape,
  data: bytes(encode("bfloat16", values(count(shape), seed, scale)) as Uint16Array),
});

/** An unquantized BF16 weight, as a `Weight` whose values are its BF16 values. */
export function denseWeight(name: string, shape: number[], seed: number): Weight {
  const t = bf16Tensor(name, shape, seed, 0.5);
  return {
    out: name,
    shape,
    tensors: [t],
    expected: decode("bfloat16", new Uint16Array(t.data.slice().buffer)),
  };
}

export interface Case {
  layout: string;
  config: Record<string, unknown>;
  hfQuantConfig?: Record<string, unknown>;
  weights: Weight[];
  extra?: T[];
  /**
   * Ascend: the quantization type of each quantized tensor; writeCase then writes
   * `quant_model_description.json` with one entry per tensor (the rest "FLOAT").
   */
  described?: Record<string, string>;
}

export const L = "model.layers.0";
export const ct = (format: string, weights: Record<string, unknown>) => ({
  quant_method: "compressed-tensors",
  format,
  config_groups: { group_0: { targets: ["Linear"], weights } },
});
export const CASES: Case[] = [
  {
    layout: "fp8-block",
    config: { quantization_config: { quant_method: "fp8", weight_block_size: [128, 128] } },
    weights: [
      fp8Block(`${L}.mlp.up_proj`, 192, 160, "_scale_inv", "F32", 1),
      fp8Block(`${L}.mlp.down_proj`, 160, 192, "_scale_inv", "F32", 2),
    ],
  },
  {
    layout: "fp8-block",
    config: {
      quantization_config: { quant_method: "fp8", weight_block_size: [128, 128], scale_fmt: "ue8m0" },
    },
    weights: [fp8Block(`${L}.mlp.up_proj`, 256, 128, "_scale_inv", "F8_E8M0", 3)],
  },
  {
    layout: "ct-fp8-block",
    config: {
      quantization_config: ct("float-quantized", { block_structure: [128, 128], type: "float", num_bits: 8 }),
    },
    weights: [fp8Block(`${L}.mlp.up_proj`, 192, 256, "_scale", "BF16", 4)],
  },
  {
    layout: "ct-mxfp8",
    config: { quantization_config: ct("mxfp8-quantized", { group_size: 32 }) },
    weights: [mx(`${L}.mlp.up_proj`, 64, 128, "fp8", 5)],
  },
  {
    layout: "ct-mxfp4",
    config: { quantization_config: ct("mxfp4-pack-quantized", { group_size: 32 }) },
    weights: [mx(`${L}.mlp.up_proj`, 64, 128, "fp4", 6, ".weight_packed")],
  },
  {
    layout: "ct-nvfp4",
    config: { quantization_config: ct("nvfp4-pack-quantized", { group_size: 16 }) },
    weights: [nvfp4(`${L}.mlp.up_proj`, 32, 64, "ct", 7), nvfp4(`${L}.mlp.down_proj`, 64, 32, "ct", 8)],
  },
  {
    layout: "modelopt-nvfp4",
    config: {},
    hfQuantConfig: { producer: { name: "modelopt" }, quantization: { quant_algo: "NVFP4", group_size: 16 } },
    weights: [
      nvfp4(`${L}.mlp.up_proj`, 32, 64, "modelopt", 9),
      nvfp4(`${L}.mlp.down_proj`, 64, 32, "modelopt", 10),
    ],
  },
  {
    layout: "modelopt-fp8",
    config: {},
    hfQuantConfig: { quantization: { quant_algo: "FP8" } },
    weights: [perTensor(`${L}.mlp.up_proj`, 48, 80, "F8_E4M3", 11)],
  },
  {
    layout: "modelopt-mxfp8",
    config: {},
    hfQuantConfig: { quantization: { quant_algo: "MXFP8" } },
    weights: [mx(`${L}.mlp.up_proj`, 32, 96, "fp8", 12)],
  },
  { layout: "fp8-tensor", config: {}, weights: [perTensor(`${L}.mlp.up_proj`, 40, 72, "F8_E4M3", 13)] },
  { layout: "fp8-tensor", config: {}, weights: [perTensor(`${L}.mlp.up_proj`, 40, 72, "F8_E5M2", 14)] },
  {
    layout: "gpt-oss-mxfp4",
    config: { quantization_config: { quant_method: "mxfp4" } },
    weights: [gptOss(`${L}.mlp.experts.gate_up_proj`, 2, 32, 128, 15)],
  },
];

export function writeCase(dir: string, c: Case): void {
  mkdirSync(dir, { recursive: true });
  const config = {
    architectures: ["TestForCausalLM"],
    model_type: "test",
    torch_dtype: "bfloat16",
    ...c.config,
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  if (c.hfQuantConfig) writeFileSync(join(dir, "hf_quant_config.json"), JSON.stringify(c.hfQuantConfig));
  const tensors = [
    bf16Tensor("model.embed_tokens.weight", [16, 32], 100),
    bf16Tensor(`${L}.input_layernorm.weight`, [32], 101),
    ...c.weights.flatMap((w) => w.tensors),
    ...(c.extra ?? []),
  ];
  writeFileSync(join(dir, "model.safetensors"), safetensorsBytes(tensors));
  if (c.described)
    writeFileSync(join(dir, ASCEND_DESCRIPTION), JSON.stringify(ascendDescribe(tensors, c.described)));
}

/** The description file vllm-ascend requires beside an Ascend checkpoint (ASCEND.md §1). */
export const ASCEND_DESCRIPTION = "quant_model_description.json";

/**
 * msModelSlim's description of `tensors` (ASCEND.md §1.3): the global keys, then one entry per
 * tensor, "FLOAT" unless `types` names it; `model_quant_type` W8A8_DYNAMIC when anything is
 * quantized (W4A8_DYNAMIC never becomes it, msModelSlim `save/ascendv1.py:164-181`).
 */
function ascendDescribe(tensors: readonly T[], types: Record<string, string>): Record<string, unknown> {
  const quantized = Object.keys(types).length > 0;
  const out: Record<string, unknown> = {
    version: "1.0.0",
    model_quant_type: quantized ? "W8A8_DYNAMIC" : "FLOAT",
    group_size: 0,
    metadata: {},
    optional: {},
  };
  for (const t of tensors) out[t.name] = types[t.name] ?? "FLOAT";
  return out;
}

// ---------------------------------------------------------------------------------------------
// Every source layout x every target layout (test/convert/pairs.test.ts, scripts/layout-matrix.ts)
// ---------------------------------------------------------------------------------------------

/** Element formats a layout's weights hold (`--to` names), null for unquantized. */
export type PairFormat = "fp8" | "mxfp8" | "mxfp4" | "nvfp4" | "w8a8" | "w4a8";

/** A source checkpoint of the matrix: one per layout and scale storage. */
export interface PairSource {
  id: string;
  title: string;
  /** `inspect --json` layout.kind of the checkpoint. */
  kind: string;
  /** Its element format (what `--to` would name), null when unquantized. */
  format: PairFormat | null;
  case: Case;
}

/**
 * Shapes: one matrix with partial 128x128 blocks on both edges (200x320: 320 is whole groups of 32
 * and 16), and stacked experts `[2, 160, 192]` (partial blocks inside every expert).
 */
const M = [200, 320] as const;
const E = [2, 160, 192] as const;
const O = `${L}.self_attn.o_proj`;
const X = `${L}.mlp.experts.gate_up_proj`;
/** A linear Ascend keeps FLOAT (vllm-ascend's MLA asserts kv_b_proj is unquantized, ASCEND.md §2.3). */
const KV_B = `${L}.self_attn.kv_b_proj`;
/** A plain BF16 tensor every quantized source keeps as it is (a copy in every target). */
const KEPT = () => [bf16Tensor(`${L}.mlp.gate.weight`, [4, 320], 102)];
const FP8_BLOCK_CT = ct("float-quantized", {
  block_structure: [128, 128],
  type: "float",
  num_bits: 8,
  strategy: "block",
});
const DS = (extra: Record<string, unknown> = {}) => ({
  quantization_config: { quant_method: "fp8", weight_block_size: [128, 128], ...extra },
});

export const PAIR_SOURCES: readonly PairSource[] = [
  {
    id: "deepseek-fp8",
    title: "DeepSeek FP8, F32 float scales",
    kind: "fp8-block",
    format: "fp8",
    case: {
      layout: "fp8-block",
      config: DS(),
      weights: [
        fp8Block(O, M[0], M[1], "_scale_inv", "F32", 21),
        fp8Block(X, E[1], E[2], "_scale_inv", "F32", 22, { experts: E[0] }),
        fp8Block(KV_B, 136, 96, "_scale_inv", "F32", 45),
      ],
      extra: KEPT(),
    },
  },
  {
    id: "deepseek-ue8m0-f32",
    title: "DeepSeek FP8 UE8M0, F32 powers of two",
    kind: "fp8-block",
    format: "fp8",
    case: {
      layout: "fp8-block",
      config: DS({ scale_fmt: "ue8m0" }),
      weights: [
        fp8Block(O, M[0], M[1], "_scale_inv", "F32", 23, { pow2: true }),
        fp8Block(X, E[1], E[2], "_scale_inv", "F32", 24, { experts: E[0], pow2: true }),
      ],
      extra: KEPT(),
    },
  },
  {
    id: "deepseek-ue8m0-e8m0",
    title: "DeepSeek FP8 UE8M0, F8_E8M0 scales",
    kind: "fp8-block",
    format: "fp8",
    case: {
      layout: "fp8-block",
      config: DS({ scale_fmt: "ue8m0" }),
      weights: [
        fp8Block(O, M[0], M[1], "_scale_inv", "F8_E8M0", 25),
        fp8Block(X, E[1], E[2], "_scale_inv", "F8_E8M0", 26, { experts: E[0] }),
      ],
      extra: KEPT(),
    },
  },
  {
    id: "ct-fp8-bf16",
    title: "compressed-tensors FP8 block, BF16 scales",
    kind: "ct-fp8-block",
    format: "fp8",
    case: {
      layout: "ct-fp8-block",
      config: { quantization_config: FP8_BLOCK_CT },
      weights: [
        fp8Block(O, M[0], M[1], "_scale", "BF16", 27),
        fp8Block(X, E[1], E[2], "_scale", "BF16", 28, { experts: E[0] }),
      ],
      extra: KEPT(),
    },
  },
  {
    id: "ct-fp8-f32",
    title: "compressed-tensors FP8 block, F32 scales",
    kind: "ct-fp8-block",
    format: "fp8",
    case: {
      layout: "ct-fp8-block",
      config: { quantization_config: FP8_BLOCK_CT },
      weights: [
        fp8Block(O, M[0], M[1], "_scale", "F32", 29),
        fp8Block(X, E[1], E[2], "_scale", "F32", 44, { experts: E[0] }),
      ],
      extra: KEPT(),
    },
  },
  {
    id: "ct-mxfp8",
    title: "compressed-tensors MXFP8",
    kind: "ct-mxfp8",
    format: "mxfp8",
    case: {
      layout: "ct-mxfp8",
      config: { quantization_config: ct("mxfp8-quantized", { group_size: 32 }) },
      weights: [mx(O, M[0], M[1], "fp8", 30), mx(X, E[1], E[2], "fp8", 31, ".weight", E[0])],
      extra: KEPT(),
    },
  },
  {
    id: "ct-mxfp4",
    title: "compressed-tensors MXFP4",
    kind: "ct-mxfp4",
    format: "mxfp4",
    case: {
      layout: "ct-mxfp4",
      config: { quantization_config: ct("mxfp4-pack-quantized", { group_size: 32 }) },
      weights: [
        mx(O, M[0], M[1], "fp4", 32, ".weight_packed"),
        mx(X, E[1], E[2], "fp4", 33, ".weight_packed", E[0]),
      ],
      extra: KEPT(),
    },
  },
  {
    id: "ct-nvfp4",
    title: "compressed-tensors NVFP4",
    kind: "ct-nvfp4",
    format: "nvfp4",
    case: {
      layout: "ct-nvfp4",
      config: { quantization_config: ct("nvfp4-pack-quantized", { group_size: 16 }) },
      weights: [nvfp4(O, M[0], M[1], "ct", 34), nvfp4(X, E[1], E[2], "ct", 35, E[0])],
      extra: KEPT(),
    },
  },
  {
    id: "modelopt-mxfp8",
    title: "ModelOpt MXFP8",
    kind: "modelopt-mxfp8",
    format: "mxfp8",
    case: {
      layout: "modelopt-mxfp8",
      config: {},
      hfQuantConfig: { producer: { name: "modelopt" }, quantization: { quant_algo: "MXFP8" } },
      weights: [mx(O, M[0], M[1], "fp8", 36), mx(X, E[1], E[2], "fp8", 37, ".weight", E[0])],
      extra: KEPT(),
    },
  },
  {
    id: "modelopt-nvfp4",
    title: "ModelOpt NVFP4",
    kind: "modelopt-nvfp4",
    format: "nvfp4",
    case: {
      layout: "modelopt-nvfp4",
      config: {},
      hfQuantConfig: {
        producer: { name: "modelopt" },
        quantization: { quant_algo: "NVFP4", group_size: 16 },
      },
      weights: [nvfp4(O, M[0], M[1], "modelopt", 38), nvfp4(X, E[1], E[2], "modelopt", 39, E[0])],
      extra: KEPT(),
    },
  },
  {
    id: "gpt-oss-mxfp4",
    title: "gpt-oss MXFP4",
    kind: "gpt-oss-mxfp4",
    format: "mxfp4",
    case: {
      layout: "gpt-oss-mxfp4",
      config: { quantization_config: { quant_method: "mxfp4" } },
      weights: [gptOss(X, E[0], E[1], E[2], 40), gptOss(`${L}.mlp.experts.down_proj`, E[0], E[2], E[1], 41)],
      extra: KEPT(),
    },
  },
  {
    id: "dense",
    title: "dense BF16",
    kind: "unquantized",
    format: null,
    case: {
      layout: "unquantized",
      config: {},
      weights: [denseWeight(`${O}.weight`, [...M], 42), denseWeight(`${X}.weight`, [...E], 43)],
    },
  },
  {
    id: "ascend-w8a8",
    title: "Ascend W8A8_DYNAMIC",
    kind: "ascend-w8a8",
    format: "w8a8",
    case: ascendCase([ascendInt(O, M[0], M[1], 8, 46), ascendInt(X, E[1], E[2], 8, 47, { experts: E[0] })]),
  },
  {
    id: "ascend-w4a8",
    title: "Ascend W4A8_DYNAMIC (INT4 experts, INT8 attention)",
    kind: "ascend-w4a8",
    format: "w4a8",
    case: ascendCase([ascendInt(O, M[0], M[1], 8, 48), ascendInt(X, E[1], E[2], 4, 49, { experts: E[0] })]),
  },
];

/** An Ascend checkpoint of `weights` (INT8 or INT4 by their shape), the router gate FLOAT, no quantization_config. */
function ascendCase(weights: Weight[]): Case {
  const described: Record<string, string> = {};
  for (const w of weights) {
    const type = w.tensors.some((t) => t.name.endsWith(".scale_bias")) ? "W4A8_DYNAMIC" : "W8A8_DYNAMIC";
    for (const t of w.tensors) described[t.name] = type;
  }
  return { layout: "ascend", config: {}, weights, extra: KEPT(), described };
}

/** A target of the matrix: `--layout` and `--to`, and the layout `inspect` detects in the output. */
export interface PairTarget {
  id: string;
  layout: "deepseek" | "compressed-tensors" | "modelopt" | "gpt-oss" | "ascend" | "dense";
  to: PairFormat | "bf16";
  kind: string;
}

export const PAIR_TARGETS: readonly PairTarget[] = [
  { id: "deepseek fp8", layout: "deepseek", to: "fp8", kind: "fp8-block" },
  { id: "compressed-tensors fp8", layout: "compressed-tensors", to: "fp8", kind: "ct-fp8-block" },
  { id: "compressed-tensors mxfp8", layout: "compressed-tensors", to: "mxfp8", kind: "ct-mxfp8" },
  { id: "compressed-tensors mxfp4", layout: "compressed-tensors", to: "mxfp4", kind: "ct-mxfp4" },
  { id: "compressed-tensors nvfp4", layout: "compressed-tensors", to: "nvfp4", kind: "ct-nvfp4" },
  { id: "modelopt mxfp8", layout: "modelopt", to: "mxfp8", kind: "modelopt-mxfp8" },
  { id: "modelopt nvfp4", layout: "modelopt", to: "nvfp4", kind: "modelopt-nvfp4" },
  { id: "gpt-oss mxfp4", layout: "gpt-oss", to: "mxfp4", kind: "gpt-oss-mxfp4" },
  { id: "ascend w8a8", layout: "ascend", to: "w8a8", kind: "ascend-w8a8" },
  { id: "ascend w4a8", layout: "ascend", to: "w4a8", kind: "ascend-w4a8" },
  { id: "dense bf16", layout: "dense", to: "bf16", kind: "unquantized" },
];

/**
 * The options of a pair: `--layout`, and `--to` unless it is the source's own format (then
 * `--layout` alone keeps the format and, for fp8, the source's scale format, which is what makes a
 * relabel possible; an explicit `--to fp8` asks for the default UE8M0 scales).
 */
export function pairArgs(source: { format: PairFormat | null }, target: PairTarget): string[] {
  return ["--layout", target.layout, ...(source.format === target.to ? [] : ["--to", target.to])];
}

// ---------------------------------------------------------------------------------------------
// Decoding what a target layout wrote, independently of the library
// ---------------------------------------------------------------------------------------------

/** A weight decoded from an output: every element's float32 value and the multiplier it was scaled by. */
export interface DecodedWeight {
  values: Float32Array;
  /** The float32 multiplier of each element's block (1 for dense). */
  scale: Float32Array;
  /** The element format ("bfloat16" for dense, "int8" / "int4" for Ascend's integers). */
  element: "float8_e4m3fn" | "float4_e2m1fn" | "bfloat16" | "int8" | "int4";
  /** The bytes holding the codes (packed FP4: two per byte, low nibble first; INT4: along rows). */
  codes: Uint8Array;
  /** Ascend: every element's integer code, unpacked, row-major. */
  ints?: Int8Array;
}

const E2M1 = decode(
  "float4_e2m1fn",
  Uint8Array.from({ length: 16 }, (_, i) => i),
);

/** Float32 values of a stored scale tensor (E8M0 as U8 or F8_E8M0, E4M3, BF16, F32). */
function scaleValues(t: T): Float32Array {
  switch (t.dtype) {
    case "F32":
      return new Float32Array(t.data.slice().buffer);
    case "BF16":
      return decode("bfloat16", new Uint16Array(t.data.slice().buffer));
    case "U8":
    case "F8_E8M0":
      return decode("float8_e8m0fnu", t.data);
    case "F8_E4M3":
      return decode("float8_e4m3fn", t.data);
    default:
      throw new Error(`${t.name}: unexpected scale dtype ${t.dtype}`);
  }
}

/**
 * The routed experts an Ascend W4A8 output holds as INT4 (vllm-ascend registers W4A8_DYNAMIC for
 * MoE only, ASCEND.md §4.1); its other quantized linears are W8A8_DYNAMIC.
 */
export const ASCEND_INT4 = /\.mlp\.experts\.(\d+\.)?(gate_proj|up_proj|down_proj|gate_up_proj)(\.weight)?$/;

/**
 * The tensors a target layout writes for a weight whose unquantized name is `out`; `aux`: Ascend's
 * `weight_offset` (and W4A8's `scale_bias`).
 */
export function outputNames(
  kind: string,
  out: string,
): { data: string; scale: string | null; global: string | null; aux?: string[] } {
  const base = out.endsWith(".weight") ? out.slice(0, -".weight".length) : out;
  switch (kind) {
    case "ascend-w8a8":
    case "ascend-w4a8": {
      const int4 = kind === "ascend-w4a8" && ASCEND_INT4.test(out);
      const aux = [`${base}.weight_offset`, ...(int4 ? [`${base}.scale_bias`] : [])];
      return { data: `${base}.weight`, scale: `${base}.weight_scale`, global: null, aux };
    }
    case "fp8-block":
      return { data: `${base}.weight`, scale: `${base}.weight_scale_inv`, global: null };
    case "ct-fp8-block":
    case "ct-mxfp8":
    case "modelopt-mxfp8":
      return { data: `${base}.weight`, scale: `${base}.weight_scale`, global: null };
    case "ct-mxfp4":
      return { data: `${base}.weight_packed`, scale: `${base}.weight_scale`, global: null };
    case "ct-nvfp4":
      return {
        data: `${base}.weight_packed`,
        scale: `${base}.weight_scale`,
        global: `${base}.weight_global_scale`,
      };
    case "modelopt-nvfp4":
      return { data: `${base}.weight`, scale: `${base}.weight_scale`, global: `${base}.weight_scale_2` };
    case "gpt-oss-mxfp4":
      return { data: `${base}_blocks`, scale: `${base}_scales`, global: null };
    case "unquantized":
      return { data: out, scale: null, global: null };
    default:
      throw new Error(`no decoder for layout ${kind}`);
  }
}

/**
 * Decodes weight `out` of logical `shape` from the tensors of an output in layout `kind`: element
 * (…, r, c) = fl32(code value * m) with m the block's scale (FP8 block layouts: 128x128 per matrix,
 * partial at the edges; MX: 1x32; NVFP4: 1x16 times (ModelOpt) or over (compressed-tensors) the
 * per-tensor scalar, combined in float32 first).
 */
export function decodeWeight(
  got: ReadonlyMap<string, T>,
  kind: string,
  out: string,
  shape: readonly number[],
): DecodedWeight {
  const names = outputNames(kind, out);
  const data = got.get(names.data);
  if (!data) throw new Error(`${names.data} is not in the output`);
  const n = count(shape);
  if (kind === "unquantized") {
    if (data.dtype !== "BF16") throw new Error(`${names.data} is ${data.dtype}, not BF16`);
    return {
      values: decode("bfloat16", new Uint16Array(data.data.slice().buffer)),
      scale: new Float32Array(n).fill(1),
      element: "bfloat16",
      codes: data.data,
    };
  }
  if (kind.startsWith("ascend-")) return decodeAscend(got, names, data, shape);
  const fp4 = kind.endsWith("fp4");
  const element = fp4 ? "float4_e2m1fn" : "float8_e4m3fn";
  const vals = new Float32Array(n);
  if (fp4) {
    if (data.data.length * 2 !== n)
      throw new Error(`${names.data}: ${data.data.length} bytes for ${n} FP4 codes`);
    for (let i = 0; i < n; i += 2) {
      vals[i] = E2M1[data.data[i / 2] & 15];
      vals[i + 1] = E2M1[data.data[i / 2] >> 4];
    }
  } else {
    if (data.dtype !== "F8_E4M3") throw new Error(`${names.data} is ${data.dtype}, not F8_E4M3`);
    vals.set(decode("float8_e4m3fn", data.data));
  }
  const sT = got.get(names.scale!);
  if (!sT) throw new Error(`${names.scale} is not in the output`);
  let s = scaleValues(sT);
  if (names.global) {
    const gT = got.get(names.global);
    if (!gT) throw new Error(`${names.global} is not in the output`);
    const g = new Float32Array(gT.data.slice().buffer)[0];
    s = s.map((v) => (kind === "modelopt-nvfp4" ? Math.fround(v * g) : Math.fround(v / g)));
  }
  const rows = shape[shape.length - 2];
  const cols = shape[shape.length - 1];
  const matrices = n / (rows * cols);
  const [br, bc] =
    kind === "fp8-block" || kind === "ct-fp8-block" ? [128, 128] : [1, kind.includes("nvfp4") ? 16 : 32];
  const gr = Math.ceil(rows / br);
  const gc = Math.ceil(cols / bc);
  if (s.length !== matrices * gr * gc) throw new Error(`${names.scale}: ${s.length} scales for ${shape}`);
  const scale = new Float32Array(n);
  const values = new Float32Array(n);
  for (let e = 0; e < matrices; e++)
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const i = (e * rows + r) * cols + c;
        scale[i] = s[e * gr * gc + Math.floor(r / br) * gc + Math.floor(c / bc)];
        values[i] = Math.fround(vals[i] * scale[i]);
      }
  return { values, scale, element, codes: data.data };
}

/**
 * A weight as a dense output holds it: gpt-oss experts are written input-major (their last two
 * dimensions swapped, as transformers' `GptOssExperts` holds them); every other layout keeps the shape.
 */
export function denseOf(sourceKind: string, w: Weight): Weight {
  return sourceKind === "gpt-oss-mxfp4" ? transposed(w) : w;
}

/** `w` with each matrix transposed: shape `[.., cols, rows]` and the values to match. */
export function transposed(w: Weight): Weight {
  if (w.shape.length < 2) return w;
  const rows = w.shape[w.shape.length - 2];
  const cols = w.shape[w.shape.length - 1];
  const lead = w.shape.slice(0, -2);
  const expected = new Float32Array(w.expected.length);
  const per = rows * cols;
  for (let b = 0; b < w.expected.length / per; b++)
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) expected[b * per + c * rows + r] = w.expected[b * per + r * cols + c];
  return { ...w, shape: [...lead, cols, rows], expected };
}

/**
 * Ascend's integers (INT4 when `names.aux` has a `scale_bias`): element (…, r, c) = fl32(q · s[…, r])
 * with q the I8 byte, or for INT4 the low (even r) or high (odd r) nibble of byte (…, r / 2, c),
 * two's complement; `weight_scale` F32 `[…, rows, 1]`.
 */
function decodeAscend(
  got: ReadonlyMap<string, T>,
  names: ReturnType<typeof outputNames>,
  data: T,
  shape: readonly number[],
): DecodedWeight {
  const int4 = names.aux?.some((n) => n.endsWith(".scale_bias")) ?? false;
  const rows = shape[shape.length - 2];
  const cols = shape[shape.length - 1];
  const n = count(shape);
  const want = [...shape.slice(0, -2), int4 ? rows / 2 : rows, cols];
  if (data.dtype !== "I8" || data.shape.join() !== want.join())
    throw new Error(`${names.data} is ${data.dtype} [${data.shape}], not I8 [${want}]`);
  const ints = new Int8Array(n);
  if (int4) {
    const nib = (b: number) => ((b & 15) ^ 8) - 8;
    for (let j = 0; j < n / cols / 2; j++)
      for (let k = 0; k < cols; k++) {
        const b = data.data[j * cols + k];
        ints[2 * j * cols + k] = nib(b);
        ints[(2 * j + 1) * cols + k] = nib(b >> 4);
      }
  } else {
    ints.set(new Int8Array(data.data.buffer, data.data.byteOffset, n));
  }
  const sT = got.get(names.scale!);
  if (!sT) throw new Error(`${names.scale} is not in the output`);
  if (sT.dtype !== "F32" || sT.shape.join() !== [...shape.slice(0, -1), 1].join())
    throw new Error(`${names.scale} is ${sT.dtype} [${sT.shape}], not F32 [${[...shape.slice(0, -1), 1]}]`);
  const s = new Float32Array(sT.data.slice().buffer);
  const scale = new Float32Array(n);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    scale[i] = s[Math.floor(i / cols)];
    values[i] = Math.fround(ints[i] * scale[i]);
  }
  return { values, scale, element: int4 ? "int4" : "int8", codes: data.data, ints };
}
