import { describe, expect, it } from "vitest";
import { blockLimits, ErrorAccumulator, errorMetrics, quantize } from "../../src/quant/index.js";

describe("error metrics", () => {
  it("closed forms on a small pair", () => {
    // e = [0, 0, 0, -1]: sum e^2 = 1, sum o^2 = 30, sum d^2 = 39, sum o*d = 34.
    const m = errorMetrics([1, 2, 3, 4], [1, 2, 3, 5]);
    expect(m.relativeFrobenius).toBeCloseTo(Math.sqrt(1 / 30), 15);
    expect(m.sqnrDb).toBeCloseTo(10 * Math.log10(30), 12);
    expect(m.cosine).toBeCloseTo(34 / Math.sqrt(30 * 39), 15);
    expect(m.maxAbsError).toBe(1);
  });
  it("counts flushes, NaN and Inf; chunked equals one-shot", () => {
    const o = [1e-10, 0, Number.NaN, Number.POSITIVE_INFINITY, 5, -2];
    const d = [0, 0, Number.NaN, 448, 4, Number.NEGATIVE_INFINITY];
    const m = errorMetrics(o, d);
    expect(m.flushedToZero).toBe(1);
    expect(m.nanInput).toBe(1);
    expect(m.infInput).toBe(1);
    expect(m.nanOutput).toBe(1);
    expect(m.infOutput).toBe(1);
    expect(m.finiteCount).toBe(3);
    const acc = new ErrorAccumulator();
    acc.add(o.slice(0, 2), d.slice(0, 2)).add(o.slice(2), d.slice(2));
    expect(acc.result()).toEqual(m);
  });
  it("per-block relative error and saturation from a quantized tensor", () => {
    const x = new Float32Array(64).fill(1);
    x[0] = 7; // E2M1 FLOOR: X = 1, 7 saturates to 6
    const q = quantize(x, [64], "mxfp4");
    const d = [...x].map((v) => Math.min(v, 6));
    const m = errorMetrics(x, d, { layout: { shape: [64], block: [1, 32] }, limits: blockLimits(q) });
    expect(m.saturated).toBe(1);
    expect(m.blockRelError?.[0]).toBeCloseTo(1 / 7, 15);
    expect(m.blockRelError?.[1]).toBe(0);
    expect(m.maxBlockRelError).toBeCloseTo(1 / 7, 15);
  });
});
