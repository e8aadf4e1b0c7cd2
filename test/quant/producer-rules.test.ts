/**
 * The scale rules of the producers (docs/SCALE-RULES.md): compressed-tensors' MX rule `ct`,
 * ModelOpt's MXFP8 rule `modelopt`, triton_kernels' (gpt-oss) `triton`, and compressed-tensors'
 * FP8_BLOCK with BF16 scales. Each is checked against a second implementation written here from the
 * upstream descriptions with plain arithmetic (exact powers of two found by doubling, value tables,
 * nearest-value search), on random amaxes and on the edge cases, and band by band through
 * `encodeBand`. The reference values were also cross-checked once against the same formulas run in
 * torch 2.13 (CPU) on 240,021 amaxes and a 64x512 band: equal except where docs/SCALE-RULES.md says.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_MX_RULE } from "../../src/convert/plan.js";
import { quantize } from "../../src/quant/index.js";
import { fastPathOf } from "../../src/quant/kernels/convert-band.js";
import { encodeBand } from "../../src/quant/kernels/encode-band.js";
import { mxScaleByte, schemeOfTarget } from "../../src/quant/kernels/target-scales.js";
import type { MxRule, TargetCodec } from "../../src/quant/kernels/types.js";
import { ctFp4 } from "./nvfp4-reference.js";
import {
  bf16,
  bf16Value,
  E2M1_VALUES,
  E4M3_VALUES,
  firstDiff,
  nearestCode,
  randomNormal,
} from "./reference.js";

const F = Math.fround;
type Element = "float8_e4m3fn" | "float4_e2m1fn";
const MAX: Record<Element, number> = { float8_e4m3fn: 448, float4_e2m1fn: 6 };

/** floor(log2 a) for a finite a > 0, by halving and doubling a power of two (exact in float64). */
function ilog2(a: number): number {
  let e = 0;
  let p = 1;
  while (p > a) {
    p /= 2;
    e--;
  }
  while (p * 2 <= a) {
    p *= 2;
    e++;
  }
  return e;
}

/** The float32 value of a bit pattern. */
function fromBits(b: number): number {
  return new Float32Array(new Uint32Array([b >>> 0]).buffer)[0];
}

// ---------------------------------------------------------------------------------------------
// Independent scale-byte references
// ---------------------------------------------------------------------------------------------

/**
 * compressed-tensors `round_to_power_2` + `generate_mx_scales`: p2 = 2^E with E = floor(log2 a),
 * plus one when a / 2^E >= 1.75; byte = clamp(127 + E - floor(log2 max), 0, 255). Zero and float32
 * subnormals give 0 (a carry reaches at most 2^-126); a p2 past 2^127 is +Inf, as NaN and Inf: 255.
 */
function ctRef(amax: number, element: Element): number {
  const a = F(Math.abs(amax));
  if (Number.isNaN(a) || a === Number.POSITIVE_INFINITY) return 0xff;
  if (a < 2 ** -126) return 0;
  let E = ilog2(a);
  if (a / 2 ** E >= 1.75) E++;
  if (E > 127) return 0xff;
  return Math.min(Math.max(127 + E - ilog2(MAX[element]), 0), 255);
}

/**
 * ModelOpt `MXFP8QTensor._compute_e8m0_exponent`: d = fl32(a / max); -127 unless d > 0; else
 * ceil(log2 d) with log2 rounded to float32, written as the exact integer part plus the double log2
 * of the mantissa, then rounded once to float32; clamped to [-127, 127].
 */
function modeloptRef(amax: number, element: Element): number {
  const d = F(F(Math.abs(amax)) / MAX[element]);
  if (!(d > 0)) return 0;
  if (d === Number.POSITIVE_INFINITY) return 254;
  const j = ilog2(d);
  const l = F(j + Math.log2(d / 2 ** j));
  return Math.min(Math.max(Math.ceil(l), -127), 127) + 127;
}

/** triton_kernels ROUND_UP: the smallest power of two >= fl32(a / max) (at least 2^-126), its biased exponent. */
function tritonRef(amax: number, element: Element): number {
  const a = F(Math.abs(amax));
  if (Number.isNaN(a)) return 0;
  const d = F(a / MAX[element]);
  if (d === 0) return 0;
  if (d === Number.POSITIVE_INFINITY) return 255;
  let j = ilog2(d);
  if (2 ** j < d) j++;
  return Math.max(j, -126) + 127;
}

