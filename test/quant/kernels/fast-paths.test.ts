/**
 * Every fast path of convertBand gives the same bytes as the generic (decode-then-encode,
 * specification) path, on random data with NaN/Inf values and on blocks that are all NaN, hold one
 * Inf, or are all zero; scales include zero, NaN, Inf and negative values.
 */
import { describe, expect, it } from "vitest";
import { seededUniform } from "../../../src/formats/prng.js";
import { summarizeErrorStats } from "../../../src/quant/error-stats.js";
import { convertBand, convertBandGeneric, fastPathOf } from "../../../src/quant/kernels/convert-band.js";
import type { EncodedBand } from "../../../src/quant/kernels/encode-band.js";
import type { BandSpec, MxRule, SourceCodec, TargetCodec } from "../../../src/quant/kernels/types.js";
import { withBackend } from "../../formats/helpers.js";

const rand = seededUniform(7);
const shapes: [number, number][] = [
  [1, 1],
  [128, 128],
  [130, 260],
  [576, 200],
  [5, 33],
];

/** BF16 codes: mostly moderate magnitudes, some specials (zeros, Inf, NaN, subnormal, 256, max). */
function bf16Data(n: number): Uint8Array {
  const h = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const r = rand();
    h[i] =
      r < 0.01
        ? [0, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0xffc1, 0x0001, 0x4380, 0x7f7f][i % 9]
        : Math.floor(rand() * 0x10000) & (r < 0.5 ? 0xbfff : 0xffff);
    if (r >= 0.01 && rand() < 0.9) h[i] = (h[i] & 0x807f) | ((110 + Math.floor(rand() * 30)) << 7);
  }
  return new Uint8Array(h.buffer);
}

/** Random codes (NaN codes 0x7F/0xFF included). */
const codes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));

/** Float32 scales: random, powers of two, and a few specials. */
function f32Scales(n: number, pow2: boolean): Uint8Array {
  const specials = [0, Number.NaN, Number.POSITIVE_INFINITY, -0.01, 2 ** -130, 3e38];
  return new Uint8Array(
    Float32Array.from({ length: n }, (_, i) =>
      n > 4 && i % 7 === 3
        ? specials[(i >> 3) % specials.length]
        : pow2
          ? 2 ** Math.floor(rand() * 20 - 15)
          : Math.fround(rand() * 0.01 + 1e-6),
    ).buffer,
  );
}

/** Scale bytes of `n` scales in a storage. */
function scaleBytes(storage: "f32" | "ue8m0" | "bf16" | "f16", n: number): Uint8Array {
  if (storage === "f32") return f32Scales(n, false);
  if (storage === "ue8m0")
    return Uint8Array.from({ length: n }, (_, i) => (i === 2 ? 0xff : 100 + Math.floor(rand() * 40)));
  // 16-bit scales around 2^-8 (exponent fields near the bias), a NaN and a zero among them.
  const h = Uint16Array.from(
    { length: n },
    () => Math.floor(rand() * 0x7f) | ((storage === "bf16" ? 119 : 7) << (storage === "bf16" ? 7 : 10)),
  );
  if (n > 3) h[1] = storage === "bf16" ? 0x7fc0 : 0x7e00;
  if (n > 5) h[5] = 0;
  return new Uint8Array(h.buffer);
}

/** Blocks that are all NaN, hold a single +Inf among zeros, or are all zero. */
function specialBlocks(bytes: Uint8Array, rows: number, cols: number, width: 1 | 2): void {
  const set = (r: number, c: number, v: number) => {
    if (r >= rows || c >= cols) return;
    const i = r * cols + c;
    if (width === 1) bytes[i] = v;
    else new Uint16Array(bytes.buffer)[i] = v;
  };
  const [nan, inf, zero] = width === 1 ? [0x7f, 0x7e, 0] : [0x7fc0, 0x7f80, 0];
  for (let r = 0; r < Math.min(rows, 128); r++)
    for (let c = 0; c < 128; c++) {
      set(r, c, nan);
      set(r, c + 128, c === 5 && r === 7 ? inf : zero);
      set(r + 128, c, zero);
    }
}

function same(a: EncodedBand, b: EncodedBand, what: string): void {
  expect(Buffer.compare(a.data, b.data), `${what} data`).toBe(0);
  expect(a.scale === null ? null : Buffer.compare(a.scale, b.scale!), `${what} scale`).toBe(
    b.scale === null ? null : 0,
  );
  for (const k of ["count", "nonfinite", "saturated", "flushed", "maxAbsErr"] as const)
    expect(a.stats[k], `${what} ${k}`).toBe(b.stats[k]);
  const dxx = b.stats.xx === 0 ? a.stats.xx : a.stats.xx / b.stats.xx - 1;
  expect(Math.abs(dxx), `${what} xx`).toBeLessThan(1e-9);
  const ra = summarizeErrorStats(a.stats).relFrob;
  const rb = summarizeErrorStats(b.stats).relFrob;
  if (Number.isFinite(rb)) expect(ra, `${what} relFrob`).toBeCloseTo(rb, 9);
  else expect(ra, `${what} relFrob`).toBe(rb);
}

