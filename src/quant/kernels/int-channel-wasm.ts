/**
 * The hot loops of the per-channel INT8/INT4 kernel (`quantizeRows` in ./encode-int-channel.ts, the
 * specification and the fallback) in WebAssembly SIMD, emitted at run time through
 * `formats/wasm/asm.ts` (no committed binary). Three exported functions over a chunk of whole rows:
 *
 * - `decode(codes, rows, cols, bc, tables, out)`: for bands given as 8-bit block codes
 *   (`CodeBandSource`, the W8A8/W4A8 fast path of FP8 sources): each code to float32 through its
 *   block column's 256-entry table, into the input area, so the float32 band never exists in
 *   JavaScript and is never copied across (chunks then stay within one block row).
 *
 * - `amax(x, rows, cols, out)`: per row, the four-lane unsigned max of the float32 magnitude bits
 *   (`bits & 0x7fffffff`; positive floats order as their bits, every NaN is above Inf), 16 bytes per
 *   row; JS reduces the lanes and derives the scale with `intChannelScale`, as the TypeScript loop.
 * - `codes(x, rows, cols, scales, codes, stats)`: per row whose scale is finite, the code of every
 *   element computed directly, four lanes at a time: w = bf16(x) on the bits, t = bf16(w / s) (f32x4
 *   division is IEEE, subnormals kept), q = rne(t) clamped to [qmin, qmax] (see `step`), the same
 *   steps as `intCodeOfBits`, so the same codes as the table lookup (which
 *   test/quant/int-channel-table.test.ts pins to msModelSlim's). With statistics it also sums, in
 *   f64x2 lanes, x*x, e*e, x*y, y*y for y = fl32(q * s) and e = x - y (each product and difference
 *   the same f64 operation as in JS; only the order of the additions differs), the max |e| (exactly
 *   JS's) and the count of y == 0 && x != 0, and stores them at `stats` (the f64 sums as two lanes).
 *   A row whose scale is NaN/Inf is skipped (the caller writes its codes 0).
 *
 * Rows are processed 16 elements per step; a row's last partial step masks its input lanes to 0
 * (code 0, y 0, no contribution to the sums) and may write up to 15 codes past the row, which the
 * next row overwrites (the caller pads the regions). Each thread has its own instance and memory,
 * laid out as: statistics, per-row scales and amax lanes, the input chunk and the code chunk; rows
 * stream through in chunks of about `CHUNK` elements (L2-sized), so memory grows only for rows
 * longer than that.
 */

import {
  addTo,
  type Bytes,
  block,
  br,
  brIf,
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
  loop,
  ops,
  SELECT,
  set,
  tee,
  V128,
  type ValType,
  v128,
  wasmModule,
  whileBelow,
  whileStepFits,
} from "../../formats/wasm/asm.js";
import { preferWasm } from "../../formats/wasm/kernel-backend.js";
import type { ErrorStats } from "../error-stats.js";
import { addErrorSums, type ErrorSumLocals, errorSumLanes, storeErrorSums } from "./wasm-error-sums.js";

const splat = (n: number) => v128.i32x4(n);
const splatF = (x: number) => v128.const(new Uint8Array(new Float32Array([x, x, x, x]).buffer));

/** BF16 rounding (RNE) of the float32 bits on the stack, in i32 lanes; `tmp` a v128 local. */
const bf16Lanes = (tmp: number): Bytes =>
  ops(
    tee(tmp),
    splat(0x7fff),
    i32x4.add,
    get(tmp),
    i32.const(16),
    i32x4.shr_u,
    splat(1),
    v128.and,
    i32x4.add,
    splat(-65536),
    v128.and,
  );

// amax: params 0 x, 1 rows, 2 cols, 3 out; locals 4 r, 5 p, 6 end, 7 acc.
function amaxBody(): Bytes {
  const [X, ROWS, COLS, OUT, R, P, E, ACC] = [0, 1, 2, 3, 4, 5, 6, 7];
  const mag = (offset: number) => ops(get(P), v128.load(offset), splat(0x7fffffff), v128.and);
  const maxInto = ops(get(ACC), i32x4.max_u, set(ACC));
  const stepLoop = (step: number, body: Bytes) => whileStepFits(P, E, step, body);
  const tail = ops(
    get(P),
    get(E),
    i32.lt_u,
    if_(),
    ops(mag(0), get(E), get(P), i32.sub, i32x4.splat, v128.i32x4(0, 4, 8, 12), i32x4.gt_s, v128.and),
    maxInto,
    END,
  );
  const row = ops(
    ops(get(X), get(R), get(COLS), i32.mul, i32.const(2), i32.shl, i32.add, tee(P)),
    ops(get(COLS), i32.const(2), i32.shl, i32.add, set(E), splat(0), set(ACC)),
    stepLoop(64, ops(mag(0), mag(16), i32x4.max_u, mag(32), mag(48), i32x4.max_u, i32x4.max_u, maxInto)),
    stepLoop(16, ops(mag(0), maxInto)),
    tail,
    ops(get(OUT), get(R), i32.const(4), i32.shl, i32.add, get(ACC), v128.store(0)),
    addTo(R, 1),
  );
  return whileBelow(R, ROWS, row);
}

