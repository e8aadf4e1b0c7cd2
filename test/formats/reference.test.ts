import { describe, expect, it } from "vitest";
import { decode, encode, type FormatName, formatInfo, packFp4, unpackFp4 } from "../../src/index.js";
import { rng } from "./helpers.js";

/**
 * Formats the ml_dtypes vectors do not cover (fnuz, bfloat16, float16) are checked against a second,
 * deliberately simple implementation: the list of (code, value) pairs built from the closed-form
 * definition, a binary search for the neighbours, nearest with ties to the even code, and the
 * format's overflow rule.
 */
interface Simple {
  name: FormatName;
  e: number; // exponent bits
  m: number; // mantissa bits
  bias: number;
  topExponentReserved: boolean; // IEEE: all-ones exponent is Inf/NaN
  overflow: (neg: boolean) => number;
  negZero: boolean;
}

const SIMPLE: Simple[] = [
  {
    name: "float8_e4m3fnuz",
    e: 4,
    m: 3,
    bias: 8,
    topExponentReserved: false,
    overflow: () => 0x80,
    negZero: false,
  },
  {
    name: "float8_e5m2fnuz",
    e: 5,
    m: 2,
    bias: 16,
    topExponentReserved: false,
    overflow: () => 0x80,
    negZero: false,
  },
  {
    name: "bfloat16",
    e: 8,
    m: 7,
    bias: 127,
    topExponentReserved: true,
    overflow: (n) => (n ? 0xff80 : 0x7f80),
    negZero: true,
  },
  {
    name: "float16",
    e: 5,
    m: 10,
    bias: 15,
    topExponentReserved: true,
    overflow: (n) => (n ? 0xfc00 : 0x7c00),
    negZero: true,
  },
];

function table(s: Simple): { code: number; value: number }[] {
  const out: { code: number; value: number }[] = [];
  const topE = (1 << s.e) - (s.topExponentReserved ? 2 : 1);
  for (let e = 0; e <= topE; e++) {
    for (let m = 0; m < 1 << s.m; m++) {
      const value = e === 0 ? m * 2 ** (1 - s.bias - s.m) : (1 + m / 2 ** s.m) * 2 ** (e - s.bias);
      out.push({ code: (e << s.m) | m, value });
    }
  }
  return out;
}

function simpleEncode(s: Simple, t: { code: number; value: number }[], x: number): number {
  const neg = x < 0 || Object.is(x, -0);
  const signBit = 1 << (s.e + s.m);
  const a = Math.abs(x);
  const top = t[t.length - 1];
  const ulp = top.value - t[t.length - 2].value;
  if (a > top.value + ulp / 2 || (a === top.value + ulp / 2 && (top.code & 1) === 1)) return s.overflow(neg);
  let lo = 0;
  let hi = t.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (t[mid].value <= a) lo = mid;
    else hi = mid;
  }
  let pick = t[lo];
  if (a > t[lo].value) {
    const dl = a - t[lo].value;
    const dh = t[hi].value - a;
    pick = dh < dl || (dh === dl && (t[hi].code & 1) === 0) ? t[hi] : t[lo];
  }
  if (pick.code === 0 && !s.negZero) return 0;
  return neg ? pick.code | signBit : pick.code;
}