/** Runs `spec` through convertBand (expecting a fast path) and the generic path. */
function check(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null, what: string): void {
  expect(fastPathOf(spec, scale), `${what}: a fast path`).not.toBeNull();
  const generic = () => convertBandGeneric(spec, data, scale);
  let expected: EncodedBand;
  try {
    expected = generic();
  } catch (e) {
    // E8M0 scale bytes need powers of two: both paths must refuse the same input.
    expect(() => convertBand(spec, data, scale), what).toThrow((e as Error).message);
    return;
  }
  same(convertBand(spec, data, scale), expected, what);
  // F16 saturates by default; the other overflow policy too.
  if (spec.target.kind === "plain" && spec.target.dtype === "F16" && spec.overflow === undefined)
    check({ ...spec, overflow: "nonfinite" }, data, scale, `${what} (overflow nonfinite)`);
}

const plainTargets: TargetCodec[] = (["BF16", "F16", "F32"] as const).map((dtype) => ({
  kind: "plain",
  dtype,
}));

describe("fast paths equal the generic kernels", () => {
  it("block E4M3/E5M2 -> BF16 / F16 / F32, every scale storage, with and without a tensor scale", () => {
    for (const [rows, cols] of shapes)
      for (const element of ["float8_e4m3fn", "float8_e5m2"] as const)
        for (const scaleStorage of ["f32", "ue8m0", "bf16", "f16"] as const)
          for (const tensorScale of [undefined, "multiply", "divide"] as const)
            for (const target of plainTargets) {
              const source: SourceCodec = {
                kind: "block",
                element,
                packed: false,
                block: [128, 128],
                scaleStorage,
              };
              if (tensorScale) source.tensorScale = tensorScale;
              const spec: BandSpec = { source, target, rows, cols, tensorScale: tensorScale && 0.37 };
              const d = codes(rows * cols);
              specialBlocks(d, rows, cols, 1);
              const s = scaleBytes(scaleStorage, Math.ceil(rows / 128) * Math.ceil(cols / 128));
              check(
                spec,
                d,
                s,
                `${element} ${scaleStorage} ${tensorScale} -> ${target.kind} ${rows}x${cols}`,
              );
            }
  });

  it("block E4M3/E5M2 -> per-channel INT8 / INT4 (W8A8, W4A8), both kernel backends", () => {
    for (const [rows, cols] of shapes)
      for (const element of ["float8_e4m3fn", "float8_e5m2"] as const)
        for (const scaleStorage of ["f32", "bf16"] as const)
          for (const tensorScale of [undefined, "multiply"] as const)
            for (const target of [
              { kind: "int-channel", bits: 8 },
              { kind: "int-channel", bits: 4, scaleBias: 1 },
              { kind: "int-channel", bits: 4, scaleBias: 16 },
            ] as TargetCodec[]) {
              if (target.kind !== "int-channel" || (target.bits === 4 && rows % 2 !== 0)) continue;
              if (target.kind === "int-channel" && target.scaleBias === 16 && cols % 16 !== 0) continue;
              const source: SourceCodec = {
                kind: "block",
                element,
                packed: false,
                block: [128, 128],
                scaleStorage,
              };
              if (tensorScale) source.tensorScale = tensorScale;
              const spec: BandSpec = { source, target, rows, cols, tensorScale: tensorScale && 0.37 };
              const d = codes(rows * cols);
              // Rows with a NaN code become zero rows: keep most rows finite so the codes are exercised.
              for (let i = 0; i < d.length; i++) if ((d[i] & 0x7f) === 0x7f && i % 97 !== 0) d[i] ^= 1;
              const s = scaleBytes(scaleStorage, Math.ceil(rows / 128) * Math.ceil(cols / 128));
              for (const backend of ["ts", "wasm"] as const)
                withBackend(backend, () =>
                  check(
                    spec,
                    d,
                    s,
                    `${element} ${scaleStorage} ${tensorScale} -> INT${target.bits} ${rows}x${cols} ${backend}`,
                  ),
                );
            }
  });

  it("BF16 -> NVFP4 (ModelOpt and compressed-tensors rules), both kernel backends", () => {
    for (const [rows, cols] of [
      [1, 16],
      [130, 272],
      [64, 4096 + 32],
    ])
      for (const rule of ["modelopt", "compressed-tensors"] as const)
        for (const outTensorScale of [2.3e-4, 0.5, 3e-39]) {
          const target: TargetCodec = {
            kind: "nvfp4",
            rule,
            tensorScale: rule === "modelopt" ? "multiply" : "divide",
          };
          const spec: BandSpec = {
            source: { kind: "plain", dtype: "BF16" },
            target,
            rows,
            cols,
            outTensorScale,
          };
          const d = bf16Data(rows * cols);
          specialBlocks(d, rows, cols, 2);
          for (const backend of ["ts", "wasm"] as const)
            withBackend(backend, () =>
              check(spec, d, null, `${rule} x${outTensorScale} ${rows}x${cols} ${backend}`),
            );
        }
  });

  it("per-tensor E4M3/E5M2 -> BF16 / F16 / F32", () => {
    for (const [rows, cols] of shapes)
      for (const element of ["float8_e4m3fn", "float8_e5m2"] as const)
        for (const t of [0.0123, 3e38, 0])
          for (const target of plainTargets) {
            const spec: BandSpec = {
              source: { kind: "tensor", element },
              target,
              rows,
              cols,
              tensorScale: t,
            };
            check(spec, codes(rows * cols), null, `tensor ${element} x${t} ${rows}x${cols}`);
          }
  });

  it("BF16 -> FP8 UE8M0 (F32 and F8_E8M0 scales)", () => {
    for (const [rows, cols] of shapes)
      for (const scaleDtype of ["F32", "F8_E8M0"] as const) {
        const spec: BandSpec = {
          source: { kind: "plain", dtype: "BF16" },
          target: { kind: "fp8-block", block: [128, 128], scaleFmt: "ue8m0", scaleDtype },
          rows,
          cols,
        };
        const d = bf16Data(rows * cols);
        specialBlocks(d, rows, cols, 2);
        check(spec, d, null, `${scaleDtype} ${rows}x${cols}`);
      }
  });

  it("BF16 -> MXFP8 (E4M3, every MX scale rule but triton's), both kernel backends", () => {
    const rules: MxRule[] = ["floor", "ceil", "even", "rceil", "ct", "modelopt"];
    const mxShapes: [number, number][] = [
      [1, 32],
      [128, 128],
      [130, 256],
      [5, 96],
      [300, 2080],
    ];
    for (const [rows, cols] of mxShapes)
      for (const rule of rules) {
        const spec: BandSpec = {
          source: { kind: "plain", dtype: "BF16" },
          target: { kind: "mx", element: "float8_e4m3fn", rule },
          rows,
          cols,
        };
        const d = bf16Data(rows * cols);
        specialBlocks(d, rows, cols, 2);
        // Groups whose scale shifts far: all subnormal (byte 0 under most rules: k = 127, so the
        // subnormals get E4M3 codes), subnormals beside a tiny normal, and a NaN beside large
        // finite values (ModelOpt gives a NaN group byte 0: they saturate).
        const h = new Uint16Array(d.buffer);
        for (let i = 0; i < 32; i++) {
          h[i] = (i * 4 + 1) | (i & 1 ? 0x8000 : 0);
          if (cols >= 64) h[32 + i] = i === 3 ? 0x0880 : i * 3;
          if (cols >= 96) h[64 + i] = i === 0 ? 0x7fc0 : 0x4700 + i * 9 + (i & 1 ? 0x8000 : 0);
        }
        for (const backend of ["ts", "wasm"] as const)
          withBackend(backend, () => check(spec, d, null, `${rule} ${rows}x${cols} ${backend}`));
      }
    // Not a fast path: rows not made of whole groups, FP4 elements, triton's rule.
    const base = { source: { kind: "plain", dtype: "BF16" }, rows: 2, cols: 48 } as const;
    const mx = (element: "float8_e4m3fn" | "float4_e2m1fn", rule: MxRule, cols = 48): BandSpec => ({
      ...base,
      cols,
      target: { kind: "mx", element, rule },
    });
    expect(fastPathOf(mx("float8_e4m3fn", "floor"), null)).toBeNull();
    expect(fastPathOf(mx("float8_e4m3fn", "floor", 64), null)).not.toBeNull();
    expect(fastPathOf(mx("float4_e2m1fn", "floor"), null)).toBeNull();
    expect(fastPathOf(mx("float4_e2m1fn", "floor", 64), null)).not.toBeNull();
    expect(fastPathOf(mx("float8_e4m3fn", "triton", 64), null)).toBeNull();
    expect(fastPathOf(mx("float4_e2m1fn", "triton", 64), null)).toBeNull();
  });

  it("BF16 -> MXFP4 (E2M1, every MX scale rule but triton's), both kernel backends", () => {
    const rules: MxRule[] = ["floor", "ceil", "even", "rceil", "ct", "modelopt"];
    const mxShapes: [number, number][] = [
      [1, 32],
      [3, 64],
      [128, 128],
      [130, 256],
      [5, 160],
      [300, 2080],
      [2, 4096 + 32],
    ];
    // -0, negative subnormals, and negatives whose product with 2^-125 is at, just above and below
    // 2^-150 (e = 102, 103, 101): compressed-tensors writes +0 for those that underflow to -0.0.
    const tinyNegatives = [0x8000, 0x8001, 0x807f, 0x8080, 0xb300, 0xb301, 0xb380, 0xb2c0, 0xb2ff, 0x9000];
    // Scaled by 2^0 (amax 4 under floor): E2M1's rounding boundaries (ties to even) and neighbours.
    const boundaries = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 0.2500001, 0.7499, 2.51, 4.99, 3.49, 1.74];
    for (const [rows, cols] of mxShapes)
      for (const rule of rules) {
        const spec: BandSpec = {
          source: { kind: "plain", dtype: "BF16" },
          target: { kind: "mx", element: "float4_e2m1fn", rule },
          rows,
          cols,
        };
        const d = bf16Data(rows * cols);
        specialBlocks(d, rows, cols, 2);
        // As for MXFP8: an all-subnormal group, subnormals beside a tiny normal, a NaN beside large
        // finite values; then huge amax beside tiny negatives, and rounding boundaries.
        const h = new Uint16Array(d.buffer);
        const bf16 = (x: number) => new Uint16Array(new Float32Array([x]).buffer)[1];
        for (let i = 0; i < 32; i++) {
          // -0 among the subnormals too: byte 0, so its shift passes the zero threshold (k = 127).
          h[i] = i === 30 ? 0x8000 : (i * 4 + 1) | (i & 1 ? 0x8000 : 0);
          if (cols >= 64) h[32 + i] = i === 3 ? 0x0880 : i * 3;
          if (cols >= 96) h[64 + i] = i === 0 ? 0x7fc0 : 0x4700 + i * 9 + (i & 1 ? 0x8000 : 0);
          if (cols >= 128) h[96 + i] = i === 0 ? 0x7f00 : tinyNegatives[i % tinyNegatives.length];
          if (cols >= 160)
            h[128 + i] = i === 0 ? bf16(4) : bf16(boundaries[i % boundaries.length]) | (i & 1 ? 0x8000 : 0);
          // Subnormals under the amax 2^-123 / 2^-124 (byte 2 / 1 under floor: k = 125, 126), which
          // shift them to 0.25..1, E2M1's subnormal step.
          if (cols >= 224) {
            h[160 + i] = i === 0 ? 0x0200 : (0x40 + i * 2) | (i & 1 ? 0x8000 : 0);
            h[192 + i] = i === 0 ? 0x0180 : (0x3f + i * 2) | (i & 2 ? 0x8000 : 0);
          }
        }
        for (const backend of ["ts", "wasm"] as const)
          withBackend(backend, () => check(spec, d, null, `${rule} ${rows}x${cols} ${backend}`));
      }
  });

  it("block E4M3 -> block E4M3 (requantization to ue8m0 and float)", () => {
    for (const [rows, cols] of shapes)
      for (const [scaleFmt, scaleDtype] of [
        ["ue8m0", "F32"],
        ["ue8m0", "F8_E8M0"],
        ["float", "F32"],
      ] as const)
        for (const storage of ["f32", "ue8m0", "bf16"] as const)
          for (const block of [
            [128, 128],
            [1, 32],
          ] as [number, number][]) {
            const spec: BandSpec = {
              source: {
                kind: "block",
                element: "float8_e4m3fn",
                packed: false,
                block,
                scaleStorage: storage,
              },
              target: { kind: "fp8-block", block, scaleFmt, scaleDtype },
              rows,
              cols,
            };
            const d = codes(rows * cols);
            specialBlocks(d, rows, cols, 1);
            const n = Math.ceil(rows / block[0]) * Math.ceil(cols / block[1]);
            const s =
              storage === "f32" && scaleFmt === "ue8m0" && rand() < 0.5
                ? f32Scales(n, true)
                : scaleBytes(storage, n);
            check(spec, d, s, `${scaleFmt} ${scaleDtype} ${storage} ${block} ${rows}x${cols}`);
          }
  });

  it("packed sources and other targets take the generic path", () => {
    const packed: BandSpec = {
      source: { kind: "block", element: "float4_e2m1fn", packed: true, block: [1, 16], scaleStorage: "e4m3" },
      target: { kind: "plain", dtype: "BF16" },
      rows: 2,
      cols: 32,
    };
    expect(fastPathOf(packed, new Uint8Array(4))).toBeNull();
    const f16: BandSpec = {
      source: { kind: "plain", dtype: "F16" },
      target: { kind: "fp8-block", block: [128, 128], scaleFmt: "ue8m0", scaleDtype: "F32" },
      rows: 2,
      cols: 32,
    };
    expect(fastPathOf(f16, null)).toBeNull();
  });
});