// codes: params 0 x, 1 rows, 2 cols, 3 scales, 4 codes, 5 stats;
// i32 locals 6 r, 7 p, 8 end, 9 d, 10 sbits; v128 locals 11 S, 12 X, 13 T, 14 Y, 15 XD, 16 YD,
// 17 E, 18 AXX, 19 AEE, 20 AXY, 21 AYY, 22 AMAX, 23 AFL.
const [CX, CROWS, CCOLS, CSCALES, CCODES, CSTATS] = [0, 1, 2, 3, 4, 5];
const [R, P, E, D, SB, S, X, T] = [6, 7, 8, 9, 10, 11, 12, 13];
const [Y, XD, YD, EE, AXX, AEE, AXY, AYY, AMAX, AFL] = [14, 15, 16, 17, 18, 19, 20, 21, 22, 23];
const SUMS: ErrorSumLocals = { X, Y, XD, YD, E: EE, AXX, AEE, AXY, AYY, AMAX, AFL };
const CODES_LOCALS: ValType[] = [I32, I32, I32, I32, I32, ...Array<ValType>(13).fill(V128)];

/** Statistics of the four lanes in X (masked input) and Y (fl32(q * s)). */
function statsLanes(): Bytes {
  return errorSumLanes(SUMS);
}

/** 1.5 * 2^23: adding it to |t| <= 2^22 rounds t to an integer, ties to even, in the float32's low bits. */
const MAGIC = 12582912;
const MAGIC_BITS = 0x4b400000;

/**
 * The codes (and statistics) of the 16 elements at p, stored at d; `masked`: lanes at or past `end`
 * read as 0. Per four lanes: t = bf16(bf16(x) / s) clamped to [qmin, qmax] in float (the same as
 * clamping after rounding, the bounds being integers), then t + MAGIC rounds it (RNE): its bits
 * minus MAGIC's are the code, and (t + MAGIC) - MAGIC is the code as a float32, exactly.
 */
function step(qmin: number, qmax: number, withStats: boolean, masked: boolean): Bytes {
  const lanes = (k: number): Bytes =>
    ops(
      get(P),
      v128.load(k * 16),
      masked
        ? ops(get(E), get(P), i32.sub, i32x4.splat, v128.i32x4(16 * k, 16 * k + 4, 16 * k + 8, 16 * k + 12))
        : [],
      masked ? ops(i32x4.gt_s, v128.and) : [],
      tee(X),
      bf16Lanes(T),
      get(S),
      f32x4.div,
      bf16Lanes(T),
      splatF(qmax),
      f32x4.pmin,
      splatF(qmin),
      f32x4.pmax,
      splatF(MAGIC),
      f32x4.add,
      withStats ? ops(tee(T), splatF(MAGIC), f32x4.sub, get(S), f32x4.mul, set(Y), statsLanes(), get(T)) : [],
      splat(MAGIC_BITS),
      i32x4.sub,
    );
  // Codes narrowed as they come: [d, q0, q1] -> [d, q01], then [d, q01, q23] -> [d, bytes].
  return ops(
    get(D),
    lanes(0),
    lanes(1),
    i16x8.narrow_i32x4_s,
    lanes(2),
    lanes(3),
    i16x8.narrow_i32x4_s,
    i8x16.narrow_i16x8_s,
    v128.store(0),
  );
}

