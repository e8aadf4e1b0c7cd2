import { describe, expect, it } from "vitest";
import { decode, encode, type FormatName, Fp8kitError, formatInfo } from "../../src/index.js";

function caught(f: () => unknown): Fp8kitError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(Fp8kitError);
    return e as Fp8kitError;
  }
  throw new Error("expected an error");
}

describe("bad input gets a clear Fp8kitError", () => {
  it("unknown format names the accepted ones", () => {
    const e = caught(() => encode("float8_e4m3" as FormatName, [1]));
    expect(e.name).toBe("FormatError");
    expect(e.code).toBe("unknown-format");
    expect(e.message).toMatch(/unknown format "float8_e4m3".*float8_e4m3fn/);
    expect(caught(() => formatInfo("fp8" as FormatName)).code).toBe("unknown-format");
    expect(caught(() => decode("e4m3" as FormatName, new Uint8Array(1))).code).toBe("unknown-format");
  });
  it("wrong array types", () => {
    expect(
      caught(() => encode("float8_e4m3fn", new Int32Array(2) as unknown as Float32Array)).message,
    ).toMatch(/Float32Array, Float64Array or number\[\], got Int32Array/);
    expect(caught(() => encode("float8_e4m3fn", ["1"] as unknown as number[])).message).toMatch(
      /element 0 is string/,
    );
    expect(caught(() => decode("bfloat16", new Uint8Array(2))).message).toMatch(/needs a Uint16Array/);
    expect(caught(() => decode("float8_e4m3fn", new Uint16Array(2))).message).toMatch(/needs a Uint8Array/);
    expect(caught(() => decode("float8_e4m3fn", [256])).code).toBe("invalid-code");
    expect(caught(() => decode("float4_e2m1fn", new Uint8Array([16]))).code).toBe("invalid-code");
  });
  it("seeds must be integers; rounding and overflow names are checked", () => {
    expect(caught(() => encode("float8_e4m3fn", [1], { rounding: "stochastic", seed: 1.5 })).message).toMatch(
      /seed must be a safe integer, got 1.5/,
    );
    expect(caught(() => encode("float8_e4m3fn", [1], { rounding: "up" as "rne" })).message).toMatch(
      /accepted: rne, ties-away, toward-zero, stochastic/,
    );
    expect(caught(() => encode("float8_e4m3fn", [1], { overflow: "clip" as "saturate" })).message).toMatch(
      /accepted: nonfinite, saturate/,
    );
  });
});
