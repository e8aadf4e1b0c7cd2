/**
 * The WebAssembly element loops of the code-table band kernels (src/quant/kernels/code-map-wasm.ts)
 * against the TypeScript loops, the specification: `dequantBand` (8-bit codes with block or
 * per-tensor scales -> BF16/F16/F32) and `requantBand` (block E4M3 -> block E4M3) run with each
 * backend forced must give byte-identical outputs and scales and identical statistics (the
 * statistics come from the same code counts reduced in the same order, so they are exact, not
 * close). Codes: every one of the 256 in every band (NaN 0x7f/0xff, E5M2's Inf, subnormals), long
 * runs of one code (the interleaved histogram sub-bins) and random codes. Scales: subnormal, huge
 * (BF16/F16 overflow to Inf, F16 saturation), NaN, Inf, zero, negative. Blocks 128x128, 1x128,
 * 1x32, one not dividing the chunk (3x100) and a per-tensor scale; bands with partial right and
 * bottom blocks, odd column counts, codes at odd byte offsets, block rows longer than one chunk
 * (65536 codes) and rows longer than one chunk.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type KernelBackend, setKernelBackend } from "../../src/formats/wasm/kernel-backend.js";
import { codeMapWasm } from "../../src/quant/kernels/code-map-wasm.js";
import type { EncodedBand } from "../../src/quant/kernels/encode-band.js";
import { dequantBand } from "../../src/quant/kernels/fast-dequant.js";
import { requantBand } from "../../src/quant/kernels/fast-requant.js";
import type { BandSpec, PlainDtype, SourceCodec } from "../../src/quant/kernels/types.js";
import { withBackend } from "../formats/helpers.js";
import { mulberry32 } from "../safetensors/helpers.js";

afterEach(() => setKernelBackend("auto"));

/**
 * `rows x cols` codes at byte offset `offset` of a larger buffer: the 256 codes in order, then rows
 * alternating between runs of one code and random codes.
 */
function codes(seed: number, rows: number, cols: number, offset: number): Uint8Array {
  const rnd = mulberry32(seed);
  const n = rows * cols;
  const d = new Uint8Array(new ArrayBuffer(n + offset + 5), offset, n);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      if (r % 3 === 1) d[i] = [0x7f, 0x38, 0x01, 0xff, 0x00][Math.floor(c / 37) % 5];
      else d[i] = Math.floor(rnd() * 256);
    }
  for (let i = 0; i < Math.min(256, n); i++) d[i] = i;
  return d;
}

/** Block scales, every few a special one (subnormal, huge, NaN, Inf, zero, negative). */
const SPECIAL = [2 ** -140, 2 ** -149, 3e38, 1e36, 1000, Number.NaN, Number.POSITIVE_INFINITY, 0, -0, -0.37];
function f32Scales(seed: number, n: number): Uint8Array {
  const rnd = mulberry32(seed);
  const s = Float32Array.from({ length: n }, (_, i) =>
    i % 3 === 1 ? SPECIAL[Math.floor(i / 3) % SPECIAL.length] : Math.fround(rnd() * 0.01 + 1e-4),
  );
  return new Uint8Array(s.buffer);
}

/** UE8M0 scale bytes (0xff NaN among them). */
function ue8m0Scales(seed: number, n: number): Uint8Array {
  const rnd = mulberry32(seed);
  return Uint8Array.from({ length: n }, (_, i) => (i % 5 === 2 ? 0xff : 100 + Math.floor(rnd() * 40)));
}

function expectSame(ts: EncodedBand | Error, wasm: EncodedBand | Error, what: string): void {
  if (ts instanceof Error || wasm instanceof Error) {
    expect(wasm instanceof Error ? wasm.message : "no error", what).toBe(
      ts instanceof Error ? ts.message : "no error",
    );
    return;
  }
  expect(wasm.data.length, `${what}: length`).toBe(ts.data.length);
  const a = Buffer.from(ts.data.buffer, ts.data.byteOffset, ts.data.length);
  const b = Buffer.from(wasm.data.buffer, wasm.data.byteOffset, wasm.data.length);
  if (!a.equals(b)) {
    let i = 0;
    while (a[i] === b[i]) i++;
    expect(`byte ${i}: ${b[i]}`, `${what}: first difference`).toBe(`byte ${i}: ${a[i]}`);
  }
  expect(wasm.scale === null ? null : Buffer.from(wasm.scale), `${what}: scales`).toEqual(
    ts.scale === null ? null : Buffer.from(ts.scale),
  );
  expect(wasm.stats, `${what}: statistics`).toEqual(ts.stats);
}

function both(f: () => EncodedBand, what: string): EncodedBand {
  const run = (b: KernelBackend) =>
    withBackend(b, () => {
      try {
        return f();
      } catch (e) {
        return e as Error;
      }
    });
  const ts = run("ts");
  const wasm = run("wasm");
  expectSame(ts, wasm, what);
  return ts as EncodedBand;
}

/** [rows, cols]: partial right and bottom blocks, odd widths, block rows and rows over one chunk. */
const SHAPES: [number, number][] = [
  [1, 1],
  [5, 33],
  [129, 129],
  [257, 1001],
  [2, 70001],
];
const BLOCKS: ([number, number] | "tensor")[] = [[128, 128], [1, 128], [1, 32], [3, 100], "tensor"];
const TARGETS: { dtype: PlainDtype; overflow?: "saturate" | "nonfinite" }[] = [
  { dtype: "BF16" },
  { dtype: "F16", overflow: "saturate" },
  { dtype: "F16", overflow: "nonfinite" },
  { dtype: "F32" },
];

