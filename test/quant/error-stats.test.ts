import { describe, expect, it } from "vitest";
import { addPairs, emptyStats, mergeStats, summarizeErrorStats } from "../../src/quant/error-stats.js";
import { errorMetrics } from "../../src/quant/index.js";

describe("the one error-statistics record", () => {
  it("sums, merges and summarises by the closed forms", () => {
    // x = [1, 2, NaN], y = [1, 0, 5]: e = [0, 2]; sum x^2 = 5, sum e^2 = 4, sum xy = 1, sum y^2 = 1.
    const a = emptyStats();
    addPairs(a, 1, 1, 1);
    const b = emptyStats();
    addPairs(b, 2, 0, 1);
    addPairs(b, Number.NaN, 5, 1);
    const s = mergeStats(a, b);
    expect(s).toMatchObject({ count: 2, xx: 5, ee: 4, xy: 1, yy: 1, maxAbsErr: 2, nonfinite: 1, flushed: 1 });
    const m = summarizeErrorStats(s);
    expect(m.relFrob).toBeCloseTo(Math.sqrt(4 / 5), 15);
    expect(m.sqnrDb).toBeCloseTo(10 * Math.log10(5 / 4), 12);
    expect(m.cosine).toBeCloseTo(1 / Math.sqrt(5), 15);
    // The same record is JSON as is (workers, markers).
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it("edge cases: exact, both zero, one side zero", () => {
    const exact = emptyStats();
    addPairs(exact, 3, 3, 4);
    expect(summarizeErrorStats(exact)).toEqual({ relFrob: 0, sqnrDb: Number.POSITIVE_INFINITY, cosine: 1 });
    expect(summarizeErrorStats(emptyStats())).toEqual({
      relFrob: 0,
      sqnrDb: Number.POSITIVE_INFINITY,
      cosine: 1,
    });
    const flushed = emptyStats();
    addPairs(flushed, 0.001, 0, 1);
    expect(summarizeErrorStats(flushed)).toMatchObject({ relFrob: 1, cosine: 0 });
    // quant's errorMetrics reports the same summary.
    expect(errorMetrics([0.001], [0])).toMatchObject({ relativeFrobenius: 1, cosine: 0, flushedToZero: 1 });
  });
});
