/**
 * The WebAssembly loop of the NVFP4 encoder (src/quant/kernels/nvfp4-wasm.ts) against the
 * TypeScript loop, the specification (itself checked against the producers' rules by nvfp4.test.ts):
 * the same band encoded with each backend forced must give byte-identical packed codes and E4M3
 * block scales, the same count, nonfinite, saturated, flushed and max |e|, and sums within 1e-12
 * relative (the WebAssembly loop adds in another order). Bands: random weights at magnitudes over
 * the float32 range, BF16-exact and not (the encoder's scale memo keys on BF16 amax), rows of 16,
 * 32, 48 and 4096 + 16 elements and bands over several chunks; NaN, +-Inf, +-0, subnormals and
 * saturating values placed in groups, all-zero groups and NaN-scale groups; tensor scalars from the
 * amax, from larger and smaller amax, and at the extremes where a multiplier underflows or a
 * quotient overflows; and every quotient's E2M1 coding swept across the float32 range (sv = 1).
 */
import { afterEach, describe, expect, it } from "vitest";
import { hasSimd } from "../../../src/formats/wasm/asm.js";
import { type KernelBackend, setKernelBackend } from "../../../src/formats/wasm/kernel-backend.js";
import type { ErrorStats } from "../../../src/quant/error-stats.js";
import { encodeNvfp4, nvfp4TensorScale } from "../../../src/quant/kernels/encode-nvfp4.js";
import { nvfp4Module } from "../../../src/quant/kernels/nvfp4-wasm.js";
import type { TargetCodec } from "../../../src/quant/kernels/types.js";
import { withBackend } from "../../formats/helpers.js";
import { mulberry32 } from "../../safetensors/helpers.js";
import { firstDiff, randomNormal } from "../reference.js";

afterEach(() => setKernelBackend("auto"));

type Nvfp4 = Extract<TargetCodec, { kind: "nvfp4" }>;
const MODELOPT: Nvfp4 = { kind: "nvfp4", tensorScale: "multiply", rule: "modelopt" };
const CT: Nvfp4 = { kind: "nvfp4", tensorScale: "divide", rule: "compressed-tensors" };
const RULES = [MODELOPT, CT];

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const ofBits = (b: number) => {
  u32[0] = b;
  return f32[0];
};
const bitsOf = (v: number) => {
  f32[0] = v;
  return u32[0];
};

/** `x` rounded to BF16 in place (RNE; NaN kept). */
function toBf16(x: Float32Array): Float32Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < u.length; i++) {
    if ((u[i] & 0x7fffffff) > 0x7f800000) continue;
    u[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) & 0xffff0000;
  }
  return x;
}

/** Largest finite magnitude. */
function amaxOf(x: Float32Array): number {
  let a = 0;
  for (const v of x) if (Math.abs(v) > a && Number.isFinite(v)) a = Math.abs(v);
  return a;
}

/** Normal weights, each group at its own magnitude 2^e, e in [lo, hi). */
function weights(seed: number, n: number, lo: number, hi: number): Float32Array {
  const rnd = mulberry32(seed);
  const x = randomNormal(n, seed);
  for (let g = 0; g < n; g += 16) {
    const s = 2 ** Math.floor(lo + rnd() * (hi - lo));
    for (let i = g; i < g + 16 && i < n; i++) x[i] = Math.fround(x[i] * s);
  }
  return x;
}

/** Special values written into a few groups of `x` (a multiple of 16 long, at least 12 groups). */
function withSpecials(x: Float32Array, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  const groups = x.length / 16;
  const at = (k: number) => Math.floor(rnd() * groups) * 16 + k;
  const put = (vals: number[]) => {
    const o = at(0);
    vals.forEach((v, i) => {
      x[o + i] = v;
    });
  };
  put([Number.NaN]); // a NaN scale
  put([1, Number.NaN, -2, 0, -0]);
  put([Number.POSITIVE_INFINITY, 1, -1]); // ModelOpt: NaN scale; compressed-tensors: 448, saturating
  put([Number.NEGATIVE_INFINITY, -0, 0, 3e38]);
  put(Array(16).fill(0)); // all zero
  put(Array(16).fill(-0));
  put([-0, 0, ofBits(1), ofBits(0x80000001), ofBits(0x007fffff), -1e-40, 1e-39, 0]); // subnormals only
  put([3.4e38, -3.3e38, 1, -1e-30, 0, -0]); // huge: the block amax near FLT_MAX
  put([1e30, 1, 1e-3, -1e-30]);
  for (let k = 0; k < 8; k++) x[at(Math.floor(rnd() * 16))] = [0, -0, 1e-42, -1e-42, 65504, -7e20][k % 6];
  return x;
}

/** The tensor scalars of a band: its own, a larger and a smaller amax's, and extreme ones. */
function scalars(t: Nvfp4, x: Float32Array): number[] {
  const a = amaxOf(x);
  // Multipliers that underflow to 0 (ModelOpt 2^-149), quotients that overflow to Inf (2^120 under
  // compressed-tensors: subnormal multipliers), and finite multipliers whose 6 sv overflows (ModelOpt
  // 1e36 on a band holding 3.4e38; compressed-tensors 2^-118 with the 448 clamp).
  const extremes =
    t.rule === "modelopt" ? [2 ** -149, 2 ** -140, 1e30, 1e36] : [2 ** 120, 2 ** -100, 2 ** -118, 3e38];
  return [
    nvfp4TensorScale(t.rule, a),
    nvfp4TensorScale(t.rule, a * 37),
    nvfp4TensorScale(t.rule, a / 1000),
    ...extremes,
  ];
}

