import { describe, expect, it } from "vitest";
import { encode } from "../../src/formats/index.js";
import { dequantize, dequantizeBlockFp8ToBf16, presets, quantize } from "../../src/quant/index.js";
import { bf16, E4M3_VALUES, firstDiff, randomNormal } from "./reference.js";

/** E4M3 value of any code from the definition (0x7F/0xFF NaN). */
function e4m3(code: number): number {
  const m = code & 0x7f;
  if (m === 0x7f) return Number.NaN;
  return code & 0x80 ? -E4M3_VALUES[m] : E4M3_VALUES[m];
}

describe("dequantizeBlockFp8ToBf16 (DeepSeek fp8_cast_bf16.py)", () => {
  it("is BF16 RNE of fl32(fp8) * fl32(scale_inv), partial edge blocks included", () => {
    const rows = 300;
    const cols = 200; // grid [3, 2]
    const data = new Uint8Array(rows * cols);
    let s = 12345;
    for (let i = 0; i < data.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      data[i] = s >>> 24;
    }
    const scaleInv = Float32Array.from(randomNormal(6, 4), (v) => Math.abs(v) * 1e-3 + 1e-5);
    const out = dequantizeBlockFp8ToBf16(data, [rows, cols], scaleInv);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        if ((data[i] & 0x7f) === 0x7f) {
          // NaN codes: any BF16 NaN (the sign of a NaN is not observable in a JS number).
          if ((out[i] & 0x7fff) <= 0x7f80) throw new Error(`(${r}, ${c}) NaN code gave ${out[i]}`);
          continue;
        }
        const want = bf16(
          Math.fround(e4m3(data[i]) * scaleInv[Math.floor(r / 128) * 2 + Math.floor(c / 128)]),
        );
        if (out[i] !== want) throw new Error(`(${r}, ${c}) code ${data[i]}: ${out[i]} != ${want}`);
      }
    }
  });
  it("rejects a scale grid of the wrong size, naming the expected grid", () => {
    expect(() =>
      dequantizeBlockFp8ToBf16(new Uint8Array(300 * 200), [300, 200], new Float32Array(4)),
    ).toThrow(/expected \[3, 2\] \(6 values\)/);
  });
});

describe("dequantize table and direct paths agree with a plain float32 product + encode", () => {
  const x = randomNormal(256 * 192, 21);
  for (const name of [
    "deepseek-v3",
    "deepseek-v3.1",
    "deepseek-act",
    "mxfp8-e5m2",
    "mxfp4",
    "nvfp4",
  ] as const) {
    for (const to of ["bfloat16", "float16"] as const) {
      it(`${name} -> ${to}`, () => {
        const q = quantize(x, [256, 192], name);
        const f32 = dequantize(q) as Float32Array;
        const wide = dequantize(q, { to }) as Uint16Array;
        expect(firstDiff(wide, encode(to, f32))).toBe(-1);
      });
    }
  }
  it("a scheme object with a BF16 scale storage round-trips", () => {
    const q = quantize(x, [256, 192], { ...presets["deepseek-v3"], scale: "bf16" });
    const d = dequantize(q) as Float32Array;
    expect(d.length).toBe(x.length);
  });
});
