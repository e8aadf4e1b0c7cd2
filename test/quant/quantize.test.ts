import { describe, expect, it } from "vitest";
import { decodeTable, encode, formatInfo } from "../../src/formats/index.js";
import {
  blockAmax,
  computeScales,
  dequantize,
  type PresetName,
  presets,
  quantize,
  scaleGrid,
} from "../../src/quant/index.js";
import {
  bf16,
  bf16Value,
  E2M1_VALUES,
  E4M3_VALUES,
  firstDiff,
  nearestCode,
  randomNormal,
} from "./reference.js";

function bf16Codes(x: Float32Array): Uint16Array {
  return Uint16Array.from(x, (v) => bf16(v));
}

describe("layout", () => {
  it("scale grids include partial edge blocks", () => {
    expect(scaleGrid([576, 7168], [128, 128])).toEqual([5, 56]);
    expect(scaleGrid([300, 200], [128, 128])).toEqual([3, 2]);
    expect(scaleGrid([2, 3, 100], [1, 32])).toEqual([6, 4]);
    expect(scaleGrid([10, 20], "tensor")).toEqual([1, 1]);
    expect(scaleGrid([10, 20], "row")).toEqual([10, 1]);
  });
  it("padding never changes amax: a partial block's amax is the max of what exists", () => {
    const x = new Float32Array(3 * 5).map((_, i) => -(i + 1));
    // [3, 5] in [2, 4] blocks: grid [2, 2]; block (1, 1) holds only element (2, 4) = -15.
    expect(Array.from(blockAmax(x, [3, 5], [2, 4]))).toEqual([9, 10, 14, 15]);
    const y = new Float32Array(4).fill(-1e-3);
    expect(blockAmax(y, [1, 4], [1, 128])[0]).toBe(Math.fround(1e-3));
  });
});

describe("DeepSeek-V3.1 block quantization against a simple reference", () => {
  // [300, 200] in 128x128 blocks: grid [3, 2] with partial blocks on both edges.
  const rows = 300;
  const cols = 200;
  const x = randomNormal(rows * cols, 7, 0.02);
  // Put a few outliers and a zero block region in.
  x[5] = 3.5;
  x[cols * 131 + 150] = -0.75;
  for (let r = 256; r < 300; r++) for (let c = 128; c < 200; c++) x[r * cols + c] = 0;

  it("matches element by element and scale by scale", () => {
    const q = quantize(x, [rows, cols], "deepseek-v3.1");
    expect(q.scaleShape).toEqual([3, 2]);
    expect(q.scales).toBeInstanceOf(Float32Array);
    for (let g = 0; g < 3; g++) {
      for (let h = 0; h < 2; h++) {
        // Reference: amax in float64 over the existing elements; s = fl32(max(amax, fl32(1e-4)) / 448);
        // scale = smallest power of two >= s (DeepGEMM ceil_to_ue8m0).
        let amax = 0;
        for (let r = g * 128; r < Math.min(rows, g * 128 + 128); r++)
          for (let c = h * 128; c < Math.min(cols, h * 128 + 128); c++)
            amax = Math.max(amax, Math.abs(x[r * cols + c]));
        const s = Math.fround(Math.max(amax, Math.fround(1e-4)) / 448);
        let k = -140;
        while (2 ** k < s) k++;
        expect(q.scales[g * 2 + h]).toBe(2 ** k);
        for (let r = g * 128; r < Math.min(rows, g * 128 + 128); r++) {
          for (let c = h * 128; c < Math.min(cols, h * 128 + 128); c++) {
            const i = r * cols + c;
            let v = Math.fround(x[i] * 2 ** -k); // exact scaling, then float32
            v = Math.min(448, Math.max(-448, v));
            const want = nearestCode(v, E4M3_VALUES, 0x80);
            if (q.data[i] !== want)
              throw new Error(`element (${r}, ${c}) = ${x[i]}: ${q.data[i]} != ${want}`);
          }
        }
      }
    }
    // The all-zero corner block: amax floor 1e-4 -> 2^-22 (FORMATS §8 item 9).
    expect(q.scales[5]).toBe(2 ** -22);
  });

  it("the table path over BF16 codes equals the generic path", () => {
    const codes = bf16Codes(x);
    const input = { dtype: "bfloat16" as const, codes };
    for (const preset of ["deepseek-v3.1", "mxfp8-e4m3", "mxfp8-e5m2", "mxfp4", "mxfp6-e3m2"] as const) {
      const fast = quantize(input, [rows, cols], preset);
      const slow = quantize(input, [rows, cols], preset, { kernel: "generic" });
      expect(firstDiff(fast.data, slow.data)).toBe(-1);
      expect(firstDiff(fast.scales, slow.scales)).toBe(-1);
      // And BF16 input gives what its float32 widening gives.
      const wide = quantize(
        Float32Array.from(codes, (c) => bf16Value(c)),
        [rows, cols],
        preset,
      );
      expect(firstDiff(fast.data, wide.data)).toBe(-1);
    }
  });

  it("float16 input through the table path equals its float32 widening", () => {
    const codes = encode("float16", x) as Uint16Array;
    const f16 = decodeTable("float16");
    const wide = Float32Array.from(codes, (c) => f16[c]);
    const fast = quantize({ dtype: "float16", codes }, [rows, cols], "mxfp8-e4m3");
    const slow = quantize(wide, [rows, cols], "mxfp8-e4m3");
    expect(firstDiff(fast.data, slow.data)).toBe(-1);
    expect(firstDiff(fast.scales, slow.scales)).toBe(-1);
  });
});