const relClose = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));

function expectStats(w: ErrorStats, s: ErrorStats, what: string): void {
  for (const k of [
    "count",
    "nonfinite",
    "saturated",
    "flushed",
    "maxAbsErr",
    "blocks",
    "changedBlocks",
  ] as const)
    expect(w[k], `${what}: ${k}`).toBe(s[k]);
  for (const k of ["xx", "ee", "xy", "yy"] as const)
    expect(relClose(w[k], s[k]), `${what}: ${k} ${w[k]} vs ${s[k]}`).toBe(true);
}

/** Both backends on the same band: identical bytes and counts, sums within 1e-12 relative. */
function expectSame(t: Nvfp4, x: Float32Array, rows: number, cols: number, ts: number, what: string) {
  const run = (b: KernelBackend) => withBackend(b, () => encodeNvfp4(t, x, rows, cols, ts));
  const s = run("ts");
  const w = run("wasm");
  const label = `${t.rule}, ${what}, scalar ${ts}`;
  expect(firstDiff(w.scale, s.scale), `${label}: scales`).toBe(-1);
  expect(firstDiff(w.data, s.data), `${label}: data`).toBe(-1);
  expectStats(w.stats, s.stats, label);
  return s;
}

describe("NVFP4 WebAssembly loop", () => {
  it("emits a valid module where SIMD is available (Node 20 has it)", () => {
    expect(hasSimd()).toBe(true);
    expect(WebAssembly.validate(nvfp4Module() as BufferSource)).toBe(true);
  });

  for (const t of RULES) {
    it(`${t.rule}: random weights over the float32 range, rows of 16 to 4096 + 16, both input grids`, () => {
      let seed = 1;
      for (const cols of [16, 32, 48, 4096 + 16])
        for (const [lo, hi] of [
          [-8, 2],
          [-30, 10],
          [-140, 120],
        ]) {
          const rows = cols === 16 ? 97 : cols === 4096 + 16 ? 3 : 40;
          for (const bf16 of [true, false]) {
            const x = weights(seed++, rows * cols, lo, hi);
            if (bf16) toBf16(x);
            for (const ts of scalars(t, x))
              expectSame(t, x, rows, cols, ts, `${rows}x${cols} 2^[${lo},${hi})`);
          }
        }
    });

    it(`${t.rule}: NaN, Inf, signed zeros, subnormals, saturating values, zero and NaN-scale groups`, () => {
      let seed = 100;
      for (const [rows, cols] of [
        [16, 16],
        [8, 32],
        [5, 48],
        [4, 4096 + 16],
      ]) {
        for (const bf16 of [true, false]) {
          const x = withSpecials(weights(seed, rows * cols, -20, 5), seed);
          seed++;
          if (bf16) toBf16(x);
          for (const ts of scalars(t, x)) {
            const s = expectSame(t, x, rows, cols, ts, `${rows}x${cols} with specials`);
            expect(s.stats.nonfinite).toBeGreaterThan(0);
          }
        }
      }
    });

    it(`${t.rule}: a band over several chunks, with a partial last chunk`, () => {
      const [rows, cols] = [20, 4096 + 16]; // 82240 elements: one full chunk of 65536 and a part
      const w = toBf16(weights(7, rows * cols, -12, 4));
      const a = amaxOf(w); // the weights' amax, not the specials' (3.4e38 would flush everything)
      const x = withSpecials(w, 7);
      for (const ts of [nvfp4TensorScale(t.rule, a), nvfp4TensorScale(t.rule, a / 50)]) {
        const s = expectSame(t, x, rows, cols, ts, "two chunks");
        expect(s.stats.saturated).toBeGreaterThan(0);
      }
    });

    it(`${t.rule}: E2M1 coding of every quotient, swept over the float32 range with sv = 1`, () => {
      // Each group holds +-6 (scale code 1.0 under the scalar 1: sv = 1 in both rules) and 15
      // values that become their own quotients: every BF16 magnitude up to 6, dense float32 runs
      // around each E2M1 value and rounding boundary (2 and 4 change the kernel's rounding step),
      // and a strided sweep of all float32 magnitudes below 6.
      const vals: number[] = [];
      for (let b = 0; b <= 0x40c0; b++) vals.push(ofBits(b << 16), -ofBits(b << 16));
      for (const m of [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 5, 6])
        for (let d = -300; d <= 300; d++)
          if (m < 6 || d <= 0) vals.push(ofBits(bitsOf(m) + d) * (d & 1 ? -1 : 1));
      for (let b = 0; b <= bitsOf(6); b += 997) vals.push(ofBits(b), -ofBits(b));
      for (let b = 0; b < 64; b++) vals.push(ofBits(b), -ofBits(b)); // subnormal quotients
      const groups = Math.ceil(vals.length / 15);
      const x = new Float32Array(groups * 16);
      for (let g = 0; g < groups; g++) {
        x[g * 16] = g & 1 ? -6 : 6;
        for (let i = 1; i < 16; i++) x[g * 16 + i] = vals[g * 15 + i - 1] ?? 0;
      }
      const s = expectSame(t, x, groups, 16, 1, "E2M1 sweep");
      expect(s.scale.every((c) => c === 0x38)).toBe(true);
    });
  }
});
