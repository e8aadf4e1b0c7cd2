/**
 * The element loops of the NVFP4 encoder (`encodeNvfp4` in ./encode-nvfp4.ts, the specification and
 * the fallback) in WebAssembly SIMD, emitted at run time through `formats/wasm/asm.ts` (no committed
 * binary). NVFP4 groups are 16 consecutive elements of a row and rows are whole groups, so a band is
 * a flat run of groups (group i: elements 16i..16i+15, scale i, bytes 8i..8i+7) and chunks need not
 * follow rows. Two exported functions over a chunk of groups, and `widen` for BF16 bands (each chunk
 * copied in as BF16, half the bytes, and widened to float32 in place of the float32 copy):
 *
 * - `amax(x, groups, out)`: per group, the unsigned max of the float32 magnitude bits
 *   (`bits & 0x7fffffff`: positive floats order as their bits, every NaN is above Inf), as
 *   `bandAmaxBits`; read back as a float32 it is `amaxFromBits`' value (NaN bits read as NaN). JS
 *   derives each group's E4M3 scale code and multiplier sv from it with the TypeScript functions.
 * - `codes(x, groups, svs, out, stats)`: per group whose multiplier is not 0, four lanes at a time:
 *   q = fl32(x / sv) (f32x4 division is IEEE with subnormals kept; JS's f64 division rounded to
 *   float32 is the same value, 53 >= 2 * 24 + 2 bits making the double rounding innocuous), the
 *   E2M1 magnitude code of |q| rounded to nearest, ties to even, saturating at 6 (see `lanes`:
 *   E2M1's magnitudes are multiples of 0.5 below 2, of 1 from 2 to 4, of 2 from 4), the sign bit
 *   (code | 8) where q < 0 (a -0.0 quotient is code 0, as in both rules), the codes packed two per
 *   byte (element 2i in the low nibble). It sums, in f64x2 lanes, x*x, e*e, x*y, y*y for
 *   y = fl32(E2M1[code] * sv) and e = x - y (each product and difference the same f64 operation as
 *   `addPairs` in JS; only the order of the additions differs), the max |e| (exactly JS's), and
 *   counts y == 0 && x != 0 (flushed) and |q| > 6 (saturated), and stores them at `stats` (the f64
 *   sums as two lanes).
 *
 * A group goes through `codes` only where the TypeScript loop would give finite x, q-derived codes
 * and y without its special cases: finite amax (no NaN/Inf element), a finite positive multiplier
 * whose 6 * sv is finite (so every y is finite and counted). The caller gives the others sv = 0 and
 * encodes them with the TypeScript loop: NaN scales, Inf elements under compressed-tensors' 448
 * clamp, multipliers underflowing to 0 or so large that 6 sv overflows (extreme tensor scalars),
 * all rare. Each thread has its own instance and memory, laid out as: statistics, per-group amax
 * bits and multipliers, the input chunk and the packed output; groups stream through in chunks of
 * `CHUNK` elements (L2-sized), so memory is allocated once.
 */

import {
  addTo,
  type Bytes,
  END,
  f32x4,
  get,
  hasSimd,
  I32,
  i8x16,
  i16x8,
  i32,
  i32x4,
  if_,
  instantiate,
  ops,
  set,
  tee,
  V128,
  type ValType,
  v128,
  wasmModule,
  whileBelow,
} from "../../formats/wasm/asm.js";
import { preferWasm } from "../../formats/wasm/kernel-backend.js";
import type { ErrorStats } from "../error-stats.js";
import { addErrorSums, type ErrorSumLocals, errorSumLanes, storeErrorSums } from "./wasm-error-sums.js";

/** Elements per NVFP4 block scale. */
const GROUP = 16;

/** The high and low 64 bits swapped, then the 32-bit halves of each: the two halving steps of a max. */
const SWAP64 = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];
const SWAP32 = [4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11];

const splat = (n: number) => v128.i32x4(n);
const splatF = (x: number) => v128.const(new Uint8Array(new Float32Array([x, x, x, x]).buffer));

/**
 * The float32 bits of the E2M1 magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6 (codes 0..7) differ only in
 * their top two bytes: bytes 0..7 of the table are the top bytes, 8..15 the next ones. A swizzle
 * with index bytes (0x80, 0x80, m + 8, m) per i32 lane (out-of-range indices read 0) rebuilds them.
 */
const E2M1_BYTES = [
  0x00, 0x3f, 0x3f, 0x3f, 0x40, 0x40, 0x40, 0x40, 0x00, 0x00, 0x80, 0xc0, 0x00, 0x40, 0x80, 0xc0,
];