const REF: Record<"ct" | "modelopt" | "triton", (amax: number, element: Element) => number> = {
  ct: ctRef,
  modelopt: modeloptRef,
  triton: tritonRef,
};

// ---------------------------------------------------------------------------------------------
// Independent element references
// ---------------------------------------------------------------------------------------------

/** E4M3 code, clamp to +-448 then nearest with ties to even (torch `clamp` + `.to(float8_e4m3fn)`). */
function e4m3Rne(q: number): number {
  if (Number.isNaN(q)) return 0x7f;
  return nearestCode(Math.min(Math.max(q, -448), 448), E4M3_VALUES, 0x80);
}

/**
 * E2M1 code, clamp to +-6 then nearest with ties to even, the sign from the sign bit (ModelOpt's
 * MXFP4 element path; compressed-tensors' `cast_to_fp4` is `ctFp4`, which differs only on -0.0).
 * E2M1 has no NaN: a NaN gets ml_dtypes' 0x8, as fp8kit's codec gives it.
 */
function e2m1Rne(q: number): number {
  if (Number.isNaN(q)) return 0x8;
  return nearestCode(Math.min(Math.max(q, -6), 6), E2M1_VALUES, 0x8);
}

/** E2M1 code, nearest with ties away from zero: the number of midpoints at or below |q|. */
function e2m1TiesAway(q: number): number {
  if (Number.isNaN(q)) return 0x7;
  const a = Math.abs(q);
  const code = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5].filter((m) => a >= m).length;
  return q < 0 || Object.is(q, -0) ? code | 0x8 : code;
}

/** One MX group by the reference of `rule`: [scale byte, element codes]. */
function refGroup(rule: "ct" | "modelopt" | "triton", element: Element, g: Float32Array): [number, number[]] {
  let amax = 0;
  for (const v of g) amax = Number.isNaN(v) || Number.isNaN(amax) ? Number.NaN : Math.max(amax, Math.abs(v));
  const byte = REF[rule](amax, element);
  const fp4 = element === "float4_e2m1fn";
  // fp8kit's convention for a NaN scale (E8M0 0xFF): the positive NaN code everywhere.
  if (byte === 0xff) return [byte, Array.from(g, () => (fp4 ? 0x8 : 0x7f))];
  const codes = Array.from(g, (v) => {
    if (rule === "ct") {
      const q = F(v / 2 ** (byte - 127)); // compressed-tensors divides by the scale
      // `cast_to_fp4` of the clamped value: -0.0 -> 0x0 (torch.sign); torch's E4M3 cast keeps -0.0.
      return fp4 ? ctFp4(Math.min(Math.max(q, -6), 6)) : e4m3Rne(q);
    }
    if (rule === "modelopt") {
      const q = F(v * 2 ** (127 - byte)); // ModelOpt multiplies by exp2(127 - byte)
      return fp4 ? e2m1Rne(q) : e4m3Rne(q);
    }
    const q = F(v * (byte === 0 ? 0 : 1 / 2 ** (byte - 127))); // triton: 0 when the scale is 0
    return fp4 ? e2m1TiesAway(q) : e4m3Rne(q);
  });
  return [byte, codes];
}

// ---------------------------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------------------------

/** Random float32 positives over the whole exponent range (uniform bit patterns), seeded. */
function randomAmaxes(n: number, seed: number): Float32Array {
  const u = randomNormal(2 * n, seed);
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    const r = (Math.abs(u[2 * i]) * 1e6 + Math.abs(u[2 * i + 1]) * 7919) % 1;
    bits[i] = Math.floor(r * 0x7f800000);
  }
  return out;
}

/** Values a few float32 ulps around max * 2^k, where rounding and float32 log2 decide. */
function nearPowers(max: number): number[] {
  const out: number[] = [];
  for (let k = -130; k <= 120; k += 3) {
    const base = new Uint32Array(new Float32Array([max * 2 ** k]).buffer)[0];
    if (base === 0 || base >= 0x7f800000) continue;
    for (let u = -3; u <= 3; u++) out.push(fromBits(base + u));
  }
  return out;
}

