import { afterEach, describe, expect, it } from "vitest";
import { decodeCode } from "../../src/formats/codec.js";
import { formatState } from "../../src/formats/format-cache.js";
import { decode, decodeInto, encode, encodeInto } from "../../src/formats/index.js";
import { seededUniform } from "../../src/formats/prng.js";
import type { ByteFormatName, EncodeOptions } from "../../src/formats/types.js";
import { wasmDecode, wasmEncode } from "../../src/formats/wasm/backend.js";
import { setKernelBackend } from "../../src/formats/wasm/kernel-backend.js";
import { f32FromBits, loadVectors, withBackend } from "./helpers.js";

/**
 * The WebAssembly codec backend against the TypeScript kernels (the specification): the same calls
 * run with each backend forced, and the bytes must match. Decode is also checked code by code
 * against `decodeCode`, and encode against the ml_dtypes 0.6.0 vectors.
 */

const BYTE8: ByteFormatName[] = [
  "float8_e4m3fn",
  "float8_e5m2",
  "float8_e4m3fnuz",
  "float8_e5m2fnuz",
  "float8_e8m0fnu",
  "hifloat8",
];
const WASM_ENCODE: ByteFormatName[] = ["float8_e4m3fn", "float8_e5m2"];

afterEach(() => setKernelBackend("auto"));

const bitsOf = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

/** Every BF16 pattern, then seeded random float32 bits, then hand-picked specials and boundaries. */
function encodeInputs(): Float32Array {
  const u = seededUniform(20261130);
  const bits: number[] = [];
  for (let i = 0; i < 65536; i++) bits.push(i << 16);
  for (let i = 0; i < 1_000_000; i++) bits.push(Math.floor(u() * 2 ** 32));
  const specials = [
    0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff812345, 1, 0x807fffff,
  ];
  // around every rounding boundary of the byte formats: each 19-bit-aligned pattern and its neighbours
  for (let k = 0; k < 1 << 13; k++) {
    const b = (k << 19) >>> 0;
    specials.push(
      b,
      (b + 1) >>> 0,
      (b - 1) >>> 0,
      (b + 0x40000) >>> 0,
      (b + 0x3ffff) >>> 0,
      (b + 0x40001) >>> 0,
    );
  }
  bits.push(...specials);
  return new Float32Array(new Uint32Array(bits).buffer);
}

describe("decode: WebAssembly backend = TypeScript kernels", () => {
  it.each(BYTE8)("%s, all 256 codes in every lane and odd lengths", (format) => {
    const st = formatState(format);
    const codes = new Uint8Array(256 * 67 + 13);
    for (let i = 0; i < codes.length; i++) codes[i] = (i * 37 + (i >>> 8)) & 255;
    for (const [start, end] of [
      [0, codes.length],
      [3, 3 + 255],
      [5, 6],
      [1, 16385 + 40],
    ]) {
      const c = codes.subarray(start, end);
      const ts = withBackend("ts", () => decode(format, c));
      const wasm = withBackend("wasm", () => decode(format, c));
      expect(bitsOf(wasm)).toEqual(bitsOf(ts));
      // and code by code against the specification codec (NaN compared by sign)
      for (let i = 0; i < Math.min(c.length, 512); i++) {
        const want = decodeCode(st.traits, st.derived, c[i]);
        if (Number.isNaN(want)) expect(Number.isNaN(wasm[i])).toBe(true);
        else expect(Object.is(wasm[i], want)).toBe(true);
      }
    }
    // decodeInto a view at an offset
    const dst = new Float32Array(300);
    withBackend("wasm", () => decodeInto(format, codes.subarray(7, 7 + 290), dst.subarray(10, 300)));
    expect(bitsOf(dst.subarray(10))).toEqual(
      bitsOf(withBackend("ts", () => decode(format, codes.subarray(7, 297)))),
    );
    expect(dst[9]).toBe(0);
  });

  it("takes the WebAssembly path for every 8-bit format and no other", () => {
    const st = formatState("float8_e4m3fn");
    setKernelBackend("wasm");
    for (const f of BYTE8) {
      const s = formatState(f);
      expect(wasmDecode(s.traits, s.tableBits, new Uint8Array(4), new Uint32Array(4))).toBe(true);
    }
    const fp4 = formatState("float4_e2m1fn");
    expect(wasmDecode(fp4.traits, fp4.tableBits, new Uint8Array(4), new Uint32Array(4))).toBe(false);
    setKernelBackend("ts");
    expect(wasmDecode(st.traits, st.tableBits, new Uint8Array(4), new Uint32Array(4))).toBe(false);
  });
});