describe("round trip within the analytic bound", () => {
  const shape = [64, 96];
  const x = randomNormal(64 * 96, 11);
  for (const name of Object.keys(presets) as PresetName[]) {
    it(name, () => {
      const scheme = presets[name];
      const info = formatInfo(scheme.element);
      const q = quantize(x, shape, name);
      const d = dequantize(q) as Float32Array;
      const { scales } = computeScales(x, shape, name);
      expect(scales).toEqual(q.scales);
      const bound = 2 ** -(info.mantissaBits + 1);
      const [, gc] = scaleGrid(shape, scheme.block);
      const bc = Array.isArray(scheme.block) ? scheme.block[1] : 96;
      const br = Array.isArray(scheme.block) ? scheme.block[0] : 64;
      let checked = 0;
      for (let i = 0; i < x.length; i++) {
        const r = Math.floor(i / 96);
        const c = i % 96;
        const b = Math.floor(r / br) * gc + Math.floor(c / bc);
        // Dequantization multiplier of the block (from the dequantized max code, independent of storage).
        const s = scaleValue(q, b);
        const scaled = Math.abs(x[i]) / s;
        if (scaled < info.minNormal || scaled > info.max) continue;
        const rel = Math.abs(d[i] - x[i]) / Math.abs(x[i]);
        expect(rel).toBeLessThanOrEqual(bound * (1 + 1e-5));
        checked++;
      }
      expect(checked).toBeGreaterThan(x.length / 2);
    });
  }
});

/** Block multiplier of a quantized tensor, derived from the definitions of each storage. */
function scaleValue(q: ReturnType<typeof quantize>, b: number): number {
  switch (q.scheme.scale) {
    case "f32":
      return q.scales[b];
    case "ue8m0":
      return 2 ** (q.scales[b] - 127);
    case "bf16":
      return bf16Value(q.scales[b]);
    case "f16":
      throw new Error("no f16 scales in these tests");
    case "e4m3":
      return E4M3_VALUES[q.scales[b]] * (q.globalScale ?? 1);
  }
}

