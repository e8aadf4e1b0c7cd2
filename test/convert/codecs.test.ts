import { describe, expect, it } from "vitest";
import { bitsOf } from "../../src/convert/codecs.js";
import { mxScaleByte } from "../../src/convert/kernels.js";

// The element codecs convert uses are the codec layer's own (tested against the ml_dtypes vectors in
// test/formats); what is convert's is the mapping of a group's amax to the stored E8M0 byte.
describe("convert's MX scale bytes", () => {
  it("MX scale rules on the FORMATS.md edge cases", () => {
    // E4M3, emax 8: floor(log2 amax) - 8; 449 -> floor 0; ceil -> 1; even: 500 rounds to 512 -> 1
    expect(mxScaleByte("floor", bitsOf(448), "float8_e4m3fn")).toBe(127);
    expect(mxScaleByte("floor", bitsOf(511.99), "float8_e4m3fn")).toBe(127);
    expect(mxScaleByte("ceil", bitsOf(449), "float8_e4m3fn")).toBe(128);
    expect(mxScaleByte("even", bitsOf(500), "float8_e4m3fn")).toBe(128);
    expect(mxScaleByte("rceil", bitsOf(448), "float8_e4m3fn")).toBe(127);
    expect(mxScaleByte("rceil", bitsOf(449), "float8_e4m3fn")).toBe(128);
    // E2M1: amax 7 -> FLOOR X=1 (clips to 6), RCEIL X=2
    expect(mxScaleByte("floor", bitsOf(7), "float4_e2m1fn")).toBe(127);
    expect(mxScaleByte("rceil", bitsOf(7), "float4_e2m1fn")).toBe(128);
    expect(mxScaleByte("floor", bitsOf(0), "float4_e2m1fn")).toBe(0);
    expect(mxScaleByte("floor", bitsOf(Number.NaN), "float4_e2m1fn")).toBe(255);
  });
});
