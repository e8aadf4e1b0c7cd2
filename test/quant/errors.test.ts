import { describe, expect, it } from "vitest";
import { dequantize, presets, QuantError, quantize, resolveScheme } from "../../src/quant/index.js";

function thrown(f: () => unknown): QuantError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(QuantError);
    expect((e as Error).name).toBe("QuantError");
    return e as QuantError;
  }
  throw new Error("expected a QuantError");
}

describe("bad input", () => {
  const x = new Float32Array(12);
  it("shape that does not match the data length", () => {
    const e = thrown(() => quantize(x, [3, 5], "mxfp8-e4m3", { name: "w" }));
    expect(e.code).toBe("invalid-shape");
    expect(e.message).toMatch(/tensor "w": data has 12 elements but shape \[3, 5\] needs 15/);
  });
  it("block shape that is not positive integers", () => {
    for (const block of [[0, 128], [1.5, 2], [-1, 4], [128]] as unknown as [number, number][]) {
      const e = thrown(() => quantize(x, [3, 4], { ...presets["deepseek-v3"], block }));
      expect(e.code).toBe("invalid-block");
      expect(e.message).toMatch(/positive integers/);
    }
  });
  it("unknown format, rule, preset, storage", () => {
    expect(thrown(() => resolveScheme({ ...presets.mxfp4, element: "float7" as never })).code).toBe(
      "unknown-format",
    );
    expect(thrown(() => resolveScheme({ ...presets.mxfp4, element: "bfloat16" })).code).toBe(
      "invalid-scheme",
    );
    const r = thrown(() => resolveScheme({ ...presets.mxfp4, rule: "round" as never }));
    expect(r.code).toBe("unknown-rule");
    expect(r.message).toMatch(/"round".*floor, ceil/);
    expect(thrown(() => resolveScheme("mxfp9" as never)).code).toBe("unknown-preset");
    expect(thrown(() => resolveScheme({ ...presets["deepseek-v3"], scale: "ue8m0" })).message).toMatch(
      /power-of-two/,
    );
  });
  it("scale tensor whose shape does not match the block grid", () => {
    const q = quantize(new Float32Array(300 * 200), [300, 200], "deepseek-v3.1");
    const e = thrown(() =>
      dequantize({ ...q, scales: new Float32Array(4), scaleShape: [2, 2] }, { name: "w" }),
    );
    expect(e.code).toBe("invalid-scales");
    expect(e.message).toMatch(/tensor "w": scale tensor of shape \[2, 2\].*expected \[3, 2\] \(6 values\)/);
    expect(thrown(() => dequantize({ ...q, scales: new Uint8Array(6) })).message).toMatch(/Float32Array/);
  });
  it("wrong input type", () => {
    expect(thrown(() => quantize([1, 2] as never, [2], "mxfp4")).code).toBe("invalid-input");
    expect(
      thrown(() => quantize({ dtype: "float8", codes: new Uint16Array(2) } as never, [2], "mxfp4")).code,
    ).toBe("invalid-input");
  });
  it("NaN and Inf in data are not errors", () => {
    const y = new Float32Array([Number.NaN, Number.POSITIVE_INFINITY, 1, 2]);
    expect(() => quantize(y, [1, 4], "deepseek-v3")).not.toThrow();
  });
});
