/**
 * Every layout the detector knows, end to end as a user meets it: write a small checkpoint in that
 * layout, run `fp8kit inspect --json`, run every `fp8kit convert` command it suggests, and check
 * the output against an independent computation: codes decoded with the format codec, scales
 * combined and multiplied in float32 (`Math.fround`), rounded to BF16 with the codec. Layouts
 * `convert` cannot handle must not be suggested, and `convert` must refuse them by name (exit 2).
 *
 * The safetensors files here are written and read by a few lines of this test, not by the
 * library's reader and writer, so the test does not lean on the code it checks.
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decode, encode } from "../../src/formats/index.js";

const CLI = process.env.FP8KIT_TEST_CLI ?? join(import.meta.dirname, "..", "..", "dist", "cli", "main.js");
const tmp = mkdtempSync(join(tmpdir(), "fp8kit-layouts-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface T {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** A safetensors file: 8-byte little-endian header length, JSON header, tensor bytes in order. */
function safetensorsBytes(tensors: readonly T[]): Uint8Array {
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
function readTensors(dir: string): Map<string, T> {
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
function values(n: number, seed: number, scale = 1): Float32Array {
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
const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const f32 = (...v: number[]) => bytes(Float32Array.from(v));
const e4m3 = (x: Float32Array) => encode("float8_e4m3fn", x, { overflow: "saturate" }) as Uint8Array;

/** A quantized weight of the test: its tensors, and the float32 value of every element it stands for. */
interface Weight {
  out: string;
  shape: number[];
  tensors: T[];
  expected: Float32Array;
}

/** E2M1 codes of `n` elements packed two per byte, low nibble first, and their float32 values. */
function fp4(n: number, seed: number): { packed: Uint8Array; vals: Float32Array } {
  const codes = encode("float4_e2m1fn", values(n, seed, 6), { overflow: "saturate" }) as Uint8Array;
  const packed = new Uint8Array(n / 2);
  for (let i = 0; i < n; i += 2) packed[i / 2] = (codes[i] & 15) | ((codes[i + 1] & 15) << 4);
  return { packed, vals: decode("float4_e2m1fn", codes) };
}

/** Element (r, c)'s value = fl32(code value * scale of its block). */
function blockValues(
  vals: Float32Array,
  rows: number,
  cols: number,
  br: number,
  bc: number,
  s: Float32Array,
): Float32Array {
  const gc = Math.ceil(cols / bc);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++)
      out[r * cols + c] = Math.fround(vals[r * cols + c] * s[Math.floor(r / br) * gc + Math.floor(c / bc)]);
  return out;
}

function fp8Block(
  base: string,
  rows: number,
  cols: number,
  scaleSuffix: string,
  scaleDtype: "F32" | "BF16" | "F8_E8M0",
  seed: number,
): Weight {
  const codes = e4m3(values(rows * cols, seed, 448));
  const n = Math.ceil(rows / 128) * Math.ceil(cols / 128);
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
  } else {
    s = values(n, seed + 1, 0.01).map((v) => Math.abs(v) + 1e-4);
    sData = bytes(s);
  }
  const sShape = [Math.ceil(rows / 128), Math.ceil(cols / 128)];
  return {
    out: `${base}.weight`,
    shape: [rows, cols],
    tensors: [
      { name: `${base}.weight`, dtype: "F8_E4M3", shape: [rows, cols], data: codes },
      { name: `${base}.weight${scaleSuffix}`, dtype: scaleDtype, shape: sShape, data: sData },
    ],
    expected: blockValues(decode("float8_e4m3fn", codes), rows, cols, 128, 128, s),
  };
}

function mx(
  base: string,
  rows: number,
  cols: number,
  fp: "fp8" | "fp4",
  seed: number,
  dataSuffix = ".weight",
): Weight {
  const sData = Uint8Array.from({ length: (rows * cols) / 32 }, (_, i) => 118 + (i % 7));
  const s = decode("float8_e8m0fnu", sData);
  const { data, vals } =
    fp === "fp8"
      ? (() => {
          const c = e4m3(values(rows * cols, seed, 448));
          return { data: c, vals: decode("float8_e4m3fn", c) };
        })()
      : (() => {
          const p = fp4(rows * cols, seed);
          return { data: p.packed, vals: p.vals };
        })();
  return {
    out: `${base}.weight`,
    shape: [rows, cols],
    tensors: [
      {
        name: `${base}${dataSuffix}`,
        dtype: fp === "fp8" ? "F8_E4M3" : "U8",
        shape: fp === "fp8" ? [rows, cols] : [rows, cols / 2],
        data,
      },
      { name: `${base}.weight_scale`, dtype: "U8", shape: [rows, cols / 32], data: sData },
    ],
    expected: blockValues(vals, rows, cols, 1, 32, s),
  };
}

/** NVFP4: E2M1 packed, E4M3 scale per 16, and a per-tensor F32 that multiplies (ModelOpt) or divides (compressed-tensors). */
function nvfp4(base: string, rows: number, cols: number, flavour: "modelopt" | "ct", seed: number): Weight {
  const { packed, vals } = fp4(rows * cols, seed);
  const sCodes = e4m3(values((rows * cols) / 16, seed + 1, 300).map((v) => Math.abs(v) + 0.1));
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
  return {
    out: `${base}.weight`,
    shape: [rows, cols],
    tensors: [
      {
        name: `${base}${flavour === "modelopt" ? ".weight" : ".weight_packed"}`,
        dtype: "U8",
        shape: [rows, cols / 2],
        data: packed,
      },
      { name: `${base}.weight_scale`, dtype: "F8_E4M3", shape: [rows, cols / 16], data: sCodes },
      ...extra,
    ],
    expected: blockValues(vals, rows, cols, 1, 16, eff),
  };
}

function perTensor(
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

function gptOss(base: string, experts: number, rows: number, cols: number, seed: number): Weight {
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

const bf16Tensor = (name: string, shape: number[], seed: number): T => ({
  name,
  dtype: "BF16",
  shape,
  data: bytes(
    encode(
      "bfloat16",
      values(
        shape.reduce((a, b) => a * b, 1),
        seed,
        0.05,
      ),
    ) as Uint16Array,
  ),
});

interface Case {
  layout: string;
  config: Record<string, unknown>;
  hfQuantConfig?: Record<string, unknown>;
  weights: Weight[];
  extra?: T[];
}

const L = "model.layers.0";
const ct = (format: string, weights: Record<string, unknown>) => ({
  quant_method: "compressed-tensors",
  format,
  config_groups: { group_0: { targets: ["Linear"], weights } },
});
const CASES: Case[] = [
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

function writeCase(dir: string, c: Case): void {
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
}

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });

interface Compat {
  target: string;
  status: string;
  command: string | null;
}
function suggested(dir: string): { kind: string; commands: string[] } {
  const r = cli("inspect", dir, "--json");
  expect(r.status, r.stderr).toBe(0);
  const j = JSON.parse(r.stdout) as { layout: { kind: string }; compatibility: Compat[] };
  const commands = [
    ...new Set(
      j.compatibility
        .map((c) => c.command)
        .filter((c): c is string => c?.startsWith("fp8kit convert ") ?? false),
    ),
  ];
  return { kind: j.layout.kind, commands };
}

/** Runs a suggested command with `<out>` made concrete; returns the output directory. */
function runSuggested(command: string, out: string) {
  const args = command.split(" ").slice(1);
  args[2] = out;
  return cli(...args, "--workers", "0", "--verify");
}

describe("every layout: inspect, then the command inspect suggests", () => {
  CASES.forEach((c, i) => {
    it(`${c.layout} #${i}: the suggested conversion succeeds with the independently computed values`, () => {
      const dir = join(tmp, `case-${i}`);
      writeCase(dir, c);
      const { kind, commands } = suggested(dir);
      expect(kind).toBe(c.layout);
      expect(commands.length).toBeGreaterThan(0);
      for (const [k, command] of commands.entries()) {
        expect(command).toMatch(/--to (bf16|fp16|fp32)$/);
        const out = join(tmp, `case-${i}-out-${k}`);
        const r = runSuggested(command, out);
        expect(r.status, r.stderr).toBe(0);
        const got = readTensors(out);
        for (const w of c.weights) {
          const t = got.get(w.out);
          expect(t, `${w.out} in the output`).toBeDefined();
          expect(t!.dtype).toBe("BF16");
          expect(t!.shape).toEqual(w.shape);
          const want = encode("bfloat16", w.expected) as Uint16Array;
          const have = new Uint16Array(t!.data.buffer, t!.data.byteOffset, t!.data.length / 2);
          let diff = 0;
          for (let j = 0; j < want.length; j++) if (want[j] !== have[j]) diff++;
          expect(diff, `${w.out}: elements differing from the reference`).toBe(0);
        }
        // Nothing quantized, no scale and no activation scale survives under the dense label.
        for (const t of got.values()) {
          expect(["BF16", "F32"], `${t.name} is ${t.dtype}`).toContain(t.dtype);
          expect(t.name).not.toMatch(/_scale(_inv|_2)?$|_global_scale$|_scales$|_blocks$|_packed$/);
        }
        const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
        expect(config.quantization_config).toBeUndefined();
        expect(existsSync(join(out, "hf_quant_config.json"))).toBe(false);
        expect(cli("lint", out).status).toBe(0);
      }
    });
  });
});

describe("layouts convert cannot write are refused by name and never suggested", () => {
  it("NVFP4 and per-tensor FP8 are sources for dense targets only: --to fp8 / mxfp8 exits 2 naming the layout", () => {
    for (const [i, title] of [
      [5, "compressed-tensors NVFP4"],
      [6, "NVIDIA ModelOpt NVFP4"],
      [9, "FP8 with per-tensor scales"],
    ] as const) {
      const dir = join(tmp, `case-${i}`);
      if (!existsSync(dir)) writeCase(dir, CASES[i]);
      for (const to of ["fp8", "mxfp8"]) {
        const r = cli("convert", dir, join(tmp, `refused-${i}-${to}`), "--to", to);
        expect(r.status).toBe(2);
        expect(r.stderr).toContain(title);
        expect(r.stderr).toMatch(/not a supported source/);
        expect(r.stderr).not.toMatch(/\n\s+at /);
        expect(existsSync(join(tmp, `refused-${i}-${to}`, "model.safetensors"))).toBe(false);
      }
    }
  });
  it("declared quantization with no recognised tensors, and an INT8 weight no layout knows: no command, exit 2", () => {
    const unknown: Case = {
      layout: "unknown",
      config: { quantization_config: ct("int-quantized", { num_bits: 8 }) },
      weights: [],
    };
    const int8: Case = {
      layout: "unquantized",
      config: {},
      weights: [],
      extra: [
        { name: `${L}.mlp.up_proj.weight`, dtype: "I8", shape: [16, 32], data: new Uint8Array(512).fill(3) },
        {
          name: `${L}.mlp.up_proj.weight_scale`,
          dtype: "F32",
          shape: [16, 1],
          data: bytes(new Float32Array(16).fill(0.01)),
        },
      ],
    };
    for (const [k, c] of [unknown, int8].entries()) {
      const dir = join(tmp, `stray-${k}`);
      writeCase(dir, c);
      const s = suggested(dir);
      expect(s.kind).toBe(c.layout);
      expect(s.commands).toEqual([]);
      const r = cli("convert", dir, join(tmp, `stray-${k}-out`), "--to", "bf16");
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(
        k === 0 ? /no tensor matches a layout fp8kit knows/ : /up_proj\.weight" \(I8\) holds quantized codes/,
      );
    }
  });
});
