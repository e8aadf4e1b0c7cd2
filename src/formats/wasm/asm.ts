/**
 * A small WebAssembly assembler, enough for fp8kit's run-time kernels (no committed binaries): LEB128,
 * sections, one memory, functions with locals, and the i32/i64/f32/v128 instructions the kernels use.
 * Instructions are plain byte arrays (`number[]`) so kernels compose them with `ops(...)`; opcode
 * numbers follow the WebAssembly 2.0 binary format (SIMD: the 0xfd prefix and a LEB128 opcode).
 * Browser-safe: no Node built-ins. Relaxed SIMD is deliberately not used (the kernels need nothing it
 * adds, and Node 20 would need a V8 flag), so fixed-width SIMD is the only feature probed.
 */

export type Bytes = number[];

/** Unsigned LEB128. */
export function uleb(n: number): Bytes {
  const out: Bytes = [];
  let v = n >>> 0;
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb(n: number): Bytes {
  const out: Bytes = [];
  let v = n | 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** Signed LEB128 of a 64-bit integer. */
export function sleb64(n: bigint): Bytes {
  const out: Bytes = [];
  let v = BigInt.asIntN(64, n);
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** A run of instructions: opcodes and encoded instructions, flattened. */
export const ops = (...parts: (number | Bytes)[]): Bytes => parts.flat();

/** A name: its UTF-8 length and bytes. */
export function name(s: string): Bytes {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

const vec = (items: Bytes[]): Bytes => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: Bytes): Bytes => [id, ...uleb(body.length), ...body];

/** Value types. */
export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof I64 | typeof F32 | typeof F64 | typeof V128;

/** Block type "no result". */
export const VOID = 0x40;

// Control and locals.
export const block = (bt: number = VOID): Bytes => [0x02, bt];
export const loop = (bt: number = VOID): Bytes => [0x03, bt];
export const if_ = (bt: number = VOID): Bytes => [0x04, bt];
export const ELSE = 0x05;
export const END = 0x0b;
export const br = (depth: number): Bytes => [0x0c, ...uleb(depth)];
export const brIf = (depth: number): Bytes => [0x0d, ...uleb(depth)];
export const RETURN = 0x0f;
export const call = (fn: number): Bytes => [0x10, ...uleb(fn)];
export const DROP = 0x1a;
export const SELECT = 0x1b;
export const get = (i: number): Bytes => [0x20, ...uleb(i)];
export const set = (i: number): Bytes => [0x21, ...uleb(i)];
export const tee = (i: number): Bytes => [0x22, ...uleb(i)];

/** memarg: alignment as log2 bytes, then the static offset. */
const mem =
  (op: number, align: number) =>
  (offset = 0): Bytes => [op, align, ...uleb(offset)];

/** i32 instructions. */
export const i32 = {
  const: (n: number): Bytes => [0x41, ...sleb(n)],
  load: mem(0x28, 2),
  load8_u: mem(0x2d, 0),
  load16_u: mem(0x2f, 1),
  store: mem(0x36, 2),
  store8: mem(0x3a, 0),
  store16: mem(0x3b, 1),
  eqz: 0x45,
  eq: 0x46,
  ne: 0x47,
  lt_s: 0x48,
  lt_u: 0x49,
  gt_s: 0x4a,
  gt_u: 0x4b,
  le_u: 0x4d,
  ge_s: 0x4e,
  ge_u: 0x4f,
  add: 0x6a,
  sub: 0x6b,
  mul: 0x6c,
  and: 0x71,
  or: 0x72,
  xor: 0x73,
  shl: 0x74,
  shr_s: 0x75,
  shr_u: 0x76,
  wrap_i64: 0xa7,
  reinterpret_f32: 0xbc,
} as const;

/** i64 instructions. */
export const i64 = {
  const: (n: bigint): Bytes => [0x42, ...sleb64(n)],
  load: mem(0x29, 3),
  store: mem(0x37, 3),
  add: 0x7c,
  sub: 0x7d,
  mul: 0x7e,
  and: 0x83,
  or: 0x84,
  shl: 0x86,
  shr_u: 0x88,
  extend_i32_u: 0xad,
} as const;

/** f32 instructions. */
export const f32 = {
  const: (x: number): Bytes => {
    const b = new Uint8Array(new Float32Array([x]).buffer);
    return [0x43, ...b];
  },
  load: mem(0x2a, 2),
  store: mem(0x38, 2),
  abs: 0x8b,
  nearest: 0x90,
  add: 0x92,
  sub: 0x93,
  mul: 0x94,
  reinterpret_i32: 0xbe,
} as const;

const simd = (op: number): Bytes => [0xfd, ...uleb(op)];
const simdMem =
  (op: number, align: number) =>
  (offset = 0): Bytes => [...simd(op), align, ...uleb(offset)];

/** v128 (fixed-width SIMD) instructions. */
export const v128 = {
  load: simdMem(0x00, 4),
  /** Eight bytes, zero-extended to eight i16 lanes. */
  load8x8_u: simdMem(0x02, 3),
  /** Four u16, zero-extended to four i32 lanes. */
  load16x4_u: simdMem(0x04, 3),
  store: simdMem(0x0b, 4),
  /** Stores one 64-bit lane (`lane` 0 or 1) of the v128 on the stack. */
  store64_lane: (offset = 0, lane = 0): Bytes => [...simd(0x5b), 3, ...uleb(offset), lane],
  /** 16 little-endian bytes. */
  const: (bytes: ArrayLike<number>): Bytes => [...simd(0x0c), ...Array.from(bytes, (b) => b & 0xff)],
  /** Four i32 lanes. */
  i32x4: (a: number, b = a, c = a, d = a): Bytes =>
    v128.const(new Uint8Array(new Int32Array([a, b, c, d]).buffer)),
  /** Picks bytes of the two operands (0-15 first, 16-31 second). */
  shuffle: (lanes: ArrayLike<number>): Bytes => [...simd(0x0d), ...Array.from(lanes)],
  swizzle: simd(0x0e),
  not: simd(0x4d),
  and: simd(0x4e),
  andnot: simd(0x4f),
  or: simd(0x50),
  xor: simd(0x51),
  /** (a, b, mask): bits of a where mask is 1, else b. */
  bitselect: simd(0x52),
  any_true: simd(0x53),
} as const;

export const i8x16 = {
  splat: simd(0x0f),
  eq: simd(0x23),
  narrow_i16x8_s: simd(0x65),
  narrow_i16x8_u: simd(0x66),
  add: simd(0x6e),
  sub: simd(0x71),
  min_u: simd(0x77),
} as const;

export const i16x8 = {
  splat: simd(0x10),
  lt_s: simd(0x2f),
  gt_s: simd(0x31),
  narrow_i32x4_s: simd(0x85),
  narrow_i32x4_u: simd(0x86),
  extend_low_i8x16_u: simd(0x89),
  extend_high_i8x16_u: simd(0x8a),
  shl: simd(0x8b),
  shr_u: simd(0x8d),
  add: simd(0x8e),
  sub: simd(0x91),
  mul: simd(0x95),
  min_u: simd(0x97),
  max_u: simd(0x99),
} as const;

export const i32x4 = {
  splat: simd(0x11),
  extract_lane: (lane: number): Bytes => [...simd(0x1b), lane],
  eq: simd(0x37),
  ne: simd(0x38),
  lt_s: simd(0x39),
  lt_u: simd(0x3a),
  gt_s: simd(0x3b),
  gt_u: simd(0x3c),
  ge_u: simd(0x40),
  extend_low_i16x8_u: simd(0xa9),
  extend_high_i16x8_u: simd(0xaa),
  shl: simd(0xab),
  shr_s: simd(0xac),
  shr_u: simd(0xad),
  add: simd(0xae),
  sub: simd(0xb1),
  mul: simd(0xb5),
  min_u: simd(0xb7),
  max_u: simd(0xb9),
  trunc_sat_f32x4_s: simd(0xf8),
} as const;

export const f32x4 = {
  splat: simd(0x13),
  eq: simd(0x41),
  ne: simd(0x42),
  lt: simd(0x43),
  gt: simd(0x44),
  le: simd(0x45),
  ge: simd(0x46),
  nearest: simd(0x6a),
  abs: simd(0xe0),
  add: simd(0xe4),
  sub: simd(0xe5),
  mul: simd(0xe6),
  /** IEEE division (subnormals kept). */
  div: simd(0xe7),
  /** `b < a ? b : a` (one minps). */
  pmin: simd(0xea),
  /** `a < b ? b : a` (one maxps). */
  pmax: simd(0xeb),
  convert_i32x4_s: simd(0xfa),
} as const;

export const f64x2 = {
  /** The low two float32 lanes, widened. */
  promote_low_f32x4: simd(0x5f),
  abs: simd(0xec),
  add: simd(0xf0),
  sub: simd(0xf1),
  mul: simd(0xf2),
  /** `a < b ? b : a` (one maxpd). */
  pmax: simd(0xf7),
} as const;

/** `while (a < b) { body }` on unsigned i32 locals: a block around a loop that exits when a >= b. */
export const whileBelow = (a: number, b: number, body: Bytes): Bytes =>
  ops(block(), loop(), get(a), get(b), i32.ge_u, brIf(1), body, br(0), END, END);

/** `while (p + step <= end) { body; p += step }` on unsigned i32 locals `p` and `end`. */
export const whileStepFits = (p: number, end: number, step: number, body: Bytes): Bytes =>
  ops(
    block(),
    loop(),
    get(p),
    i32.const(step),
    i32.add,
    get(end),
    i32.gt_u,
    brIf(1),
    body,
    addTo(p, step),
    br(0),
    END,
    END,
  );

/** `local += n` on an i32 local. */
export const addTo = (local: number, n: number): Bytes => ops(get(local), i32.const(n), i32.add, set(local));

export interface FuncSpec {
  params: ValType[];
  results?: ValType[];
  /** Extra locals after the parameters, in order. */
  locals?: ValType[];
  /** The instructions, without the final `end`. */
  body: Bytes;
  /** Export name, if exported. */
  export?: string;
}

export interface ModuleSpec {
  /** One memory of `min` 64 KiB pages, exported under `export` or imported from `import`. */
  memory?: { min: number; max?: number; export?: string; import?: [string, string] };
  funcs: FuncSpec[];
}

const limits = (min: number, max?: number): Bytes =>
  max === undefined ? [0x00, ...uleb(min)] : [0x01, ...uleb(min), ...uleb(max)];

/** Runs of equal local types, as the code section wants them. */
function localDecls(locals: ValType[]): Bytes {
  const runs: Bytes[] = [];
  for (let i = 0; i < locals.length; ) {
    let j = i;
    while (j < locals.length && locals[j] === locals[i]) j++;
    runs.push([...uleb(j - i), locals[i]]);
    i = j;
  }
  return vec(runs);
}

/** The bytes of a module: one type per function, an optional memory, exports and code. */
export function wasmModule(spec: ModuleSpec): Uint8Array {
  const { memory, funcs } = spec;
  const types = funcs.map((f) => [
    0x60,
    ...vec(f.params.map((t) => [t])),
    ...vec((f.results ?? []).map((t) => [t])),
  ]);
  const exports: Bytes[] = [];
  funcs.forEach((f, i) => {
    if (f.export !== undefined) exports.push([...name(f.export), 0x00, ...uleb(i)]);
  });
  const out: Bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...section(1, vec(types))];
  if (memory?.import) {
    const [m, n] = memory.import;
    out.push(...section(2, vec([[...name(m), ...name(n), 0x02, ...limits(memory.min, memory.max)]])));
  }
  out.push(...section(3, vec(funcs.map((_, i) => uleb(i)))));
  if (memory && !memory.import) out.push(...section(5, vec([limits(memory.min, memory.max)])));
  if (memory?.export !== undefined) exports.push([...name(memory.export), 0x02, 0]);
  out.push(...section(7, vec(exports)));
  const bodies = funcs.map((f) => {
    const code = [...localDecls(f.locals ?? []), ...f.body, END];
    return [...uleb(code.length), ...code];
  });
  out.push(...section(10, vec(bodies)));
  return new Uint8Array(out);
}

/** Compiles and instantiates a module synchronously (kernel modules are a few hundred bytes). */
export function instantiate(bytes: Uint8Array, imports?: WebAssembly.Imports): WebAssembly.Instance {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource), imports);
}

let simdProbe: boolean | undefined;

/** Whether this runtime has WebAssembly with fixed-width SIMD (probed once, by validating a tiny module). */
export function hasSimd(): boolean {
  if (simdProbe === undefined) {
    try {
      const probe = wasmModule({
        funcs: [{ params: [], results: [V128], body: ops(i32.const(1), i32x4.splat) }],
      });
      simdProbe = typeof WebAssembly === "object" && WebAssembly.validate(probe as BufferSource);
    } catch {
      simdProbe = false;
    }
  }
  return simdProbe;
}
