/** Every fast path of convertBand gives the same bytes as the generic (specification) path. */
import { describe, expect, it } from "vitest";
import { convertBandFast } from "../../src/convert/fast.js";
import {
  type BandSpec,
  convertBand,
  convertBandGeneric,
  type EncodedBand,
  summarize,
} from "../../src/convert/kernels.js";
import { seededUniform } from "../../src/formats/prng.js";

const rand = seededUniform(7);
const shapes: [number, number][] = [
  [1, 1],
  [128, 128],
  [130, 260],
  [576, 200],
  [5, 33],
];

function bf16Data(n: number): Uint8Array {
  const h = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const r = rand();
    h[i] =
      r < 0.01
        ? [0, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x4380, 0x7f7f][i % 8]
        : Math.floor(rand() * 0x10000) & (r < 0.5 ? 0xbfff : 0xffff);
    if (rand() < 0.9) h[i] = (h[i] & 0x807f) | ((110 + Math.floor(rand() * 30)) << 7);
  }
  return new Uint8Array(h.buffer);
}

function fp8Data(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

function scales(n: number, pow2: boolean): Uint8Array {
  return new Uint8Array(
    Float32Array.from({ length: n }, () =>
      pow2 ? 2 ** Math.floor(rand() * 20 - 15) : Math.fround(rand() * 0.01 + 1e-6),
    ).buffer,
  );
}

function same(a: EncodedBand, b: EncodedBand, what: string): void {
  expect(Buffer.compare(a.data, b.data), `${what} data`).toBe(0);
  expect(a.scale === null ? null : Buffer.compare(a.scale, b.scale!), `${what} scale`).toBe(
    b.scale === null ? null : 0,
  );
  for (const k of ["count", "nonfinite", "saturated", "flushed"] as const)
    expect(a.stats[k], `${what} ${k}`).toBe(b.stats[k]);
  const sa = summarize(a.stats);
  const sb = summarize(b.stats);
  expect(sa.relFrob).toBeCloseTo(sb.relFrob, 9);
  expect(a.stats.maxAbsErr).toBe(b.stats.maxAbsErr);
}

describe("fast paths equal the generic kernels", () => {
  it("block E4M3 -> BF16 / F16 / F32", () => {
    for (const [rows, cols] of shapes)
      for (const dtype of ["BF16", "F16", "F32"] as const) {
        const spec: BandSpec = {
          source: {
            kind: "block",
            element: "float8_e4m3fn",
            packed: false,
            block: [128, 128],
            scaleStorage: "f32",
          },
          target: { kind: "plain", dtype },
          rows,
          cols,
        };
        const d = fp8Data(rows * cols);
        const s = scales(Math.ceil(rows / 128) * Math.ceil(cols / 128), false);
        expect(convertBandFast(spec, d, s)).not.toBeNull();
        same(convertBand(spec, d, s), convertBandGeneric(spec, d, s), `${dtype} ${rows}x${cols}`);
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
        expect(convertBandFast(spec, d, null)).not.toBeNull();
        same(convertBand(spec, d, null), convertBandGeneric(spec, d, null), `${scaleDtype} ${rows}x${cols}`);
      }
  });

  it("block E4M3 -> block E4M3 (requantization to ue8m0 and float)", () => {
    for (const [rows, cols] of shapes)
      for (const scaleFmt of ["ue8m0", "float"] as const)
        for (const e8 of ["f32", "ue8m0"] as const) {
          const spec: BandSpec = {
            source: {
              kind: "block",
              element: "float8_e4m3fn",
              packed: false,
              block: [128, 128],
              scaleStorage: e8,
            },
            target: { kind: "fp8-block", block: [128, 128], scaleFmt, scaleDtype: "F32" },
            rows,
            cols,
          };
          const d = fp8Data(rows * cols);
          const n = Math.ceil(rows / 128) * Math.ceil(cols / 128);
          const s =
            e8 === "f32"
              ? scales(n, false)
              : Uint8Array.from({ length: n }, () => 100 + Math.floor(rand() * 40));
          expect(convertBandFast(spec, d, s)).not.toBeNull();
          same(convertBand(spec, d, s), convertBandGeneric(spec, d, s), `${scaleFmt} ${e8} ${rows}x${cols}`);
        }
  });
});
