/**
 * Stacked (rank-3) tensors use the per-matrix block grid everywhere: the scale shape is what the
 * checkpoint layer expects loaders to read, and quantize / dequantize / blockAmax / metrics of a
 * stacked tensor equal those of its matrices taken one by one.
 */
import { describe, expect, it } from "vitest";
import { expectedScaleShape } from "../../src/checkpoint/detect.js";
import {
  blockAmax,
  dequantize,
  errorMetrics,
  quantize,
  type Scheme,
  scaleGrid,
  scaleShapeFor,
} from "../../src/quant/index.js";
import { firstDiff, randomNormal } from "./reference.js";

const shapes: number[][] = [
  [2, 192, 128],
  [3, 130, 256],
  [2, 2, 100, 64],
  [4, 128, 128],
  [1, 1, 384],
];
const blocks: [number, number][] = [
  [128, 128],
  [64, 32],
  [1, 128],
  [1, 32],
];

const concat = <T extends Float32Array | Float64Array | Uint8Array>(parts: T[]): T => {
  const out = new (parts[0].constructor as new (n: number) => T)(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

describe("rank-3 block grids are per matrix", () => {
  it("scale shapes equal the checkpoint layer's expectedScaleShape", () => {
    for (const shape of shapes)
      for (const block of blocks) {
        expect(scaleShapeFor(shape, block), `[${shape}] in ${block}`).toEqual(
          expectedScaleShape(shape, block),
        );
        const [gr, gc] = scaleGrid(shape, block);
        expect(gr * gc).toBe(expectedScaleShape(shape, block).reduce((a, b) => a * b, 1));
      }
    // The case that used to straddle experts: [384, 128] flattened gave [3, 1].
    expect(scaleShapeFor([2, 192, 128], [128, 128])).toEqual([2, 2, 1]);
  });

  it("quantize, dequantize, blockAmax and metrics equal their per-matrix results", () => {
    const scheme: Scheme = { element: "float8_e4m3fn", block: [128, 128], scale: "f32", rule: "amax" };
    const [experts, rows, cols] = [3, 192, 160];
    const x = randomNormal(experts * rows * cols, 5);
    const whole = quantize(x, [experts, rows, cols], scheme);
    const mats = Array.from({ length: experts }, (_, e) =>
      quantize(x.subarray(e * rows * cols, (e + 1) * rows * cols), [rows, cols], scheme),
    );
    expect(whole.scaleShape).toEqual([experts, 2, 2]);
    expect(firstDiff(whole.data, concat(mats.map((m) => m.data)))).toBe(-1);
    expect(firstDiff(whole.scales, concat(mats.map((m) => m.scales as Float32Array)))).toBe(-1);
    const amax = blockAmax(x, [experts, rows, cols], scheme.block);
    const amaxes = mats.map((_, e) =>
      blockAmax(x.subarray(e * rows * cols, (e + 1) * rows * cols), [rows, cols], scheme.block),
    );
    expect(firstDiff(amax, concat(amaxes))).toBe(-1);
    for (const to of ["float32", "bfloat16"] as const) {
      const y = dequantize(whole, { to });
      const ys = mats.map((m) => dequantize(m, { to }));
      expect(firstDiff(y, concat(ys as Float32Array[])), to).toBe(-1);
    }
    const y = dequantize(whole) as Float32Array;
    const m = errorMetrics(x, y, { layout: { shape: [experts, rows, cols], block: scheme.block } });
    const per = mats.map((q, e) =>
      errorMetrics(x.subarray(e * rows * cols, (e + 1) * rows * cols), dequantize(q) as Float32Array, {
        layout: { shape: [rows, cols], block: scheme.block },
      }),
    );
    expect(firstDiff(m.blockRelError!, concat(per.map((p) => p.blockRelError!)))).toBe(-1);
  });
});
