import { describe, expect, it } from "vitest";
import { decode, encode, type FormatName, formatInfo } from "../../src/index.js";
import { f32FromBits, loadVectors, vectorValue } from "./helpers.js";

const v = loadVectors();
const names = Object.keys(v.formats) as FormatName[];

describe("ml_dtypes 0.6.0 vectors", () => {
  it("covers the six formats the vectors hold", () => {
    expect(names.sort()).toEqual(
      [
        "float4_e2m1fn",
        "float6_e2m3fn",
        "float6_e3m2fn",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e8m0fnu",
      ].sort(),
    );
  });

  for (const name of names) {
    const f = v.formats[name];
    describe(name, () => {
      it("traits match the vectors' description", () => {
        const info = formatInfo(name);
        expect(info.bits).toBe(f.bits);
        expect(info.signed).toBe(f.signed);
        expect(info.exponentBits).toBe(f.exponent_bits);
        expect(info.mantissaBits).toBe(f.mantissa_bits);
        expect(info.bias).toBe(f.bias);
      });

      it("decodes every code exactly", () => {
        const codes = Uint8Array.from({ length: 1 << f.bits }, (_, i) => i);
        const got = decode(name, codes);
        expect(f.decode.length).toBe(1 << f.bits);
        for (let c = 0; c < f.decode.length; c++) {
          const want = vectorValue(f.decode[c]);
          if (Number.isNaN(want)) expect(Number.isNaN(got[c]), `code ${c}`).toBe(true);
          else expect(Object.is(got[c], want), `code ${c}: ${got[c]} vs ${want}`).toBe(true);
        }
      });

      for (const set of ["tricky", "random"] as const) {
        const bits = set === "tricky" ? f.tricky.inputs_f32_bits : v.random_inputs_f32_bits;
        const want = set === "tricky" ? f.tricky.codes : f.random_codes;
        it(`encodes the ${set} float32 inputs to ml_dtypes' codes (${bits.length})`, () => {
          const got = encode(name, f32FromBits(bits));
          const bad: string[] = [];
          for (let i = 0; i < bits.length; i++) {
            if (got[i] !== want[i]) bad.push(`0x${bits[i].toString(16)}: want ${want[i]} got ${got[i]}`);
          }
          expect(bad.slice(0, 10)).toEqual([]);
        });

        it(`the exact (scalar) path agrees on the ${set} inputs given as float64`, () => {
          // Float64Array input takes the specification path (one rounding from the value). It equals
          // ml_dtypes except where ml_dtypes rounds from float32 *bits*: float8_e8m0fnu inputs that
          // are float32 subnormals in (2^-127, 1.5*2^-127) go to 2^-126 in ml_dtypes and 2^-127 here.
          const input = f32FromBits(bits);
          const got = encode(name, Float64Array.from(input));
          const bad: number[] = [];
          for (let i = 0; i < bits.length; i++) if (got[i] !== want[i]) bad.push(bits[i]);
          if (name === "float8_e8m0fnu") {
            for (const b of bad) expect(b > 0x400000 && b < 0x600000, `0x${b.toString(16)}`).toBe(true);
          } else {
            expect(bad).toEqual([]);
          }
        });

        it(`saturate mode equals clamp-then-cast on the ${set} inputs`, () => {
          const input = f32FromBits(bits);
          const max = formatInfo(name).max;
          const clamped = input.map((x) => (Number.isNaN(x) ? x : Math.min(max, Math.max(-max, x))));
          // keep NaN bit patterns (sign) as they were: map() on Float32Array may canonicalise NaN
          const cb = new Uint32Array(clamped.buffer);
          const ib = new Uint32Array(input.buffer);
          for (let i = 0; i < ib.length; i++) if (Number.isNaN(input[i])) cb[i] = ib[i];
          const sat = encode(name, input, { overflow: "saturate" });
          const ref = encode(name, clamped);
          expect(Array.from(sat)).toEqual(Array.from(ref));
        });
      }
    });
  }
});