function codesBody(qmin: number, qmax: number, withStats: boolean): Bytes {
  const main = ops(
    block(),
    loop(),
    ops(get(P), i32.const(64), i32.add, get(E), i32.gt_u, brIf(1)),
    step(qmin, qmax, withStats, false),
    addTo(P, 64),
    addTo(D, 16),
    br(0),
    END,
    END,
  );
  const tail = ops(get(P), get(E), i32.lt_u, if_(), step(qmin, qmax, withStats, true), END);
  const row = ops(
    ops(get(CSCALES), get(R), i32.const(2), i32.shl, i32.add, i32.load(0), tee(SB)),
    ops(i32.const(0x7f800000), i32.and, i32.const(0x7f800000), i32.ne, if_()),
    ops(get(SB), i32x4.splat, set(S)),
    ops(get(CX), get(R), get(CCOLS), i32.mul, i32.const(2), i32.shl, i32.add, tee(P)),
    ops(get(CCOLS), i32.const(2), i32.shl, i32.add, set(E)),
    ops(get(CCODES), get(R), get(CCOLS), i32.mul, i32.add, set(D)),
    main,
    tail,
    END,
    addTo(R, 1),
  );
  const _store = (k: number, l: number) => ops(get(CSTATS), get(l), v128.store(k * 16));
  return ops(whileBelow(R, CROWS, row), withStats ? storeErrorSums(CSTATS, SUMS) : []);
}

// decode: params 0 codes, 1 rows, 2 cols, 3 bc, 4 tables, 5 out; locals 6 r, 7 p, 8 end, 9 e, 10 tb, 11 d.
/**
 * 8-bit codes to float32 through per-block-column tables: element (r, c) becomes the u32 at
 * `tables + (floor(c / bc) * 256 + code) * 4`, written at `out + (r * cols + c) * 4`. The tables
 * hold fl32(value(code) * s) of each block column, so the result is `decodeBand`'s, bit for bit.
 */
function decodeBody(): Bytes {
  const [CODES, ROWS, COLS, BC, TABLES, OUT, R, P, END_, E, TB, D] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const element = ops(
    ops(get(D), get(TB), get(P), i32.load8_u(0), i32.const(2), i32.shl, i32.add, i32.load(0), i32.store(0)),
    addTo(P, 1),
    addTo(D, 4),
  );
  const blockColumn = ops(
    // e = min(p + bc, rowEnd)
    ops(get(P), get(BC), i32.add, tee(E), get(END_), get(E), get(END_), i32.lt_u, SELECT, set(E)),
    whileBelow(P, E, element),
    ops(get(TB), i32.const(1024), i32.add, set(TB)),
  );
  const row = ops(
    ops(get(CODES), get(R), get(COLS), i32.mul, i32.add, tee(P), get(COLS), i32.add, set(END_)),
    ops(get(OUT), get(R), get(COLS), i32.mul, i32.const(2), i32.shl, i32.add, set(D)),
    ops(get(TABLES), set(TB)),
    whileBelow(P, END_, blockColumn),
    addTo(R, 1),
  );
  return whileBelow(R, ROWS, row);
}

/** The module of one integer width, with its own growable memory exported as `mem`. */
export function intChannelModule(qmin: number, qmax: number): Uint8Array {
  const params = (n: number) => Array<ValType>(n).fill(I32);
  return wasmModule({
    memory: { min: 1, export: "mem" },
    funcs: [
      { params: params(4), locals: [I32, I32, I32, V128], body: amaxBody(), export: "amax" },
      { params: params(6), locals: CODES_LOCALS, body: codesBody(qmin, qmax, false), export: "codes" },
      { params: params(6), locals: CODES_LOCALS, body: codesBody(qmin, qmax, true), export: "codesStats" },
      { params: params(6), locals: params(6), body: decodeBody(), export: "decode" },
    ],
  });
}

interface Exports {
  mem: WebAssembly.Memory;
  amax: (x: number, rows: number, cols: number, out: number) => void;
  codes: (x: number, rows: number, cols: number, scales: number, codes: number, stats: number) => void;
  codesStats: (x: number, rows: number, cols: number, scales: number, codes: number, stats: number) => void;
  decode: (codes: number, rows: number, cols: number, bc: number, tables: number, out: number) => void;
}

/**
 * A band given as 8-bit codes of `br x bc` blocks instead of float32 values: `tables(i)` returns
 * block row i's decode tables, 256 float32 values per block column (fl32(value(code) * s)).
 */
export interface CodeBandSource {
  codes: Uint8Array;
  block: [number, number];
  tables(blockRow: number): Float32Array;
}

/** Elements per chunk: 256 KiB of float32 in, 64 KiB of codes out. */
const CHUNK = 65536;
/** Below this many elements "auto" keeps the TypeScript loop (call and copy overhead). */
const MIN_AUTO = 1024;
/** Bytes after each region for the masked last step. */
const PAD = 64;
const STATS = 0;
const SCALES = 128;

/** Instances per integer width (module state is per thread). */
const instances = new Map<number, Exports | null>();