const ULP_BELOW_175 = fromBits(0x3fdfffff); // 1.7499999
const EDGES: number[] = [
  0,
  -0,
  1e-45, // smallest float32 subnormal
  1e-40,
  fromBits(0x007fffff), // largest subnormal: the CT carry reaches 2^-126
  2 ** -126,
  1.75,
  ULP_BELOW_175,
  1.75 * 2 ** 8, // 448
  F(448 * (1 - 2 ** -24)),
  449,
  464,
  512,
  6,
  7,
  ULP_BELOW_175 * 4,
  8,
  1,
  2,
  2 ** 100,
  2 ** -100,
  1.75 * 2 ** 127, // CT: rounds up past the largest exponent
  ULP_BELOW_175 * 2 ** 127,
  3.4028234663852886e38, // FLT_MAX
  Number.POSITIVE_INFINITY,
  Number.NaN,
];

const ELEMENTS: readonly Element[] = ["float8_e4m3fn", "float4_e2m1fn"];
const RULES = ["ct", "modelopt", "triton"] as const;

// ---------------------------------------------------------------------------------------------

describe("producer MX scale bytes against independent implementations", () => {
  for (const rule of RULES) {
    for (const element of ELEMENTS) {
      it(`${rule} ${element}: random amaxes, values around max * 2^k, edge cases`, () => {
        const xs = [...randomAmaxes(20000, 7), ...nearPowers(MAX[element]), ...EDGES];
        for (const a of xs) {
          const want = REF[rule](a, element);
          const got = mxScaleByte(rule, a, element);
          if (got !== want) expect(`${rule}(${a}) = ${got}`).toBe(`${rule}(${a}) = ${want}`);
        }
      });
    }
  }

  it("ct: the significand rounds up from 1.75 on, not one ulp below (floor would not round up)", () => {
    expect(mxScaleByte("ct", 1.75, "float8_e4m3fn")).toBe(127 + 1 - 8);
    expect(mxScaleByte("ct", ULP_BELOW_175, "float8_e4m3fn")).toBe(127 + 0 - 8);
    expect(mxScaleByte("floor", 1.75, "float8_e4m3fn")).toBe(127 + 0 - 8);
    // E2M1, offset 2: 7 = 1.75 * 4 rounds to 8 -> 127 + 3 - 2; 6.9999995 stays at 4 -> 127.
    expect(mxScaleByte("ct", 7, "float4_e2m1fn")).toBe(128);
    expect(mxScaleByte("ct", ULP_BELOW_175 * 4, "float4_e2m1fn")).toBe(127);
    expect(mxScaleByte("ct", 448, "float8_e4m3fn")).toBe(128); // 448 = 1.75 * 2^8 -> 2^9
    // Powers of two are kept; zero and subnormals give byte 0; NaN, Inf and 1.75 * 2^127 give 0xFF.
    expect(mxScaleByte("ct", 2 ** 20, "float8_e4m3fn")).toBe(127 + 20 - 8);
    expect(mxScaleByte("ct", 0, "float8_e4m3fn")).toBe(0);
    expect(mxScaleByte("ct", fromBits(0x007fffff), "float4_e2m1fn")).toBe(0);
    expect(mxScaleByte("ct", Number.NaN, "float8_e4m3fn")).toBe(0xff);
    expect(mxScaleByte("ct", Number.POSITIVE_INFINITY, "float8_e4m3fn")).toBe(0xff);
    expect(mxScaleByte("ct", 1.75 * 2 ** 127, "float8_e4m3fn")).toBe(0xff);
    expect(mxScaleByte("ct", ULP_BELOW_175 * 2 ** 127, "float8_e4m3fn")).toBe(127 + 127 - 8);
  });

  it("modelopt: float32 log2 rounds a d just above 2^k to k (torch 2.13 gives the same bytes)", () => {
    // amax bits 0x39E00001: d = fl32(amax / 448) = 2^-20 * (1 + 2^-23); log2 d = -20 + 1.7e-7, which
    // float32 rounds to -20: byte 107. The exact ceil (triton's bit rule) gives 2^-19: byte 108.
    const a = fromBits(0x39e00001);
    expect(mxScaleByte("modelopt", a, "float8_e4m3fn")).toBe(107);
    expect(mxScaleByte("triton", a, "float8_e4m3fn")).toBe(108);
    // Near 2^0 float32 log2 has the precision to see it: d = 1 + 2^-23 -> log2 > 0 -> byte 128.
    expect(mxScaleByte("modelopt", fromBits(0x43e00001), "float8_e4m3fn")).toBe(128);
    expect(mxScaleByte("modelopt", 448, "float8_e4m3fn")).toBe(127);
    expect(mxScaleByte("modelopt", 0, "float8_e4m3fn")).toBe(0);
    expect(mxScaleByte("modelopt", Number.NaN, "float8_e4m3fn")).toBe(0); // where(d > 0) is false
    expect(mxScaleByte("modelopt", Number.POSITIVE_INFINITY, "float8_e4m3fn")).toBe(254);
    expect(mxScaleByte("modelopt", 1e-45, "float8_e4m3fn")).toBe(0); // fl32(1e-45 / 448) = 0
  });

  it("modelopt and triton agree on every BF16 amax (the log2 edge needs float32 weights)", () => {
    for (let c = 0x0001; c < 0x7f80; c++) {
      const a = bf16Value(c);
      if (a / 448 < 2 ** -126) continue; // below: modelopt clamps at -127, triton at 2^-126
      expect(mxScaleByte("modelopt", a, "float8_e4m3fn")).toBe(mxScaleByte("triton", a, "float8_e4m3fn"));
    }
  });

  it("triton: an exact bit-level ceil of fl32(amax / max)", () => {
    expect(mxScaleByte("triton", 6, "float4_e2m1fn")).toBe(127);
    expect(mxScaleByte("triton", F(6 * (1 + 2 ** -22)), "float4_e2m1fn")).toBe(128);
    expect(mxScaleByte("triton", 448, "float8_e4m3fn")).toBe(127);
    expect(mxScaleByte("triton", 449, "float8_e4m3fn")).toBe(128);
    expect(mxScaleByte("triton", 1e-44, "float4_e2m1fn")).toBe(1); // subnormal d -> 2^-126
    expect(mxScaleByte("triton", 0, "float4_e2m1fn")).toBe(0);
    expect(mxScaleByte("triton", Number.NaN, "float4_e2m1fn")).toBe(0); // the add carries out
    expect(mxScaleByte("triton", Number.POSITIVE_INFINITY, "float4_e2m1fn")).toBe(0xff);
  });
});