describe("code-table kernels: WebAssembly loops against the TypeScript loops", () => {
  it("the switch picks the WebAssembly loops when forced, and for large blocks under auto", () => {
    expect(withBackend("wasm", () => codeMapWasm(1, 1))).toBe(true);
    expect(withBackend("ts", () => codeMapWasm(1 << 20, 1 << 14))).toBe(false);
    expect(withBackend("auto", () => codeMapWasm(1 << 20, 1 << 14))).toBe(true);
    // Small blocks (MX 1x32): the tables cost more than the loop; auto keeps TypeScript.
    expect(withBackend("auto", () => codeMapWasm(1 << 20, 32))).toBe(false);
    expect(withBackend("auto", () => codeMapWasm(100, 1 << 14))).toBe(false);
  });

  it("dequantBand: every code, special scales, every block and target, odd shapes and offsets", () => {
    let seed = 1;
    for (const [rows, cols] of SHAPES)
      for (const blk of BLOCKS) {
        // Rows over one chunk with 1x32 blocks build 2188 tables per row: one element type suffices.
        const elements =
          cols > 65536 && blk !== "tensor" && blk[1] < 128
            ? ["float8_e4m3fn"]
            : ["float8_e4m3fn", "float8_e5m2"];
        for (const element of elements as ("float8_e4m3fn" | "float8_e5m2")[])
          for (const { dtype, overflow } of TARGETS) {
            const data = codes(seed++, rows, cols, 1 + (seed % 3));
            const what = `${element} ${blk} -> ${dtype} ${overflow ?? ""} ${rows}x${cols}`;
            if (blk === "tensor") {
              for (const t of [0.0123, 2 ** -140, 3e38, 1000, 0, -0.5]) {
                const spec: BandSpec = {
                  source: { kind: "tensor", element },
                  target: { kind: "plain", dtype },
                  rows,
                  cols,
                  tensorScale: t,
                  overflow,
                };
                both(() => dequantBand(spec, data, null), `${what} x${t}`);
              }
              continue;
            }
            const source: SourceCodec = {
              kind: "block",
              element,
              packed: false,
              block: blk,
              scaleStorage: "f32",
            };
            const spec: BandSpec = { source, target: { kind: "plain", dtype }, rows, cols, overflow };
            const n = Math.ceil(rows / blk[0]) * Math.ceil(cols / blk[1]);
            both(() => dequantBand(spec, data, f32Scales(seed, n)), what);
          }
      }
  }, 120_000);

  it("dequantBand: UE8M0 scales and a tensor scale on top of block scales", () => {
    const [rows, cols] = [300, 777];
    const data = codes(99, rows, cols, 3);
    const n = Math.ceil(rows / 128) * Math.ceil(cols / 128);
    const ue: BandSpec = {
      source: {
        kind: "block",
        element: "float8_e4m3fn",
        packed: false,
        block: [128, 128],
        scaleStorage: "ue8m0",
      },
      target: { kind: "plain", dtype: "BF16" },
      rows,
      cols,
    };
    both(() => dequantBand(ue, data, ue8m0Scales(5, n)), "ue8m0 scales");
    const mul: BandSpec = {
      source: {
        kind: "block",
        element: "float8_e4m3fn",
        packed: false,
        block: [128, 128],
        scaleStorage: "f32",
        tensorScale: "divide",
      },
      target: { kind: "plain", dtype: "F16" },
      rows,
      cols,
      tensorScale: 0.37,
    };
    both(() => dequantBand(mul, data, f32Scales(6, n)), "f32 scales / tensor scale");
  });

  it("requantBand: every code, special scales, UE8M0 and float targets, odd shapes and offsets", () => {
    let seed = 1000;
    for (const [rows, cols] of SHAPES)
      for (const blk of BLOCKS) {
        if (blk === "tensor") continue;
        for (const [scaleFmt, scaleDtype] of [
          ["ue8m0", "F32"],
          ["ue8m0", "F8_E8M0"],
          ["float", "F32"],
        ] as const)
          for (const storage of ["f32", "ue8m0"] as const) {
            const data = codes(seed++, rows, cols, 1 + (seed % 3));
            const spec: BandSpec = {
              source: {
                kind: "block",
                element: "float8_e4m3fn",
                packed: false,
                block: blk,
                scaleStorage: storage,
              },
              target: { kind: "fp8-block", block: blk, scaleFmt, scaleDtype },
              rows,
              cols,
            };
            const n = Math.ceil(rows / blk[0]) * Math.ceil(cols / blk[1]);
            const scale = storage === "f32" ? f32Scales(seed, n) : ue8m0Scales(seed, n);
            both(
              () => requantBand(spec, data, scale),
              `${scaleFmt} ${scaleDtype} ${storage} ${blk} ${rows}x${cols}`,
            );
          }
      }
  }, 120_000);

  it("a small band after a large one, and a large one after a small one (memory reuse)", () => {
    const spec = (rows: number, cols: number): BandSpec => ({
      source: {
        kind: "block",
        element: "float8_e4m3fn",
        packed: false,
        block: [128, 128],
        scaleStorage: "f32",
      },
      target: { kind: "plain", dtype: "BF16" },
      rows,
      cols,
    });
    for (const [rows, cols] of [
      [600, 3000],
      [7, 9],
      [130, 140],
      [600, 3000],
    ] as [number, number][]) {
      const n = Math.ceil(rows / 128) * Math.ceil(cols / 128);
      both(
        () => dequantBand(spec(rows, cols), codes(rows, rows, cols, 1), f32Scales(cols, n)),
        `${rows}x${cols}`,
      );
    }
  });
});