describe("scheme details", () => {
  it("MX FP4 packs two elements per byte, element 0 in the low nibble", () => {
    // One block of 32: amax 6 -> floor k = 0, so the codes are the E2M1 codes of the values.
    const vals = [0.5, -1, 6, 7, 2.5, -0.25, 0, 3];
    const x = new Float32Array(32);
    x.set(vals);
    const q = quantize(x, [32], "mxfp4");
    expect(q.data.length).toBe(16);
    expect(q.scales[0]).toBe(127);
    const codes = vals.map((v) => nearestCode(Math.max(-6, Math.min(6, v)), E2M1_VALUES, 8));
    // 7 saturates to 6 (0x7), 2.5 ties to 2 (0x4), -0.25 ties to -0 (0x8).
    expect(codes).toEqual([0x1, 0xa, 0x7, 0x7, 0x4, 0x8, 0x0, 0x5]);
    for (let i = 0; i < 4; i++) expect(q.data[i]).toBe(codes[2 * i] | (codes[2 * i + 1] << 4));
    const d = dequantize(q) as Float32Array;
    expect(Array.from(d.subarray(0, 8))).toEqual([0.5, -1, 6, 6, 2, -0, 0, 3]);
  });

  it("odd element counts of FP4 leave the last high nibble zero", () => {
    const x = new Float32Array([1, 1, 1]);
    const q = quantize(x, [3], "mxfp4");
    expect(q.data.length).toBe(2);
    expect(q.data[1] >> 4).toBe(0);
    expect(Array.from(dequantize(q) as Float32Array)).toEqual([1, 1, 1]);
  });

  it("FLOOR clips the block max (E2M1 amax 7 -> 6), RCEIL does not", () => {
    const x = new Float32Array(32).fill(1);
    x[0] = 7;
    const floor = dequantize(quantize(x, [32], "mxfp4")) as Float32Array;
    expect(floor[0]).toBe(6);
    const rceil = dequantize(quantize(x, [32], { ...presets.mxfp4, rule: "rceil" })) as Float32Array;
    expect(rceil[0]).toBe(8); // X = 2: 7/2 = 3.5 ties to 4 (even), times 2
  });

  it("a NaN makes the MX block NaN (scale 0xFF); Inf too under FLOOR", () => {
    const x = new Float32Array(64).fill(1);
    x[3] = Number.NaN;
    x[40] = Number.POSITIVE_INFINITY;
    const q = quantize(x, [64], "mxfp8-e4m3");
    expect(Array.from(q.scales)).toEqual([0xff, 0xff]);
    const d = dequantize(q) as Float32Array;
    expect(d.every((v) => Number.isNaN(v))).toBe(true);
  });

  it("DeepSeek-V3.1 scale with NaN/Inf: 2^127 (DeepGEMM clamp), finite data flush to 0", () => {
    const x = new Float32Array(128).fill(1);
    x[0] = Number.POSITIVE_INFINITY;
    x[1] = Number.NaN;
    const q = quantize(x, [1, 128], "deepseek-act-ue8m0");
    expect(q.scales[0]).toBe(2 ** 127);
    expect(q.data[2]).toBe(0);
    expect(q.data[0]).toBe(0x7e); // Inf * 2^-127 = Inf, saturated to 448 (satfinite)
    expect(q.data[1] & 0x7f).toBe(0x7f); // NaN stays NaN
  });

  it("deepseek-act divides (x / s), deepseek-v3 multiplies by fl32(1/s)", () => {
    // With s = fl32(amax/448) for amax = 3: x / s and x * fl32(1/s) can differ by one ulp of float32;
    // both are defined in their sources, check that each path computes its own formula.
    const x = randomNormal(128, 3);
    const amax = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const s = Math.fround(Math.fround(amax) / 448);
    const div = quantize(x, [1, 128], "deepseek-act");
    const mul = quantize(x, [1, 128], { ...presets["deepseek-v3"], block: [1, 128] });
    for (let i = 0; i < 128; i++) {
      const a = nearestCode(Math.min(448, Math.max(-448, Math.fround(x[i] / s))), E4M3_VALUES, 0x80);
      const b = nearestCode(
        Math.min(448, Math.max(-448, Math.fround(x[i] * Math.fround(1 / s)))),
        E4M3_VALUES,
        0x80,
      );
      expect(div.data[i]).toBe(a);
      expect(mul.data[i]).toBe(b);
    }
  });

  it("NVFP4 two-level follows torchao's recipe", () => {
    const x = randomNormal(64, 5);
    const q = quantize(x, [4, 16], "nvfp4");
    const tensorAmax = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const g = Math.fround(tensorAmax / 2688);
    expect(q.globalScale).toBe(g);
    for (let r = 0; r < 4; r++) {
      let amax = 0;
      for (let c = 0; c < 16; c++) amax = Math.max(amax, Math.abs(x[r * 16 + c]));
      const bs = Math.min(448, Math.max(2 ** -6, Math.fround(Math.fround(amax / 6) / g)));
      const code = nearestCode(bs, E4M3_VALUES, 0x80);
      expect(q.scales[r]).toBe(code);
      const factor = Math.fround(Math.fround(1 / g) / E4M3_VALUES[code]);
      for (let c = 0; c < 16; c++) {
        const i = r * 16 + c;
        const v = Math.min(6, Math.max(-6, Math.fround(x[i] * factor)));
        const want = nearestCode(v, E2M1_VALUES, 8);
        expect((q.data[i >> 1] >> ((i & 1) * 4)) & 0xf).toBe(want);
      }
    }
  });

  it("BF16 scale storage (compressed-tensors) quantizes with the stored scale", () => {
    const x = randomNormal(256, 9);
    const q = quantize(x, [2, 128], { ...presets["deepseek-v3"], block: "row", scale: "bf16" });
    expect(q.scales).toBeInstanceOf(Uint16Array);
    expect(q.scaleShape).toEqual([2, 1]);
    for (let r = 0; r < 2; r++) {
      let amax = 0;
      for (let c = 0; c < 128; c++) amax = Math.max(amax, Math.abs(x[r * 128 + c]));
      const code = bf16(Math.fround(Math.fround(amax) / 448));
      expect(q.scales[r]).toBe(code);
      const f = Math.fround(1 / bf16Value(code));
      for (let c = 0; c < 128; c++) {
        const v = Math.min(448, Math.max(-448, Math.fround(x[r * 128 + c] * f)));
        expect(q.data[r * 128 + c]).toBe(nearestCode(v, E4M3_VALUES, 0x80));
      }
    }
  });

  it("per-tensor and per-row layouts", () => {
    const x = randomNormal(12 * 10, 2);
    const t = quantize(x, [12, 10], { ...presets["deepseek-v3"], block: "tensor" });
    expect(t.scaleShape).toEqual([1, 1]);
    const r = quantize(x, [3, 4, 10], { ...presets["deepseek-v3"], block: "row" });
    expect(r.scaleShape).toEqual([3, 4, 1]);
    expect(r.scales.length).toBe(12);
  });

  it("stochastic rounding is reproducible with a seed and unbiased-ish", () => {
    const x = new Float32Array(4096).fill(1.0625); // halfway between E4M3 1 and 1.125
    x[0] = 448;
    const scheme = {
      ...presets["deepseek-v3.1"],
      block: [1, 4096] as const,
      rounding: "stochastic" as const,
      seed: 3,
    };
    const a = quantize(x, [1, 4096], scheme);
    const b = quantize(x, [1, 4096], scheme);
    expect(a.data).toEqual(b.data);
    const up = a.data.filter((c) => c === 0x39).length;
    expect(up).toBeGreaterThan(1700);
    expect(up).toBeLessThan(2400);
  });
});
