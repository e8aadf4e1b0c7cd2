import { describe, expect, it } from "vitest";
import {
  addTo,
  type Bytes,
  DROP,
  f32,
  f32x4,
  get,
  hasSimd,
  I32,
  I64,
  i8x16,
  i16x8,
  i32,
  i32x4,
  i64,
  instantiate,
  ops,
  set,
  sleb,
  sleb64,
  uleb,
  v128,
  wasmModule,
  whileBelow,
} from "../../src/formats/wasm/asm.js";
import { bandHistograms } from "../../src/quant/kernels/code-histogram.js";
import { WasmHistogram } from "../../src/quant/kernels/code-histogram-wasm.js";

describe("LEB128", () => {
  it("encodes the spec's and DWARF's examples", () => {
    expect(uleb(0)).toEqual([0]);
    expect(uleb(127)).toEqual([0x7f]);
    expect(uleb(128)).toEqual([0x80, 0x01]);
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(uleb(0xffffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(sleb(0)).toEqual([0]);
    expect(sleb(-1)).toEqual([0x7f]);
    expect(sleb(63)).toEqual([0x3f]);
    expect(sleb(64)).toEqual([0xc0, 0x00]);
    expect(sleb(-64)).toEqual([0x40]);
    expect(sleb(-65)).toEqual([0xbf, 0x7f]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(sleb(0x7fffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x07]);
    expect(sleb(-0x80000000)).toEqual([0x80, 0x80, 0x80, 0x80, 0x78]);
    expect(sleb64(-1n)).toEqual([0x7f]);
    expect(sleb64(2n ** 63n - 1n)).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]);
  });
});

describe("instruction encodings", () => {
  it("matches the binary format", () => {
    expect(i32.const(-1)).toEqual([0x41, 0x7f]);
    expect(i32.load(8)).toEqual([0x28, 2, 8]);
    expect(i32.store8(0)).toEqual([0x3a, 0, 0]);
    expect(f32.const(1)).toEqual([0x43, 0x00, 0x00, 0x80, 0x3f]);
    expect(v128.load(16)).toEqual([0xfd, 0x00, 4, 16]);
    expect(v128.store(0)).toEqual([0xfd, 0x0b, 4, 0]);
    expect(i32x4.trunc_sat_f32x4_s).toEqual([0xfd, 0xf8, 0x01]);
    expect(i8x16.narrow_i16x8_u).toEqual([0xfd, 0x66]);
    expect(v128.i32x4(1, 2, 3, -1).slice(0, 6)).toEqual([0xfd, 0x0c, 1, 0, 0, 0]);
  });
});

/** Runs `body` as `() -> i32` (or the given result type) in a module without memory. */
function run(body: Bytes, result: number = I32): number | bigint {
  const bytes = wasmModule({ funcs: [{ params: [], results: [result as typeof I32], body, export: "f" }] });
  expect(WebAssembly.validate(bytes as BufferSource)).toBe(true);
  return (instantiate(bytes).exports.f as () => number | bigint)();
}

describe("scalar modules", () => {
  it("computes known results", () => {
    expect(run(ops(i32.const(2), i32.const(3), i32.add))).toBe(5);
    expect(run(ops(i32.const(-8), i32.const(1), i32.shr_u))).toBe(0x7ffffffc);
    expect(run(ops(i64.const(1n << 40n), i64.const(3n), i64.mul), I64)).toBe(3n << 40n);
    expect(run(ops(f32.const(2.5), f32.nearest, i32.reinterpret_f32))).toBe(0x40000000);
    // sum of 0..99 with a counted loop and locals
    const bytes = wasmModule({
      funcs: [
        {
          params: [],
          results: [I32],
          locals: [I32, I32, I32],
          body: ops(
            i32.const(100),
            set(1),
            whileBelow(0, 1, ops(get(2), get(0), i32.add, set(2), addTo(0, 1))),
            get(2),
          ),
          export: "f",
        },
      ],
    });
    expect((instantiate(bytes).exports.f as () => number)()).toBe(4950);
  });
});

describe("SIMD", () => {
  it("is available in Node 20", () => expect(hasSimd()).toBe(true));

  // Each op on lanes loaded from memory at 0 and 16, result stored at 32; compared with a JS closed form.
  const mem = new WebAssembly.Memory({ initial: 1 });
  const a = [1, -2, 0x7fffffff, 0x12345678];
  const b = [3, 5, -1, 0x0000ffff];
  const fa = [2.5, -3.5, 1.4, 1e-40].map(Math.fround);
  function lanes(op: Bytes, x: number[], y: number[], float = false, unary = false): Int32Array {
    const bytes = wasmModule({
      memory: { min: 1, import: ["env", "mem"] },
      funcs: [
        {
          params: [],
          body: ops(
            i32.const(32),
            i32.const(0),
            v128.load(0),
            unary ? [] : ops(i32.const(16), v128.load(0)),
            op,
            v128.store(0),
          ),
          export: "f",
        },
      ],
    });
    const view = float ? new Float32Array(mem.buffer) : new Int32Array(mem.buffer);
    view.set(x, 0);
    view.set(y, 4);
    (instantiate(bytes, { env: { mem } }).exports.f as () => void)();
    return new Int32Array(mem.buffer, 32, 4).slice();
  }
  const zip = (f: (x: number, y: number) => number) => a.map((x, i) => f(x, b[i]) | 0);
  const f32bits = (xs: number[]) => Array.from(new Int32Array(new Float32Array(xs).buffer));
  it.each([
    ["i32x4.add", i32x4.add, (x: number, y: number) => x + y],
    ["i32x4.sub", i32x4.sub, (x: number, y: number) => x - y],
    ["i32x4.mul", i32x4.mul, (x: number, y: number) => Math.imul(x, y)],
    ["i32x4.min_u", i32x4.min_u, (x: number, y: number) => Math.min(x >>> 0, y >>> 0)],
    ["i32x4.max_u", i32x4.max_u, (x: number, y: number) => Math.max(x >>> 0, y >>> 0)],
    ["i32x4.gt_s", i32x4.gt_s, (x: number, y: number) => (x > y ? -1 : 0)],
    ["i32x4.lt_s", i32x4.lt_s, (x: number, y: number) => (x < y ? -1 : 0)],
    ["i32x4.eq", i32x4.eq, (x: number, y: number) => (x === y ? -1 : 0)],
    ["v128.and", v128.and, (x: number, y: number) => x & y],
    ["v128.or", v128.or, (x: number, y: number) => x | y],
    ["v128.xor", v128.xor, (x: number, y: number) => x ^ y],
    ["v128.andnot", v128.andnot, (x: number, y: number) => x & ~y],
  ] as const)("%s", (_, op, f) => {
    expect(Array.from(lanes(op, a, b))).toEqual(zip(f));
  });
  it("shifts, bitselect, splat", () => {
    expect(Array.from(lanes(ops(i32.const(4), i32x4.shl), a, b, false, true))).toEqual(a.map((x) => x << 4));
    expect(Array.from(lanes(ops(i32.const(4), i32x4.shr_u), a, b, false, true))).toEqual(
      a.map((x) => (x >>> 4) | 0),
    );
    expect(Array.from(lanes(ops(i32.const(4), i32x4.shr_s), a, b, false, true))).toEqual(
      a.map((x) => x >> 4),
    );
    const sel = ops(v128.i32x4(0xff00ff00), v128.bitselect);
    expect(Array.from(lanes(sel, a, b))).toEqual(zip((x, y) => (x & 0xff00ff00) | (y & 0x00ff00ff)));
    expect(Array.from(lanes(ops(DROP, i32.const(7), i32x4.splat), [], [], false, true))).toEqual([
      7, 7, 7, 7,
    ]);
  });
  it("float lanes: nearest (ties to even), trunc_sat, mul, abs, convert", () => {
    const r = (op: Bytes) => Array.from(lanes(op, fa, [2, 2, 2, 2], true));
    expect(Array.from(lanes(ops(f32x4.nearest, i32x4.trunc_sat_f32x4_s), fa, [], true, true))).toEqual([
      2, -4, 1, 0,
    ]);
    expect(r(f32x4.mul)).toEqual(f32bits(fa.map((x) => x * 2)));
    expect(r(f32x4.add)).toEqual(f32bits(fa.map((x) => x + 2)));
    expect(Array.from(lanes(f32x4.abs, fa, [], true, true))).toEqual(f32bits(fa.map(Math.abs)));
    expect(Array.from(lanes(f32x4.convert_i32x4_s, a, [], false, true))).toEqual(f32bits(a));
  });
  it("float compares: lt, gt, le, ge (false on NaN), eq, ne; div", () => {
    const x = [1, 2, Number.NaN, -0].map(Math.fround);
    const y = [2, 2, 1, 0].map(Math.fround);
    const cmp = (op: Bytes) => Array.from(lanes(op, x, y, true));
    const want = (p: (u: number, v: number) => boolean) => x.map((u, i) => (p(u, y[i]) ? -1 : 0));
    expect(cmp(f32x4.lt)).toEqual(want((u, v) => u < v));
    expect(cmp(f32x4.gt)).toEqual(want((u, v) => u > v));
    expect(cmp(f32x4.le)).toEqual(want((u, v) => u <= v));
    expect(cmp(f32x4.ge)).toEqual(want((u, v) => u >= v));
    expect(cmp(f32x4.eq)).toEqual(want((u, v) => u === v));
    expect(cmp(f32x4.ne)).toEqual(want((u, v) => u !== v));
    expect(Array.from(lanes(f32x4.div, fa, [3, 3, 3, 3], true))).toEqual(f32bits(fa.map((v) => v / 3)));
  });
  it("widens and narrows bytes", () => {
    const bytes = [0, 1, 0x7f, 0x80, 0xff, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    const words = new Int32Array(new Uint8Array(bytes).buffer);
    const low = Array.from(
      lanes(ops(i16x8.extend_low_i8x16_u, i32x4.extend_low_i16x8_u), Array.from(words), [], false, true),
    );
    expect(low).toEqual([0, 1, 0x7f, 0x80]);
    const high = Array.from(
      lanes(ops(i16x8.extend_high_i8x16_u, i32x4.extend_high_i16x8_u), Array.from(words), [], false, true),
    );
    expect(high).toEqual([12, 13, 14, 15]);
    // [1, 300, -5, 255] and [2, 3, 4, 70000] narrowed with unsigned saturation to i16, then to bytes
    // (the second narrow reads 65535 as the signed -1, so it saturates to 0)
    const narrowed = lanes(
      ops(i16x8.narrow_i32x4_u, v128.i32x4(0), i8x16.narrow_i16x8_u),
      [1, 300, -5, 255],
      [2, 3, 4, 70000],
    );
    expect(Array.from(new Uint8Array(narrowed.buffer))).toEqual([
      1, 255, 0, 255, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
  });
});

describe("WasmHistogram on the shared assembler", () => {
  it("matches the TypeScript histograms", () => {
    const rows = 37;
    const cols = 256;
    const codes = new Uint8Array(rows * cols);
    let s = 12345;
    for (let i = 0; i < codes.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      codes[i] = s >>> 24 < 40 ? 0x38 : s >>> 16;
    }
    const w = WasmHistogram.create();
    expect(w).not.toBeNull();
    const want = new Uint32Array(4 * 256);
    bandHistograms(codes, 0, cols, 3, 35, 64, want);
    expect(Array.from(w?.band(codes, 0, cols, 3, 35, 64) ?? [])).toEqual(Array.from(want));
  });
});