describe("the edge-case table of docs/SCALE-RULES.md", () => {
  const k = (rule: MxRule, a: number, e: Element) => mxScaleByte(rule, a, e) - 127;
  it("E4M3 448 / 449 / 464 / 496 / 512 and E2M1 6 / 6.9999995 / 7 / 8", () => {
    const e4 = [448, 449, 464, 496, 512];
    const e2 = [6, ULP_BELOW_175 * 4, 7, 8];
    expect(e4.map((a) => k("ct", a, "float8_e4m3fn"))).toEqual([1, 1, 1, 1, 1]);
    expect(e2.map((a) => k("ct", a, "float4_e2m1fn"))).toEqual([0, 0, 1, 1]);
    for (const rule of ["modelopt", "triton"] as const) {
      expect(e4.map((a) => k(rule, a, "float8_e4m3fn"))).toEqual([0, 1, 1, 1, 1]);
      expect(e2.map((a) => k(rule, a, "float4_e2m1fn"))).toEqual([0, 1, 1, 1]);
    }
  });
});

describe("element rounding of the producer rules", () => {
  /** One E2M1 group whose scale byte is 127 (amax 6 under every rule), the rest `vals`. */
  function e2m1Codes(rule: MxRule, vals: number[]): number[] {
    const g = new Float32Array(32);
    g[0] = 6;
    g.set(vals, 1);
    const r = encodeBand({ kind: "mx", element: "float4_e2m1fn", rule }, g, 1, 32);
    expect(r.scale![0]).toBe(127);
    return vals.map((_, i) => (r.data[(i + 1) >> 1] >> (((i + 1) & 1) * 4)) & 15);
  }
  const TIES = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -0.25, -2.5, -0, -0.1, 5.5, -6];

  it("triton rounds E2M1 ties away from zero, -0.0 -> 0x8, saturating", () => {
    // 0.25->0.5, 0.75->1, 1.25->1.5, 1.75->2, 2.5->3, 3.5->4, 5->6, -0.25->-0.5, -2.5->-3, -0, -0, 6, -6
    expect(e2m1Codes("triton", TIES)).toEqual([1, 2, 3, 4, 5, 6, 7, 9, 13, 8, 8, 7, 15]);
  });

  it("triton: one float32 ulp either side of every E2M1 midpoint", () => {
    const near = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5].flatMap((m) => [
      F(m * (1 - 2 ** -24)),
      F(m * (1 + 2 ** -23)),
    ]);
    const vals = [...near, ...near.map((v) => -v)];
    expect(e2m1Codes("triton", vals)).toEqual(vals.map(e2m1TiesAway));
    expect(e2m1Codes("ct", vals)).toEqual(vals.map(ctFp4));
  });

  it("ct and modelopt keep the RNE element path (compressed-tensors' cast_to_fp4 table is RNE)", () => {
    // 0.25->0, 0.75->1, 1.25->1, 1.75->2, 2.5->2, 3.5->4, 5->4: ties to the even code. -0.0 and
    // -0.1 (a negative rounding to zero) keep the sign bit, 0x8, except -0.0 under ct (below).
    const rne = [0, 2, 2, 4, 4, 6, 6, 8, 12, 8, 8, 7, 15];
    for (const rule of ["modelopt", "floor"] as const) expect(e2m1Codes(rule, TIES)).toEqual(rne);
    expect(e2m1Codes("ct", TIES)).toEqual([0, 2, 2, 4, 4, 6, 6, 8, 12, 0, 8, 7, 15]);
  });

  it("ct: a scaled -0.0 is E2M1 0x0 (x * torch.sign(x), +0 for -0.0), a negative rounding to zero 0x8, E4M3 -0.0 0x80", () => {
    // Scale byte 127 (amax 6 / 448): the elements are unscaled. -0.0 * sign(-0.0) = 0 * 0 = +0;
    // -0.2 -> |x| rounds to 0, times sign -1 = -0.0, which pack_fp4_to_uint8 stores as 0x8.
    expect(e2m1Codes("ct", [-0, -0.2, 0, 0.2])).toEqual([0x0, 0x8, 0x0, 0x0]);
    expect(e2m1Codes("modelopt", [-0, -0.2, 0, 0.2])).toEqual([0x8, 0x8, 0x0, 0x0]);
    // MXFP8: torch's `.to(torch.float8_e4m3fn)` keeps the sign of zero.
    const g = new Float32Array(32);
    g[0] = 256; // ct: 2^8 -> byte 127 + 8 - 8
    g[1] = -0;
    g[2] = -(2 ** -12); // rounds to -0 in E4M3 (smallest subnormal 2^-9)
    const r = encodeBand({ kind: "mx", element: "float8_e4m3fn", rule: "ct" }, g, 1, 32);
    expect(r.scale![0]).toBe(127);
    expect(Array.from(r.data.subarray(0, 4))).toEqual([0x78, 0x80, 0x80, 0x00]);
  });
});

