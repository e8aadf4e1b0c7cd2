/**
 * NVFP4 encoding by each producer's rule against the second implementation in
 * test/quant/nvfp4-reference.ts (written plainly, element by element, from the producers' Python):
 * block scales, codes, the values the bytes decode to (the target read as a source), and the error
 * statistics of that round trip; hand-computed codes for ties, saturation and signed zeros. The
 * comparisons run with the TypeScript loop and with the WebAssembly one forced.
 */
import { describe, expect, it } from "vitest";
import type { KernelBackend } from "../../../src/formats/wasm/kernel-backend.js";
import { convertBand } from "../../../src/quant/kernels/convert-band.js";
import { decodeBand } from "../../../src/quant/kernels/decode-band.js";
import { nvfp4TensorScale } from "../../../src/quant/kernels/encode-nvfp4.js";
import { type PlainDtype, type TargetCodec, targetAsSource } from "../../../src/quant/kernels/types.js";
import { withBackend } from "../../formats/helpers.js";
import {
  bf,
  ctGlobal,
  ctReference,
  modeloptReference,
  type Reference,
  tensorAmax,
  unpack,
} from "../nvfp4-reference.js";
import { bf16, firstDiff, randomNormal } from "../reference.js";

type Nvfp4 = Extract<TargetCodec, { kind: "nvfp4" }>;
const MODELOPT: Nvfp4 = { kind: "nvfp4", tensorScale: "multiply", rule: "modelopt" };
const CT: Nvfp4 = { kind: "nvfp4", tensorScale: "divide", rule: "compressed-tensors" };
const f = Math.fround;

/** The band as input bytes of `dtype` (BF16: RNE of the values; tests pass BF16-exact values). */
function bytesOf(x: Float32Array, dtype: PlainDtype): Uint8Array {
  if (dtype === "F32") return new Uint8Array(x.buffer.slice(0));
  const h = Uint16Array.from(x, (v) => bf16(v));
  return new Uint8Array(h.buffer);
}

/**
 * Encode through the band converter with each kernel backend (the TypeScript loop and the
 * WebAssembly one, nvfp4-wasm.ts) and check everything against `ref`. The WebAssembly loop adds the
 * sums in another order: its sum of squared errors is compared within 1e-12 relative.
 */
function check(t: Nvfp4, x: Float32Array, rows: number, cols: number, dtype: PlainDtype, ref: Reference) {
  for (const backend of ["ts", "wasm"] as const) checkWith(backend, t, x, rows, cols, dtype, ref);
}

function checkWith(
  backend: KernelBackend,
  t: Nvfp4,
  x: Float32Array,
  rows: number,
  cols: number,
  dtype: PlainDtype,
  ref: Reference,
) {
  const out = withBackend(backend, () =>
    convertBand(
      { source: { kind: "plain", dtype }, target: t, rows, cols, outTensorScale: ref.global },
      bytesOf(x, dtype),
      null,
    ),
  );
  expect(firstDiff(out.scale!, ref.scales), "block scales").toBe(-1);
  const codes = unpack(out.data);
  const wantCodes = ref.codes.map((c, i) => (c < 0 ? codes[i] : c));
  expect(firstDiff(codes, wantCodes), "element codes").toBe(-1);
  const y = decodeBand(targetAsSource(t), out.data, out.scale, rows, cols, ref.global);
  expect(firstDiff(y, ref.y), "decoded values").toBe(-1);
  let ee = 0;
  let count = 0;
  for (let i = 0; i < x.length; i++) {
    const e = x[i] - ref.y[i];
    if (!Number.isFinite(e)) continue;
    count++;
    ee += e * e;
  }
  expect(out.stats.count).toBe(count);
  expect(out.stats.nonfinite).toBe(x.length - count);
  if (backend === "ts") expect(out.stats.ee).toBe(ee);
  else expect(Math.abs(out.stats.ee - ee)).toBeLessThanOrEqual(1e-12 * ee);
  expect(out.stats.saturated).toBe(ref.saturated);
}