// amax: params 0 x, 1 groups, 2 out; i32 locals 3 g, 4 p, 5 o; v128 local 6 acc.
function amaxBody(): Bytes {
  const [GROUPS, G, P, O, ACC] = [1, 3, 4, 5, 6];
  const mag = (offset: number) => ops(get(P), v128.load(offset), splat(0x7fffffff), v128.and);
  const fold = (lanes: number[]) => ops(tee(ACC), get(ACC), get(ACC), v128.shuffle(lanes), i32x4.max_u);
  const group = ops(
    get(O),
    ops(mag(0), mag(16), i32x4.max_u, mag(32), mag(48), i32x4.max_u, i32x4.max_u),
    fold(SWAP64),
    fold(SWAP32),
    i32x4.extract_lane(0),
    i32.store(0),
    addTo(P, 64),
    addTo(O, 4),
    addTo(G, 1),
  );
  return ops(get(0), set(P), get(2), set(O), whileBelow(G, GROUPS, group));
}

// codes: params 0 x, 1 groups, 2 svs, 3 out, 4 stats; i32 locals 5 g, 6 p, 7 d, 8 v, 9 sbits;
// v128 locals 10 S, 11 X, 12 Q, 13 A, 14 M, 15 NEG, 16 Y, 17 XD, 18 YD, 19 E, 20 AXX, 21 AEE, 22 AXY,
// 23 AYY, 24 AMAX, 25 AFL, 26 ASAT, 27 T, 28 GE2, 29 GE4.
const [CX, CGROUPS, CSVS, COUT, CSTATS] = [0, 1, 2, 3, 4];
const [G, P, D, V, SB] = [5, 6, 7, 8, 9];
const [S, X, Q, A, M, NEG, Y, XD, YD, EE] = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
const [AXX, AEE, AXY, AYY, AMAX, AFL, ASAT, T, GE2, GE4] = [20, 21, 22, 23, 24, 25, 26, 27, 28, 29];
const SUMS: ErrorSumLocals = { X, Y, XD, YD, E: EE, AXX, AEE, AXY, AYY, AMAX, AFL };
const CODES_LOCALS: ValType[] = [I32, I32, I32, I32, I32, ...Array<ValType>(20).fill(V128)];

/** Statistics of the four lanes in X (input) and Y (fl32(E2M1[code] * sv)). */
function statsLanes(): Bytes {
  return ops(errorSumLanes(SUMS), ops(get(ASAT), get(A), splatF(6), f32x4.gt, i32x4.sub, set(ASAT)));
}

/**
 * The codes of four lanes k of the group at p, left on the stack as i32 lanes, statistics added.
 * E2M1's magnitudes (codes 0..7: 0, 0.5, 1, 1.5, 2, 3, 4, 6) are n / 2 for |q| < 2, n from 2 to
 * 4 and 2n from 4 on, and in each range the even code is the even n. So |q| * 2, |q| or |q| / 2
 * (exact: powers of two, and |q| / 2 >= 2) rounded by f32x4.nearest (ties to even) gives n, the
 * code is n, n + 2 or n + 4, and min(code, 7) saturates (above 7, Inf included). The boundaries
 * fall where they should: 1.99 -> 3.98 -> 4 = code 4 (2.0), 3.9 -> 4 = code 6 (4.0), 5 -> 2.5 -> 2
 * = code 6 (tie down to 4.0), 7 -> 3.5 -> 4 = code 8 -> 7.
 */
function lanes(k: number): Bytes {
  return ops(
    ops(get(P), v128.load(k * 16), tee(X), get(S), f32x4.div, tee(Q), f32x4.abs, set(A)),
    ops(get(A), splatF(2), f32x4.ge, set(GE2), get(A), splatF(4), f32x4.ge, set(GE4)),
    // n = nearest(|q| * (|q| >= 4 ? 0.5 : |q| >= 2 ? 1 : 2)), to an integer (saturating: Inf).
    ops(splatF(0.5), splatF(1), splatF(2), get(GE2), v128.bitselect, get(GE4), v128.bitselect),
    ops(get(A), f32x4.mul, f32x4.nearest, i32x4.trunc_sat_f32x4_s),
    // The masks are -1: n - 2 * (ge2 + ge4) is n + 2 per range passed (unsigned min: a saturated
    // n plus 4 wraps to above 2^31, still above 7).
    ops(get(GE2), get(GE4), i32x4.add, i32.const(1), i32x4.shl, i32x4.sub, splat(7), i32x4.min_u, set(M)),
    ops(get(Q), splat(0), f32x4.lt, set(NEG)),
    // y = fl32(+-E2M1[m] * sv): the magnitude's bits by swizzle, the sign bit where q < 0.
    ops(v128.const(E2M1_BYTES), get(M), splat(0x01010000), i32x4.mul, splat(0x00088080), i32x4.add),
    ops(v128.swizzle, get(NEG), splat(0x80000000 | 0), v128.and, v128.or, get(S), f32x4.mul, set(Y)),
    statsLanes(),
    ops(get(M), get(NEG), splat(8), v128.and, v128.or),
  );
}

