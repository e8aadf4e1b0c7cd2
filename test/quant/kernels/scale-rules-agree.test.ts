/**
 * One implementation per scale rule: the band encoders of `fp8kit convert` (generic and fast paths)
 * and `quantize()` with the scheme the target stands for give the same codes and the same stored
 * scales, on F32, BF16 and F16 input, with partial edge blocks and with NaN/Inf blocks.
 */
import { describe, expect, it } from "vitest";
import { encode } from "../../../src/formats/index.js";
import { type QuantInput, quantize } from "../../../src/quant/index.js";
import { convertBand } from "../../../src/quant/kernels/convert-band.js";
import { schemeOfTarget } from "../../../src/quant/kernels/target-scales.js";
import type { PlainDtype, TargetCodec } from "../../../src/quant/kernels/types.js";
import { firstDiff, randomNormal } from "../reference.js";

/** Normal values with magnitudes spread over a few binades, and special blocks in the corners. */
function values(rows: number, cols: number, block: [number, number], seed: number): Float32Array {
  const x = randomNormal(rows * cols, seed);
  for (let i = 0; i < x.length; i++) x[i] *= 2 ** ((i % 7) - 3);
  const put = (bi: number, bj: number, f: (k: number) => number) => {
    for (let r = bi * block[0]; r < Math.min(rows, (bi + 1) * block[0]); r++)
      for (let c = bj * block[1], k = 0; c < Math.min(cols, (bj + 1) * block[1]); c++, k++)
        x[r * cols + c] = f(k);
  };
  put(0, 0, (k) => (k === 3 ? Number.POSITIVE_INFINITY : x[k])); // one +Inf among finite values
  put(0, 1, (k) => (k === 1 ? Number.NaN : 0.5)); // one NaN
  put(1, 0, () => 0); // all zero
  put(1, 1, (k) => (k === 0 ? Number.NEGATIVE_INFINITY : Number.NaN)); // all non-finite
  return x;
}

/** The same values as F32 bytes, or BF16/F16 codes (RNE) for both APIs. */
function inputs(x: Float32Array, dtype: PlainDtype): { bytes: Uint8Array; input: QuantInput } {
  if (dtype === "F32") return { bytes: new Uint8Array(x.buffer), input: x };
  const format = dtype === "BF16" ? "bfloat16" : "float16";
  const codes = encode(format, x) as Uint16Array;
  return { bytes: new Uint8Array(codes.buffer), input: { dtype: format, codes } };
}

const fp8Targets: TargetCodec[] = [
  { kind: "fp8-block", block: [128, 128], scaleFmt: "ue8m0", scaleDtype: "F32" },
  { kind: "fp8-block", block: [128, 128], scaleFmt: "ue8m0", scaleDtype: "F8_E8M0" },
  { kind: "fp8-block", block: [128, 128], scaleFmt: "float", scaleDtype: "F32" },
  { kind: "fp8-block", block: [64, 32], scaleFmt: "ue8m0", scaleDtype: "F32" },
  { kind: "fp8-block", block: [1, 128], scaleFmt: "float", scaleDtype: "F32" },
];
const mxTargets: TargetCodec[] = (["float8_e4m3fn", "float4_e2m1fn"] as const).flatMap((element) =>
  (["floor", "ceil", "even", "rceil"] as const).map((rule): TargetCodec => ({ kind: "mx", element, rule })),
);

describe("convert's encoders and quantize() use the same scale rules", () => {
  for (const target of [...fp8Targets, ...mxTargets]) {
    const label = JSON.stringify(target);
    it(label, () => {
      const scheme = schemeOfTarget(target)!;
      const block: [number, number] = target.kind === "fp8-block" ? target.block : [1, 32];
      // Partial edge blocks in rows and (for fp8-block) columns; MX rows are whole groups of 32.
      const [rows, cols] = target.kind === "mx" ? [5, 96] : [2 * block[0] + 3, 2 * block[1] + 40];
      for (const dtype of ["F32", "BF16", "F16"] as const) {
        const { bytes, input } = inputs(values(rows, cols, block, rows + cols), dtype);
        const mine = convertBand({ source: { kind: "plain", dtype }, target, rows, cols }, bytes, null);
        const ref = quantize(input, [rows, cols], scheme);
        expect(firstDiff(mine.data, ref.data), `${dtype} codes`).toBe(-1);
        const refScale = new Uint8Array(ref.scales.buffer, ref.scales.byteOffset, ref.scales.byteLength);
        expect(firstDiff(mine.scale!, refScale), `${dtype} scales`).toBe(-1);
      }
    });
  }

  it("a 128x128 block holding one +Inf: DeepGEMM's amax includes it, so the UE8M0 scale is 2^127", () => {
    // DeepGEMM per_block_cast_to_fp8: amax = Inf, sf = Inf / 448 = Inf, ceil_to_ue8m0 clamps the
    // exponent field 255 to 254: 2^127. The encoder used to skip the Inf and give 2^-7.
    const x = new Float32Array(128 * 128).fill(0.75);
    x[5] = Number.POSITIVE_INFINITY;
    expect(quantize(x, [128, 128], "deepseek-v3.1").scales[0]).toBe(2 ** 127);
    for (const dtype of ["F32", "BF16"] as const) {
      const { bytes } = inputs(x, dtype);
      const r = convertBand(
        { source: { kind: "plain", dtype }, target: fp8Targets[0], rows: 128, cols: 128 },
        bytes,
        null,
      );
      expect(new Float32Array(r.scale!.buffer, r.scale!.byteOffset, 1)[0], dtype).toBe(2 ** 127);
      // Finite values scale to 0; the Inf saturates to 448.
      expect(r.data[0]).toBe(0);
      expect(r.data[5]).toBe(0x7e);
    }
    // The float rule keeps Inf (DeepSeek-V3's weight_scale_inv of such a block), and a NaN gives NaN.
    x[7] = Number.NaN;
    expect(quantize(x, [128, 128], "deepseek-v3").scales[0]).toBeNaN();
  });
});