/** BF16-exact test values: normal values over a wide range of block magnitudes, and special blocks. */
function testValues(rows: number, cols: number, seed: number): Float32Array {
  const x = randomNormal(rows * cols, seed);
  for (let i = 0; i < x.length; i++) {
    const block = Math.floor(i / 16);
    x[i] = bf(x[i] * 2 ** ((block % 23) - 16));
  }
  const block = (k: number, fill: (i: number) => number) => {
    for (let i = 0; i < 16; i++) x[k * 16 + i] = bf(fill(i));
  };
  block(1, () => 0); // all zero: ModelOpt 1.0, compressed-tensors 0.125
  block(2, (i) => (i % 2 ? -1e-30 : 1e-30) * (i + 1)); // tiny: ModelOpt's 2^-9 clamp, a zero CT scale
  // -0.0 (compressed-tensors 0x0), a negative rounding to zero (0x8) and small negatives.
  block(3, (i) => (i === 0 ? -0 : i === 1 ? -1e-6 : -1e-3 * i));
  block(4, (i) => (i === 5 ? x[0] * 1000 : 0)); // the tensor amax: one value, zeros around it
  return x;
}

describe("NVFP4 encoding, ModelOpt and compressed-tensors rules", () => {
  it("ties, saturation and signed zeros, with the per-tensor scalar 1 (scale 1, elements unscaled)", () => {
    const x = Float32Array.from([
      6, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -0.25, -0, -0.1, 0, 5.5, -5, 0.5, -6,
    ]);
    // Hand-computed: RNE on E2M1 (0.25 -> 0, 0.75 -> 1, 1.25 -> 1, 1.75 -> 2, 2.5 -> 2, 3.5 -> 4,
    // 5 -> 4), > 5 -> 6. Signed zeros: -0.0 is 0x0 in both (ModelOpt's sign is x < 0;
    // compressed-tensors multiplies by torch.sign(x), +0 for -0.0), while -0.1 rounds to a negative
    // zero, 0x8, in both (ModelOpt: -0.1 < 0; compressed-tensors: 0 * sign(-0.1) = -0.0).
    const modelopt = [7, 0, 2, 2, 4, 4, 6, 6, 8, 0, 8, 0, 7, 14, 1, 15];
    const ct = [7, 0, 2, 2, 4, 4, 6, 6, 8, 0, 8, 0, 7, 14, 1, 15];
    for (const [t, want] of [
      [MODELOPT, modelopt],
      [CT, ct],
    ] as const)
      for (const backend of ["ts", "wasm"] as const) {
        const out = withBackend(backend, () =>
          convertBand(
            { source: { kind: "plain", dtype: "F32" }, target: t, rows: 1, cols: 16, outTensorScale: 1 },
            bytesOf(x, "F32"),
            null,
          ),
        );
        expect(Array.from(out.scale!), `${t.rule} ${backend}`).toEqual([0x38]); // E4M3 1.0
        expect(unpack(out.data), `${t.rule} ${backend}`).toEqual(want);
      }
  });

  for (const t of [MODELOPT, CT]) {
    const reference = t.rule === "modelopt" ? modeloptReference : ctReference;
    for (const dtype of ["BF16", "F32"] as const) {
      it(`${t.rule}, ${dtype} input: scales, codes, decoded values and statistics equal the reference`, () => {
        for (const [rows, cols, seed] of [
          [3, 64, 1],
          [8, 48, 2],
          [5, 160, 3],
        ]) {
          const x = testValues(rows, cols, seed);
          if (dtype === "F32") for (let i = 0; i < x.length; i += 3) x[i] = f(x[i] * (1 + 2 ** -12));
          const ref = reference(x, rows, cols);
          // The special blocks take the special paths: an all-zero block (ModelOpt 1.0, CT's eps
          // 0.125) and a tiny one (ModelOpt's 2^-9 clamp; CT's scale rounds to 0, then 0.125).
          expect(ref.scales.slice(1, 3)).toEqual(t.rule === "modelopt" ? [0x38, 0x01] : [0x20, 0x20]);
          // Block 3 starts with -0.0 (code 0x0) and -1e-6, a negative zero after rounding (0x8).
          expect(ref.codes.slice(48, 50)).toEqual([0, 8]);
          expect(nvfp4TensorScale(t.rule, tensorAmax(x))).toBe(ref.global);
          check(t, x, rows, cols, dtype, ref);
          // A fusion group's scalar (from a larger amax elsewhere) is used as given.
          check(
            t,
            x,
            rows,
            cols,
            dtype,
            reference(x, rows, cols, f(ref.global * (t.rule === "modelopt" ? 3 : 1 / 3))),
          );
        }
      });
    }
  }

  it("a NaN in a block makes its scale the E4M3 NaN and the block decode to NaN; Inf under compressed-tensors saturates", () => {
    const x = testValues(2, 32, 9);
    x[17] = Number.NaN;
    for (const t of [MODELOPT, CT]) {
      const ref = (t.rule === "modelopt" ? modeloptReference : ctReference)(x, 2, 32);
      expect(ref.scales[1]).toBe(0x7f);
      check(t, x, 2, 32, "F32", ref);
    }
    const y = testValues(1, 32, 10);
    y[3] = Number.POSITIVE_INFINITY;
    const ct = ctReference(y, 1, 32);
    expect(ct.scales[0]).toBe(0x7e); // clamped to 448
    check(CT, y, 1, 32, "F32", ct);
    const mo = modeloptReference(y, 1, 32);
    expect(mo.scales[0]).toBe(0x7f); // Inf / d: torch's E4M3 cast gives NaN
    check(MODELOPT, y, 1, 32, "F32", mo);
  });

  it("the per-tensor scalar of each rule, and 1.0 where the producer would store 0, NaN or Inf", () => {
    expect(nvfp4TensorScale("modelopt", 2688)).toBe(1);
    expect(nvfp4TensorScale("modelopt", 0.5)).toBe(f(0.5 / 2688));
    expect(nvfp4TensorScale("modelopt", 0)).toBe(1); // ModelOpt: 0 -> NaN block scales
    expect(nvfp4TensorScale("compressed-tensors", 2688)).toBe(1);
    // compressed-tensors: bf16(bf16(1 / amax) * 2688), torch's `2688 / tensor` on a BF16 amax.
    // 1 / 3 -> BF16 0.333984375; * 2688 = 897.75 -> BF16 896.
    expect(nvfp4TensorScale("compressed-tensors", 3)).toBe(896);
    // 1.25: 1 / 1.25 = 0.8 -> BF16 0.80078125; * 2688 = 2152.5 -> BF16 2160. One BF16 division,
    // bf16(2688 / 1.25) = bf16(2150.4), would give 2144.
    expect(nvfp4TensorScale("compressed-tensors", 1.25)).toBe(2160);
    expect(ctGlobal(1.25)).toBe(2160);
    // An amax that is not BF16 is rounded to BF16 first: 1.1 -> 1.1015625; 1 / 1.1015625 =
    // 0.9078... -> BF16 0.90625; * 2688 = 2436 -> BF16 2432 (one division of fl32(1.1): 2448).
    expect(nvfp4TensorScale("compressed-tensors", f(1.1))).toBe(2432);
    expect(nvfp4TensorScale("compressed-tensors", 0)).toBe(1); // 2688 / tiny overflows: nan_to_num -> 1
    expect(nvfp4TensorScale("compressed-tensors", 1e-37)).toBe(1);
  });

  it("refuses a band without its per-tensor scalar", () => {
    expect(() =>
      convertBand(
        { source: { kind: "plain", dtype: "F32" }, target: CT, rows: 1, cols: 16 },
        new Uint8Array(64),
        null,
      ),
    ).toThrow(/positive finite float32 scalar/);
  });
});