describe("encodeBand with the producer rules equals the independent implementations", () => {
  /** Rows of 32-groups: normals over binades, grid values full of ties, and special groups. */
  function band(rows: number, element: Element, seed: number): Float32Array {
    const cols = 128;
    const x = randomNormal(rows * cols, seed);
    for (let i = 0; i < x.length; i++) {
      const row = Math.floor(i / cols);
      if (row % 3 === 0)
        x[i] = Math.round(x[i] * 12) * 0.125 * 2 ** ((row % 5) - 2); // E2M1 ties
      else if (row % 3 === 1)
        x[i] = Math.round(x[i] * 300) / 64; // E4M3 ties
      else x[i] *= 2 ** ((i % 9) - 4);
    }
    const group = (r: number, g: number) => x.subarray(r * cols + g * 32, r * cols + g * 32 + 32);
    group(0, 0).fill(0);
    group(0, 1)[3] = Number.NaN;
    group(0, 2)[4] = Number.POSITIVE_INFINITY;
    group(1, 0).fill(-0);
    group(1, 1).fill(1e-40);
    const top = element === "float4_e2m1fn" ? 4 : 256;
    group(1, 2)[7] = 1.75 * top; // amax 7 / 448: significand 1.75
    group(1, 3)[9] = ULP_BELOW_175 * top; // one ulp below
    group(2, 0)[0] = -3.4028234663852886e38;
    return x;
  }

  for (const rule of RULES) {
    for (const element of ELEMENTS) {
      it(`${rule} ${element}`, () => {
        const rows = 48;
        const x = band(rows, element, 11);
        const r = encodeBand({ kind: "mx", element, rule }, x, rows, 128);
        const fp4 = element === "float4_e2m1fn";
        for (let gi = 0; gi < rows * 4; gi++) {
          const [byte, codes] = refGroup(rule, element, x.subarray(gi * 32, gi * 32 + 32));
          expect(r.scale![gi], `group ${gi} scale`).toBe(byte);
          const mine = codes.map((_, i) => {
            const k = gi * 32 + i;
            return fp4 ? (r.data[k >> 1] >> ((k & 1) * 4)) & 15 : r.data[k];
          });
          expect(firstDiff(mine, codes), `group ${gi} codes`).toBe(-1);
        }
      });
    }
  }

  it("the default rule of each layout is its producer's (compressed-tensors ct, modelopt, gpt-oss triton)", () => {
    expect(DEFAULT_MX_RULE["compressed-tensors"]).toBe("ct");
    expect(DEFAULT_MX_RULE.modelopt).toBe("modelopt");
    expect(DEFAULT_MX_RULE["gpt-oss"]).toBe("triton");
    // A compressed-tensors MXFP8 group with amax 1.75 * 2^k: the layout's default gives the byte
    // compressed-tensors stores, one above OCP's floor.
    const g = new Float32Array(32).fill(0.5);
    g[3] = 1.75;
    const rule = DEFAULT_MX_RULE["compressed-tensors"];
    expect(encodeBand({ kind: "mx", element: "float8_e4m3fn", rule }, g, 1, 32).scale![0]).toBe(
      ctRef(1.75, "float8_e4m3fn"),
    );
    expect(encodeBand({ kind: "mx", element: "float8_e4m3fn", rule: "floor" }, g, 1, 32).scale![0]).toBe(119);
  });
});