describe("second implementation for formats without vectors", () => {
  for (const s of SIMPLE) {
    it(`${s.name}: random float32 and float64 inputs, and every midpoint`, () => {
      const t = table(s);
      const info = formatInfo(s.name);
      const r = rng(3);
      const xs: number[] = [];
      const maxE = Math.log2(info.max);
      for (let i = 0; i < 5000; i++)
        xs.push(
          (r() < 0.5 ? -1 : 1) *
            2 ** (r() * (maxE + 4 - Math.log2(info.minSubnormal)) + Math.log2(info.minSubnormal) - 2),
        );
      for (let i = 0; i + 1 < t.length; i += Math.max(1, t.length >> 10))
        xs.push((t[i].value + t[i + 1].value) / 2);
      const f32 = new Float32Array(xs);
      const got32 = encode(s.name, f32);
      const got64 = encode(s.name, new Float64Array(xs));
      for (let i = 0; i < xs.length; i++) {
        expect(got32[i], `${s.name} f32 ${f32[i]}`).toBe(simpleEncode(s, t, f32[i]));
        expect(got64[i], `${s.name} f64 ${xs[i]}`).toBe(simpleEncode(s, t, xs[i]));
      }
      // and decode agrees with the closed form
      const codes = t.map((e) => e.code);
      const dec = decode(s.name, info.bits === 16 ? Uint16Array.from(codes) : Uint8Array.from(codes));
      t.forEach((e, i) => {
        expect(dec[i]).toBe(e.value);
      });
    });
  }
  it("fnuz: -0 encodes to 0x00, NaN and Inf to 0x80", () => {
    const x = new Float32Array([-0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e9]);
    expect(Array.from(encode("float8_e4m3fnuz", x))).toEqual([0, 0x80, 0x80, 0x80, 0x80]);
    expect(Array.from(encode("float8_e4m3fnuz", x, { overflow: "saturate" }))).toEqual([
      0, 0x80, 0x7f, 0xff, 0x7f,
    ]);
  });
});

describe("FP4 packing", () => {
  it("puts element 0 in the low nibble (torchao pack_uint4, safetensors F4)", () => {
    expect(Array.from(packFp4(new Uint8Array([0x1, 0x2, 0xf, 0x8, 0x7])))).toEqual([0x21, 0x8f, 0x07]);
    expect(Array.from(unpackFp4(new Uint8Array([0x21, 0x8f, 0x07]), 5))).toEqual([1, 2, 15, 8, 7]);
  });
  it("round trips random codes, odd and even counts", () => {
    const r = rng(5);
    for (const n of [0, 1, 2, 33, 1000]) {
      const c = Uint8Array.from({ length: n }, () => Math.floor(r() * 16));
      expect(Array.from(unpackFp4(packFp4(c), n))).toEqual(Array.from(c));
    }
  });
  it("rejects codes wider than 4 bits and short buffers", () => {
    expect(() => packFp4(new Uint8Array([16]))).toThrow(/not a 4-bit code/);
    expect(() => unpackFp4(new Uint8Array(2), 5)).toThrow(/need 3 bytes/);
  });
});

describe("fast paths at any alignment", () => {
  it("encodeInto / decodeInto give the same codes and values on unaligned views", async () => {
    const { encodeInto, decodeInto } = await import("../../src/index.js");
    const r = rng(9);
    const n = 1003;
    const xs = Float32Array.from({ length: n }, () => (r() - 0.5) * 1000);
    const want = encode("float8_e4m3fn", xs);
    for (let off = 0; off < 4; off++) {
      const dst = new Uint8Array(n + 8).subarray(off, off + n);
      encodeInto("float8_e4m3fn", xs, dst);
      expect(Array.from(dst)).toEqual(Array.from(want));
      const vals = new Float32Array(n);
      decodeInto("float8_e4m3fn", dst, vals);
      expect(Array.from(vals)).toEqual(Array.from(decode("float8_e4m3fn", want)));
    }
  });
});

describe("float32BitsEncoder", () => {
  it("matches encode on the vectors' random inputs for every byte format and both overflow policies", async () => {
    const { float32BitsEncoder, FORMAT_NAMES } = await import("../../src/index.js");
    const { loadVectors } = await import("./helpers.js");
    const bits = Uint32Array.from(loadVectors().random_inputs_f32_bits);
    const xs = new Float32Array(bits.buffer);
    for (const f of FORMAT_NAMES) {
      for (const overflow of ["nonfinite", "saturate"] as const) {
        const enc = float32BitsEncoder(f, { overflow });
        const want = encode(f, xs, { overflow });
        for (let i = 0; i < bits.length; i++) {
          if (enc(bits[i]) !== want[i]) expect.fail(`${f} ${overflow} 0x${bits[i].toString(16)}`);
        }
      }
    }
  });
});