/**
 * One group: its 16 codes narrowed to bytes, then pairs joined in i16 lanes (lane j holds codes
 * 2j and 2j+1 as bytes; lane | lane >> 4 puts the second in the high nibble of the low byte), and
 * the low bytes of the eight lanes stored as 8 bytes at d.
 */
function group(): Bytes {
  return ops(
    get(D),
    lanes(0),
    lanes(1),
    i16x8.narrow_i32x4_s,
    lanes(2),
    lanes(3),
    i16x8.narrow_i32x4_s,
    i8x16.narrow_i16x8_u,
    tee(T),
    get(T),
    i32.const(4),
    i16x8.shr_u,
    v128.or,
    splat(0x00ff00ff),
    v128.and,
    tee(T),
    get(T),
    i8x16.narrow_i16x8_u,
    v128.store64_lane(0, 0),
  );
}

function codesBody(): Bytes {
  const each = ops(
    ops(get(V), i32.load(0), tee(SB), if_(), get(SB), i32x4.splat, set(S), group(), END),
    addTo(P, 64),
    addTo(D, 8),
    addTo(V, 4),
    addTo(G, 1),
  );
  const store = (k: number, l: number) => ops(get(CSTATS), get(l), v128.store(k * 16));
  return ops(
    ops(get(CX), set(P), get(COUT), set(D), get(CSVS), set(V)),
    whileBelow(G, CGROUPS, each),
    storeErrorSums(CSTATS, SUMS),
    store(6, ASAT),
  );
}

// widen: params 0 src, 1 n, 2 dst; locals 3 p, 4 end, 5 d.
/**
 * BF16 bits to float32 bits: each u16 at `src` becomes the high half of an i32 lane at `dst` (a
 * shuffle with zero bytes below it), eight elements per step; `n` a multiple of 8.
 */
function widenBody(): Bytes {
  const [SRC, N, DST, P, E, D] = [0, 1, 2, 3, 4, 5];
  const half = (k: number) =>
    ops(get(D), get(P), v128.load(0), v128.i32x4(0), v128.shuffle(WIDEN[k]), v128.store(k * 16));
  return ops(
    ops(get(SRC), tee(P), get(N), i32.const(1), i32.shl, i32.add, set(E), get(DST), set(D)),
    whileBelow(P, E, ops(half(0), half(1), addTo(P, 16), addTo(D, 32))),
  );
}

/** Shuffle lanes of `widen`: zero bytes (16, 17) under BF16 element k's two bytes, for elements 0-3 and 4-7. */
const WIDEN = [0, 8].map((b) => [0, 2, 4, 6].flatMap((k) => [16, 17, b + k, b + k + 1]));

/** The module, with its own growable memory exported as `mem`. */
export function nvfp4Module(): Uint8Array {
  const params = (n: number) => Array<ValType>(n).fill(I32);
  return wasmModule({
    memory: { min: 1, export: "mem" },
    funcs: [
      { params: params(3), locals: [I32, I32, I32, V128], body: amaxBody(), export: "amax" },
      { params: params(5), locals: CODES_LOCALS, body: codesBody(), export: "codes" },
      { params: params(3), locals: params(3), body: widenBody(), export: "widen" },
    ],
  });
}

interface Exports {
  mem: WebAssembly.Memory;
  amax: (x: number, groups: number, out: number) => void;
  codes: (x: number, groups: number, svs: number, out: number, stats: number) => void;
  widen: (src: number, n: number, dst: number) => void;
}

/** Elements per chunk: 256 KiB of float32 in, 32 KiB of packed codes out. */
const CHUNK = 65536;
const CHUNK_GROUPS = CHUNK / GROUP;
/** Below this many elements "auto" keeps the TypeScript loop (call and copy overhead). */
const MIN_AUTO = 1024;
const STATS = 0;
const AMAX_AT = 128;
const SV_AT = AMAX_AT + CHUNK_GROUPS * 4;
const X_AT = SV_AT + CHUNK_GROUPS * 4;
const OUT_AT = X_AT + CHUNK * 4;
/** A BF16 band's chunk, widened to float32 at X_AT. */
const BF16_AT = OUT_AT + CHUNK / 2;
const MEM_BYTES = BF16_AT + CHUNK * 2;