describe("quantize() with the producer rules gives what the band encoder gives", () => {
  for (const rule of RULES) {
    for (const element of ELEMENTS) {
      it(`${rule} ${element} (triton: except groups holding a NaN, which it scales by 0)`, () => {
        const target: TargetCodec = { kind: "mx", element, rule };
        const rows = 24;
        const x = randomNormal(rows * 128, 5);
        for (let i = 0; i < x.length; i++) x[i] = Math.round(x[i] * 16) * 2 ** ((i % 7) - 6);
        x.subarray(0, 32).fill(0);
        x[40] = Number.POSITIVE_INFINITY;
        if (rule !== "triton") x[70] = Number.NaN;
        const band = encodeBand(target, x, rows, 128);
        const q = quantize(x, [rows, 128], schemeOfTarget(target)!);
        expect(firstDiff(band.data, q.data)).toBe(-1);
        expect(firstDiff(band.scale!, q.scales as Uint8Array)).toBe(-1);
      });
    }
  }
});

describe("compressed-tensors FP8_BLOCK with BF16 scales", () => {
  const CT: Extract<TargetCodec, { kind: "fp8-block" }> = {
    kind: "fp8-block",
    block: [16, 32],
    scaleFmt: "float",
    scaleDtype: "BF16",
  };
  const bfr = (v: number) => bf16Value(bf16(v));

  /** Independent: amax of the BF16 weight, bf16(amax / 448) (0 -> 2^-7), codes e4m3(clamp(bf16(w / s))). */
  function ctBlockRef(x: Float32Array, rows: number, cols: number) {
    const [br, bc] = CT.block;
    const sr = Math.ceil(rows / br);
    const sc = Math.ceil(cols / bc);
    const codes = new Uint8Array(rows * cols);
    const scales = new Uint16Array(sr * sc);
    for (let bi = 0; bi < sr; bi++)
      for (let bj = 0; bj < sc; bj++) {
        let amax = 0;
        for (let r = bi * br; r < Math.min(rows, bi * br + br); r++)
          for (let c = bj * bc; c < Math.min(cols, bj * bc + bc); c++) {
            const w = bfr(x[r * cols + c]);
            amax = Number.isNaN(w) || Number.isNaN(amax) ? Number.NaN : Math.max(amax, Math.abs(w));
          }
        let s = bfr(amax / 448); // amax / 448 is exact in float64, rounded once to float32 by bf16()
        if (s === 0) s = 2 ** -7;
        scales[bi * sc + bj] = bf16(s);
        for (let r = bi * br; r < Math.min(rows, bi * br + br); r++)
          for (let c = bj * bc; c < Math.min(cols, bj * bc + bc); c++) {
            const w = bfr(x[r * cols + c]);
            codes[r * cols + c] = Number.isNaN(s) ? 0x7f : e4m3Rne(bfr(F(w / s)));
          }
      }
    return { codes, scales };
  }

  it("matches the independent implementation on F32 values (rounded to BF16 first) and on BF16 values", () => {
    const rows = 37;
    const cols = 70; // partial blocks in both directions
    for (const asBf16 of [false, true]) {
      const x = randomNormal(rows * cols, 3);
      for (let i = 0; i < x.length; i++) {
        x[i] *= 2 ** ((Math.floor(i / cols) % 6) - 3);
        if (asBf16) x[i] = bfr(x[i]);
      }
      for (let r = 0; r < 16; r++) for (let c = 32; c < 64; c++) x[r * cols + c] = 0; // all-zero block
      for (let r = 16; r < 32; r++) for (let c = 0; c < 32; c++) x[r * cols + c] *= 2 ** -130; // tiny
      x[32 * cols + 65] = Number.NaN; // a NaN block
      const out = encodeBand(CT, x, rows, cols);
      const ref = ctBlockRef(x, rows, cols);
      expect(firstDiff(out.data, ref.codes), "codes").toBe(-1);
      const scales = new Uint16Array(out.scale!.buffer, out.scale!.byteOffset, out.scale!.byteLength / 2);
      expect(firstDiff(scales, ref.scales), "scales").toBe(-1);
    }
  });

  it("a zero block gets finfo(bf16).eps = 2^-7; BF16 rounding of the scale and of x / s both count", () => {
    const x = new Float32Array(16 * 32);
    let out = encodeBand(CT, x, 16, 32);
    expect(Array.from(out.scale!)).toEqual([0x00, 0x3c]); // 2^-7 = BF16 0x3C00
    // amax 1.0: s = bf16(1/448) = 0.002227783203125 (BF16 0x3B12), not 1/448 rounded to float32.
    x[0] = 1;
    x[1] = 0.3;
    out = encodeBand(CT, x, 16, 32);
    expect(Array.from(out.scale!)).toEqual([0x12, 0x3b]);
    const s = bf16Value(0x3b12);
    // 1 / s = 448.88 -> BF16 448 -> E4M3 448 (0x7E). 0.3 is BF16 0.30078125, / s = 135.01 -> BF16
    // 135 -> E4M3 128 (0x70).
    expect(out.data[0]).toBe(0x7e);
    expect(out.data[1]).toBe(0x70);
    expect(e4m3Rne(bfr(F(bfr(0.3) / s)))).toBe(0x70);
  });

  it("no fast path takes it, from BF16 input nor from block FP8 of the same block", () => {
    const rows = 16;
    const cols = 32;
    expect(fastPathOf({ source: { kind: "plain", dtype: "BF16" }, target: CT, rows, cols }, null)).toBeNull();
    const source = {
      kind: "block",
      element: "float8_e4m3fn",
      packed: false,
      block: CT.block,
      scaleStorage: "f32",
    } as const;
    expect(fastPathOf({ source, target: CT, rows, cols }, new Uint8Array(4))).toBeNull();
    // The same storage with power-of-two scales (ue8m0) keeps DeepGEMM's rule and may use them.
    expect(schemeOfTarget(CT)).toBeNull();
    expect(schemeOfTarget({ ...CT, scaleFmt: "ue8m0" })).toMatchObject({ rule: "deepseek", scale: "bf16" });
  });
});