describe("encode float32: WebAssembly backend = TypeScript kernels", () => {
  const x = encodeInputs();
  const options: EncodeOptions[] = [{}, { overflow: "saturate" }, { overflow: "nonfinite", rounding: "rne" }];
  for (const format of WASM_ENCODE) {
    for (const opts of options) {
      it(`${format} ${JSON.stringify(opts)} on ${x.length} inputs`, () => {
        const ts = withBackend("ts", () => encode(format, x, opts));
        const wasm = withBackend("wasm", () => encode(format, x, opts));
        let first = -1;
        for (let i = 0; i < ts.length && first < 0; i++) if (ts[i] !== wasm[i]) first = i;
        expect(
          first === -1 ? "" : `bits ${bitsOf(x)[first].toString(16)}: ${ts[first]} vs ${wasm[first]}`,
        ).toBe("");
      });
    }
    it(`${format}: the ml_dtypes vectors, through the WebAssembly path`, () => {
      const v = loadVectors().formats[format];
      const input = f32FromBits(v.tricky.inputs_f32_bits);
      expect(Array.from(withBackend("wasm", () => encode(format, input)))).toEqual(v.tricky.codes);
    });
  }

  it("encodeInto at offsets and odd lengths", () => {
    const dst = new Uint8Array(20000).fill(0xaa);
    const src = x.subarray(3, 3 + 16387);
    withBackend("wasm", () => encodeInto("float8_e4m3fn", src, dst.subarray(5, 5 + 16387)));
    expect(dst.subarray(5, 5 + 16387)).toEqual(withBackend("ts", () => encode("float8_e4m3fn", src)));
    expect(dst[4]).toBe(0xaa);
    expect(dst[5 + 16387]).toBe(0xaa);
  });

  it("falls back to TypeScript for other roundings, formats and inputs, with the same results", () => {
    const y = x.subarray(0, 70000);
    const st = formatState("float8_e4m3fn");
    setKernelBackend("wasm");
    expect(wasmEncode(st.traits, "nonfinite", y, new Uint8Array(y.length))).toBe(true);
    const hif8 = formatState("hifloat8");
    expect(wasmEncode(hif8.traits, "nonfinite", y, new Uint8Array(y.length))).toBe(false);
    const cases: [ByteFormatName, EncodeOptions][] = [
      ["float8_e4m3fn", { rounding: "toward-zero" }],
      ["float8_e4m3fn", { rounding: "ties-away", overflow: "saturate" }],
      ["float8_e4m3fn", { rounding: "stochastic", seed: 7 }],
      ["float8_e4m3fnuz", {}],
      ["float8_e8m0fnu", { overflow: "saturate" }],
      ["hifloat8", {}],
    ];
    for (const [format, opts] of cases) {
      expect(withBackend("wasm", () => encode(format, y, opts))).toEqual(
        withBackend("ts", () => encode(format, y, opts)),
      );
    }
    const d = Float64Array.from(y.subarray(0, 5000));
    expect(withBackend("wasm", () => encode("float8_e5m2", d))).toEqual(
      withBackend("ts", () => encode("float8_e5m2", d)),
    );
  });
});