/** This thread's instance: undefined before the first use, null where WebAssembly SIMD is missing. */
let shared: Exports | null | undefined;

function instance(): Exports | null {
  if (shared === undefined) {
    try {
      shared = hasSimd() ? (instantiate(nvfp4Module()).exports as unknown as Exports) : null;
      if (shared !== null) {
        const have = shared.mem.buffer.byteLength;
        if (MEM_BYTES > have) shared.mem.grow(Math.ceil((MEM_BYTES - have) / 65536));
      }
    } catch {
      shared = null;
    }
  }
  return shared;
}

/** What the WebAssembly loop needs of the rule, from the TypeScript encoder. */
export interface Nvfp4Groups {
  /**
   * For groups `first + j` (j below `amax.length`): sets their scale codes from their amax (`bits`,
   * the magnitude bits, and `amax`, the same read as float32: NaN for a NaN element) and writes
   * their multipliers sv to `sv[j]` where the SIMD loop gives the TypeScript loop's result (see
   * the file header), else 0.
   */
  multipliers(first: number, bits: Uint32Array, amax: Float32Array, sv: Float32Array): void;
  /** Encodes group `i` (its scale code already set) with the TypeScript loop, into data and stats. */
  fallback(i: number): void;
}

/**
 * `encodeNvfp4`'s loop in WebAssembly over `groups` groups of `x`: fills `data` (8 bytes a group)
 * and, through `rule`, the scale codes, and adds the error statistics to `st`; false (nothing done)
 * where this backend does not apply. `x` as a Uint16Array holds BF16 bits: each chunk is copied in
 * at half the size and widened to float32 in the kernel's memory (`widen`), the exact values.
 */
export function encodeNvfp4Wasm(
  x: Float32Array | Uint16Array,
  groups: number,
  rule: Nvfp4Groups,
  data: Uint8Array,
  st: ErrorStats,
): boolean {
  const n = groups * GROUP;
  if (n === 0 || x.length < n || !preferWasm(n, MIN_AUTO)) return false;
  const k = instance();
  if (k === null) return false;
  const buf = k.mem.buffer;
  const memX = new Float32Array(buf, X_AT, CHUNK);
  const memBf16 = new Uint16Array(buf, BF16_AT, CHUNK);
  const memOut = new Uint8Array(buf, OUT_AT, CHUNK / 2);
  // The amax bits read as float32: amaxFromBits' value (NaN above the Inf pattern).
  const memAmax = new Float32Array(buf, AMAX_AT, CHUNK_GROUPS);
  const memBits = new Uint32Array(buf, AMAX_AT, CHUNK_GROUPS);
  const memSv = new Float32Array(buf, SV_AT, CHUNK_GROUPS);
  const memCounts = new Int32Array(buf, STATS + 80, 8);
  const skipped: number[] = [];
  for (let g0 = 0; g0 < groups; g0 += CHUNK_GROUPS) {
    const m = Math.min(CHUNK_GROUPS, groups - g0);
    if (x instanceof Uint16Array) {
      memBf16.set(x.subarray(g0 * GROUP, (g0 + m) * GROUP));
      k.widen(BF16_AT, m * GROUP, X_AT);
    } else memX.set(x.subarray(g0 * GROUP, (g0 + m) * GROUP));
    k.amax(X_AT, m, AMAX_AT);
    rule.multipliers(g0, memBits.subarray(0, m), memAmax.subarray(0, m), memSv.subarray(0, m));
    for (let i = 0; i < m; i++) if (memSv[i] === 0) skipped.push(g0 + i);
    k.codes(X_AT, m, SV_AT, OUT_AT, STATS);
    data.set(memOut.subarray(0, m * (GROUP / 2)), g0 * (GROUP / 2));
    const c = memCounts;
    let done = m;
    for (let j = skipped.length - 1; j >= 0 && skipped[j] >= g0; j--) done--;
    st.count += done * GROUP;
    addErrorSums(st, buf, STATS);
    st.saturated += c[4] + c[5] + c[6] + c[7];
  }
  // After the copy of their chunk: the TypeScript loop writes these groups' bytes itself.
  for (const i of skipped) rule.fallback(i);
  return true;
}
