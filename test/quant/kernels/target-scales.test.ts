import { describe, expect, it } from "vitest";
import { mxScaleByte } from "../../../src/quant/kernels/target-scales.js";

// The element codecs the kernels use are the codec layer's own (tested against the ml_dtypes vectors
// in test/formats); what is the kernels' is the mapping of a group's amax to the stored E8M0 byte.
describe("MX scale bytes", () => {
  it("MX scale rules on the FORMATS.md edge cases", () => {
    // E4M3, emax 8: floor(log2 amax) - 8; 449 -> floor 0; ceil -> 1; even: 500 rounds to 512 -> 1
    expect(mxScaleByte("floor", 448, "float8_e4m3fn")).toBe(127);
    expect(mxScaleByte("floor", 511.99, "float8_e4m3fn")).toBe(127);
    expect(mxScaleByte("ceil", 449, "float8_e4m3fn")).toBe(128);
    expect(mxScaleByte("even", 500, "float8_e4m3fn")).toBe(128);
    expect(mxScaleByte("rceil", 448, "float8_e4m3fn")).toBe(127);
    expect(mxScaleByte("rceil", 449, "float8_e4m3fn")).toBe(128);
    // E2M1: amax 7 -> FLOOR X=1 (clips to 6), RCEIL X=2
    expect(mxScaleByte("floor", 7, "float4_e2m1fn")).toBe(127);
    expect(mxScaleByte("rceil", 7, "float4_e2m1fn")).toBe(128);
    expect(mxScaleByte("floor", 0, "float4_e2m1fn")).toBe(0);
    expect(mxScaleByte("floor", Number.NaN, "float4_e2m1fn")).toBe(255);
    expect(mxScaleByte("rceil", Number.POSITIVE_INFINITY, "float8_e4m3fn")).toBe(255);
  });
});