function instance(qmax: number, qmin: number): Exports | null {
  let k = instances.get(qmax);
  if (k === undefined) {
    try {
      k = hasSimd() ? (instantiate(intChannelModule(qmin, qmax)).exports as unknown as Exports) : null;
    } catch {
      k = null;
    }
    instances.set(qmax, k);
  }
  return k;
}

/**
 * `quantizeRows`' loops in WebAssembly: fills `codes` and `scales` (scales from the rows' float32
 * amax through `scaleOf`, as the TypeScript loop), adds the error sums of finite rows to `stats`
 * (count, xx, ee, xy, yy, maxAbsErr, flushed), and returns the number of rows whose scale is NaN
 * or Inf (their codes stay 0); null (nothing done) where this backend does not apply.
 */
export function quantizeRowsWasm(
  x: Float32Array | CodeBandSource,
  rows: number,
  cols: number,
  qmin: number,
  qmax: number,
  scaleOf: (amax: number) => number,
  codes: Int8Array,
  scales: Float32Array,
  stats: ErrorStats | null,
): number | null {
  const n = rows * cols;
  const src = x instanceof Float32Array ? null : x;
  if (n === 0 || (src ? src.codes.length : (x as Float32Array).length) < n || !preferWasm(n, MIN_AUTO))
    return null;
  const k = instance(qmax, qmin);
  if (k === null) return null;
  // From codes, a chunk stays within one block row (one set of tables).
  const [br, bc] = src ? src.block : [rows, cols];
  const chunkRows = Math.max(1, Math.min(rows, br, Math.floor(CHUNK / cols)));
  const amaxAt = SCALES + chunkRows * 4;
  const xAt = amaxAt + chunkRows * 16;
  const codesAt = xAt + chunkRows * cols * 4 + PAD;
  // From codes: the band's codes and its block row's tables after the output codes.
  const inAt = codesAt + chunkRows * cols + PAD;
  const tablesAt = (inAt + (src ? chunkRows * cols : 0) + 15) & ~15;
  const need = tablesAt + (src ? Math.ceil(cols / bc) * 1024 : 0);
  const have = k.mem.buffer.byteLength;
  if (need > have) k.mem.grow(Math.ceil((need - have) / 65536));
  const buf = k.mem.buffer;
  const memX = new Float32Array(buf, xAt, chunkRows * cols);
  const memCodes = new Int8Array(buf, codesAt, chunkRows * cols);
  const memAmax = new Uint32Array(buf, amaxAt, chunkRows * 4);
  const memScales = new Float32Array(buf, SCALES, chunkRows);
  const f1 = new Float32Array(1);
  const u1 = new Uint32Array(f1.buffer);
  const run = stats === null ? k.codes : k.codesStats;
  let nonFinite = 0;
  const memIn = src ? new Uint8Array(buf, inAt, chunkRows * cols) : null;
  const memTables = src ? new Float32Array(buf, tablesAt, Math.ceil(cols / bc) * 256) : null;
  let tablesOf = -1;
  for (let r0 = 0; r0 < rows; ) {
    const m = Math.min(chunkRows, rows - r0, br - (r0 % br));
    if (src && memIn && memTables) {
      const bi = Math.floor(r0 / br);
      if (bi !== tablesOf) memTables.set(src.tables(bi));
      tablesOf = bi;
      memIn.set(src.codes.subarray(r0 * cols, (r0 + m) * cols));
      k.decode(inAt, m, cols, bc, tablesAt, xAt);
    } else memX.set((x as Float32Array).subarray(r0 * cols, (r0 + m) * cols));
    k.amax(xAt, m, cols, amaxAt);
    for (let r = 0; r < m; r++) {
      const a = memAmax;
      const o = r * 4; // four lanes of magnitude bits: unsigned, NaN above Inf
      u1[0] = Math.max(a[o], a[o + 1], a[o + 2], a[o + 3]);
      const s = scaleOf(f1[0]);
      memScales[r] = s;
      scales[r0 + r] = s;
    }
    run(xAt, m, cols, SCALES, codesAt, STATS);
    codes.set(memCodes.subarray(0, m * cols), r0 * cols);
    let finite = m;
    for (let r = 0; r < m; r++) {
      if (Number.isFinite(memScales[r])) continue;
      finite--;
      codes.fill(0, (r0 + r) * cols, (r0 + r + 1) * cols);
    }
    nonFinite += m - finite;
    if (stats !== null) {
      stats.count += finite * cols;
      addErrorSums(stats, buf, STATS);
    }
    r0 += m;
  }
  return nonFinite;
}
