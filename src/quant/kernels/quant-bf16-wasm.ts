/**
 * The per-element loops of `quantBf16Band` (./fast-quant-bf16.ts: BF16 -> block E4M3 and MX
 * E2M1 with power-of-two scales; its TypeScript loops are the specification and the fallback) in
 * WebAssembly SIMD, emitted at run time through `formats/wasm/asm.ts` (no committed binary). Its
 * exported functions work over a chunk of whole block rows copied into the instance's memory:
 *
 * - `amax(in, rows, cols, bc, out)`: per block column, the eight-lane unsigned max of the BF16
 *   magnitude bits (`bits & 0x7fff`: finite values and Inf order as their bits, every NaN is above
 *   Inf), 16 bytes per block column, accumulated into `out` over the rows (the caller zeroes it);
 *   JS reduces the lanes and reads NaN from bits above Inf, as `bandAmaxBits`/`amaxFromBits` do.
 * - `block(in, out, rows, w, cols, k, hist)`: one block (`rows` rows of `w` elements, row stride
 *   `cols`) at the scale 2^-k, eight elements per step: their E4M3 codes (`codeLanes`), and each
 *   element's BF16 pattern counted in the 65536-bin u32 histogram at `hist`. A row's last partial
 *   step computes eight codes into `SCRATCH` and copies only the ones that exist.
 * - `list(hist, out)`: the patterns whose count is not 0, ascending, as u16 at `out` (four bins per
 *   SIMD test); returns how many.
 * - `finiteMax(in, end)`: the eight-lane unsigned max of the BF16 magnitudes below Inf (0x7f80;
 *   Inf and NaN lanes count as 0) over [in, end), stored at `SCRATCH` (NVFP4's per-tensor amax).
 * - `groups(in, out, rows, cols, bw, j0, j1, plan)`: `block` over the block columns j0..j1 of one
 *   block row, with each column's k and histogram address read from `plan` (i32 pairs; a negative
 *   address skips the column): one call per block row instead of one per block, which is what
 *   MX's 1x32 groups need (a call per 32 elements costs more than their codes).
 * - `groupsE2m1(...)`, `groupsE2m1Ct(...)`: the same with E2M1 codes (`codeLanesE2m1`), one a
 *   byte (the caller packs them), for the blocks the caller gives them: finite, with k <= 124
 *   (and k >= -16 for compressed-tensors' zeros, `groupsE2m1Ct`).
 *
 * An element's code and error depend only on its BF16 pattern and k, so the caller keeps one
 * histogram per k in use (`SLOTS` of them), across blocks, and reduces each once (`sumBlock` in
 * ./fast-quant-bf16.ts, which also counts the NaN/Inf patterns as nonfinite). Each thread has its
 * own instance and memory: the histograms, the pattern list, scratch, the amax lanes, then the
 * input chunk and its codes; memory grows only when a chunk is bigger than any before.
 */

import {
  addTo,
  type Bytes,
  block,
  br,
  brIf,
  call,
  END,
  get,
  hasSimd,
  I32,
  i8x16,
  i16x8,
  i32,
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

/** Histogram slots, one per block scale in use (a band of real weights has a handful of scales). */
export const SLOTS = 8;
const HIST_BYTES = 65536 * 4;
/** The pattern list `list` writes (one spare entry for its branch-free store). */
const LIST = SLOTS * HIST_BYTES;
/** Codes of a row's last partial step. */
const SCRATCH = LIST + 65536 * 2 + 16;
/** Eight u16 amax lanes per block column. */
const AMAX = SCRATCH + 16;
/** Elements per chunk of `finiteMax` (512 KiB of BF16). */
const FINITE_CHUNK = 1 << 18;
/** Bytes after the input and code regions (the last step reads up to 14 bytes past a row). */
const PAD = 32;

/** Eight equal i16 lanes. */
const h16 = (n: number): Bytes => v128.const(new Uint8Array(new Int16Array(8).fill(n).buffer));
/** Lane indices 0..7 as i16 lanes. */
const LANE_INDEX = v128.const(new Uint8Array(new Int16Array([0, 1, 2, 3, 4, 5, 6, 7]).buffer));
/** `2^(e2 - 117)` for e2 = 117..120 (the E4M3 subnormal results), 0 at every other swizzle index. */
const SUB_MULT = v128.const([1, 2, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

// amax: params 0 in, 1 rows, 2 cols, 3 bc, 4 out; i32 locals 5 r, 6 p, 7 rowEnd, 8 e, 9 o; v128 10 acc.
function amaxBody(): Bytes {
  const [IN, ROWS, COLS, BC, OUT, R, P, ROW_END, E, O, ACC] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const mag = (offset: number) => ops(get(P), v128.load(offset), h16(0x7fff), v128.and);
  const stepLoop = (step: number, body: Bytes) => whileStepFits(P, E, step, body);
  const maxInto = ops(get(ACC), i16x8.max_u, set(ACC));
  // The last (e - p) / 2 < 8 elements: lanes at or past e read as 0.
  const tail = ops(
    ops(get(P), get(E), i32.lt_u, if_()),
    mag(0),
    ops(get(E), get(P), i32.sub, i32.const(1), i32.shr_u, i16x8.splat, LANE_INDEX, i16x8.gt_s, v128.and),
    maxInto,
    ops(get(E), set(P), END),
  );
  const segment = ops(
    // e = min(p + 2 * bc, rowEnd)
    ops(
      get(P),
      get(BC),
      i32.const(1),
      i32.shl,
      i32.add,
      tee(E),
      get(ROW_END),
      get(E),
      get(ROW_END),
      i32.lt_u,
    ),
    ops(SELECT, set(E), get(O), v128.load(0), set(ACC)),
    stepLoop(64, ops(mag(0), mag(16), i16x8.max_u, mag(32), mag(48), i16x8.max_u, i16x8.max_u, maxInto)),
    stepLoop(16, ops(mag(0), maxInto)),
    tail,
    ops(get(O), get(ACC), v128.store(0), addTo(O, 16)),
  );
  const row = ops(
    ops(get(IN), get(R), get(COLS), i32.mul, i32.const(1), i32.shl, i32.add, tee(P)),
    ops(get(COLS), i32.const(1), i32.shl, i32.add, set(ROW_END), get(OUT), set(O)),
    whileBelow(P, ROW_END, segment),
    addTo(R, 1),
  );
  return whileBelow(R, ROWS, row);
}

// block: params 0 in, 1 out, 2 rows, 3 w, 4 cols, 5 k, 6 hist; i32 locals 7 r, 8 p, 9 e, 10 d,
// 11 t, 12 sp; v128 locals 13 X, 14 MAG, 15 NM, 16 SM, 17 Q, 18 CODE, 19 KC, 20 TH, 21 TH2, then
// the constants.
const [B_IN, B_OUT, B_ROWS, B_W, B_COLS, B_K, B_HIST] = [0, 1, 2, 3, 4, 5, 6];
const [R, P, E, D, T, SP] = [7, 8, 9, 10, 11, 12];
const [X, MAG, NM, SM, Q, CODE, KC, TH, TH2] = [13, 14, 15, 16, 17, 18, 19, 20, 21];
/** i16 constants of the element loop, held in v128 locals (set once per call, not per step). */
const CONSTS = [0x7fff, 1, 0x7e, 0x7f80, 0x80];
const [C_MAG, C_ONE, C_MAX, C_INF, C_80] = [22, 23, 24, 25, 26];
/** E2M1's block keeps k - 124 where E4M3's keeps the Inf pattern (which it does not need). */
const C_KS = C_INF;
const BLOCK_LOCALS: ValType[] = [
  ...Array<ValType>(6).fill(I32),
  ...Array<ValType>(9 + CONSTS.length).fill(V128),
];

/**
 * The E4M3 codes of the eight BF16 codes in X at the scale 2^-k (i16 lanes, left on the stack), the
 * same as the TypeScript loop's `T[(v & 0x807f) | (e2 << 7)]` with its flush and NaN/Inf branches
 * for every exponent e2 = e + k up to 254 (a block's elements are at most its amax, so e2 <= 136).
 * The per-call i16 splats are KC = (k << 7) + 7 - (120 << 7), TH = max((121 - k) * 128 - 1, 127)
 * and TH2 = max((117 - k) * 128 - 1, 127):
 * - normal results (e2 >= 121, i.e. |v| > TH): |v| + (k << 7) is the shifted BF16 magnitude;
 *   adding 7 plus its kept lsb (bit 4, which the shift leaves alone) and shifting by 4 rounds its
 *   7 mantissa bits to 3 (RNE, the carry into the exponent being the IEEE rounding); minus the
 *   rebias 120 << 3 (folded into KC: the sum stays positive in these lanes), capped at 0x7e (448,
 *   saturation);
 * - subnormal results (e2 = 117..120: TH2 < |v| <= TH; rare, so behind a branch): the
 *   significand 0x80 | mantissa times 2^(e2 - 117) (a swizzle on e2) is the value in units of
 *   2^-17, and RNE(q / 256) its code 0..8;
 * - every other finite lane is 0: |x| * 2^k <= 2^-10 rounds to 0, and with TH, TH2 >= 127, BF16
 *   zeros and subnormals (e = 0) give 0 whatever k is, as the table's flush branch;
 * - Inf 0x7e and NaN 0x7f, as the table at scale 1; then the sign bit.
 */
function codeLanes(): Bytes {
  const normal = ops(
    ops(get(MAG), get(MAG), i32.const(4), i16x8.shr_u, get(C_ONE), v128.and, i16x8.add, get(KC), i16x8.add),
    ops(i32.const(4), i16x8.shr_u, get(C_MAX), i16x8.min_u),
    ops(get(MAG), get(TH), i16x8.gt_s, tee(NM), v128.and, set(CODE)),
  );
  const subnormal = ops(
    ops(get(MAG), get(TH2), i16x8.gt_s, get(NM), v128.andnot, tee(SM), v128.any_true, if_()),
    SUB_MULT,
    ops(get(MAG), i32.const(7), i16x8.shr_u, get(B_K), i16x8.splat, i16x8.add, h16(117), i16x8.sub),
    ops(h16(-256), v128.or, v128.swizzle),
    ops(get(MAG), h16(0x7f), v128.and, get(C_80), v128.or, i16x8.mul, tee(Q)),
    ops(get(Q), i32.const(8), i16x8.shr_u, get(C_ONE), v128.and, i16x8.add, h16(127), i16x8.add),
    ops(i32.const(8), i16x8.shr_u, get(CODE), get(SM), v128.bitselect, set(CODE)),
    END,
  );
  return ops(
    ops(get(X), get(C_MAG), v128.and, set(MAG)),
    normal,
    subnormal,
    // NaN/Inf: 0x7e + (NaN ? 1 : 0) where the magnitude is at or above the Inf pattern
    ops(get(CODE), get(C_MAX), get(MAG), get(C_INF), i16x8.gt_s, i16x8.sub),
    ops(get(MAG), get(C_INF), i16x8.lt_s, v128.bitselect),
    ops(get(X), i32.const(8), i16x8.shr_u, get(C_80), v128.and, v128.or),
  );
}

/**
 * The E2M1 codes of the eight BF16 codes in X at the scale 2^-k (i16 lanes, left on the stack), as
 * the TypeScript loop's table gives them, for finite lanes of a block whose scale leaves BF16
 * subnormals below 0.25 (k <= 124; the caller keeps other blocks, and those holding a NaN or Inf,
 * for the TypeScript loop). Per call KC = (k << 7) + 31 - (252 << 6), C_MAX = 7, TH =
 * ((127 - k) << 7) - 1, TH2 = ((125 - k) << 7) - 1 (both >= 127) and KS = k - 124:
 * - normal results (e2 >= 127, q >= 1: |v| > TH): |v| + (k << 7) is the shifted BF16 magnitude;
 *   adding 31 plus its kept lsb (bit 6) and shifting by 6 rounds its 7 mantissa bits to 1 (RNE),
 *   leaving (e2 << 1 | m); minus 252 (folded into KC) is the code, capped at 7 (6.0: saturation);
 * - e2 = 125, 126 (0.25 <= q < 1, E2M1's subnormal step 0.5: TH2 < |v| <= TH): q * 2 is
 *   (0x80 | mantissa) * (e2 - 124) / 256, and RNE of that its code 0..2;
 * - every other lane is 0 (q < 0.25, BF16 zeros and subnormals included); then the sign bit,
 *   except (`ct`, compressed-tensors' cast) on -0: its scaled -0.0 is +0. (Only -0 scales to -0.0
 *   when k >= -16; the caller keeps blocks of lower k for the TypeScript loop under that rule.)
 */
function codeLanesE2m1(ct: boolean): Bytes {
  const normal = ops(
    ops(get(MAG), get(MAG), i32.const(6), i16x8.shr_u, get(C_ONE), v128.and, i16x8.add, get(KC), i16x8.add),
    ops(i32.const(6), i16x8.shr_u, get(C_MAX), i16x8.min_u),
    ops(get(MAG), get(TH), i16x8.gt_s, tee(NM), v128.and, set(CODE)),
  );
  // A quarter or more of real weights land here: no branch.
  const subnormal = ops(
    ops(get(MAG), get(TH2), i16x8.gt_s, get(NM), v128.andnot, set(SM)),
    ops(get(MAG), h16(0x7f), v128.and, get(C_80), v128.or),
    ops(get(MAG), i32.const(7), i16x8.shr_u, get(C_KS), i16x8.add, i16x8.mul, tee(Q)),
    ops(get(Q), i32.const(8), i16x8.shr_u, get(C_ONE), v128.and, i16x8.add, h16(127), i16x8.add),
    ops(i32.const(8), i16x8.shr_u, get(SM), v128.and, get(CODE), v128.or),
  );
  return ops(
    ops(get(X), get(C_MAG), v128.and, set(MAG)),
    normal,
    subnormal,
    ops(get(X), i32.const(12), i16x8.shr_u, h16(8), v128.and),
    ct ? ops(get(MAG), h16(0), i16x8.gt_s, v128.and) : ops(),
    v128.or,
  );
}

/** Counts the pattern at p + offset in the histogram. */
function countAt(offset: number): Bytes {
  return ops(
    ops(get(P), i32.load16_u(offset), i32.const(2), i32.shl, get(B_HIST), i32.add, tee(T)),
    ops(get(T), i32.load(0), i32.const(1), i32.add, i32.store(0)),
  );
}

/** The element codes a `block` function computes (`BLOCK_FN` is its function index). */
export type BlockCodes = "e4m3" | "e2m1" | "e2m1-ct";
const BLOCK_FN: Readonly<Record<BlockCodes, number>> = { e4m3: 1, e2m1: 5, "e2m1-ct": 7 };

/** `block` for E4M3 codes, or E2M1 codes (compressed-tensors' zeros for `e2m1-ct`), one a byte. */
function blockBody(element: BlockCodes): Bytes {
  const fp4 = element !== "e4m3";
  const lanes = fp4 ? codeLanesE2m1(element === "e2m1-ct") : codeLanes();
  const codes = ops(lanes, tee(CODE), get(CODE), i8x16.narrow_i16x8_u);
  const step = ops(
    ops(get(D), get(P), v128.load(0), set(X), codes, v128.store64_lane(0, 0)),
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((j) => countAt(2 * j)),
    addTo(P, 16),
    addTo(D, 8),
  );
  const main = ops(
    block(),
    loop(),
    ops(get(P), i32.const(16), i32.add, get(E), i32.gt_u, brIf(1)),
    step,
    br(0),
    END,
    END,
  );
  // The row's last w % 8 elements: eight codes into SCRATCH, the ones that exist copied out.
  const tail = ops(
    ops(get(P), get(E), i32.lt_u, if_()),
    ops(i32.const(SCRATCH), get(P), v128.load(0), set(X), codes, v128.store(0), i32.const(SCRATCH), set(SP)),
    whileBelow(
      P,
      E,
      ops(get(D), get(SP), i32.load8_u(0), i32.store8(0), countAt(0), addTo(P, 2), addTo(D, 1), addTo(SP, 1)),
    ),
    END,
  );
  const row = ops(
    ops(get(B_IN), get(R), get(B_COLS), i32.mul, i32.const(1), i32.shl, i32.add, tee(P)),
    ops(get(B_W), i32.const(1), i32.shl, i32.add, set(E)),
    ops(get(B_OUT), get(R), get(B_COLS), i32.mul, i32.add, set(D)),
    main,
    tail,
    addTo(R, 1),
  );
  /** max(((base - k) << 7) - 1, 127), splat. */
  const threshold = (base: number) =>
    ops(
      ops(i32.const(base), get(B_K), i32.sub, i32.const(7), i32.shl, i32.const(1), i32.sub, tee(T)),
      ops(i32.const(127), get(T), i32.const(127), i32.gt_s, SELECT, i16x8.splat),
    );
  if (fp4)
    return ops(
      ...CONSTS.map((c, i) => ops(h16(c), set(C_MAG + i))),
      ops(h16(7), set(C_MAX), get(B_K), i32.const(124), i32.sub, i16x8.splat, set(C_KS)),
      ops(get(B_K), i32.const(7), i32.shl, i32.const(31 - (252 << 6)), i32.add, i16x8.splat, set(KC)),
      ops(threshold(127), set(TH), threshold(125), set(TH2)),
      whileBelow(R, B_ROWS, row),
    );
  return ops(
    ...CONSTS.map((c, i) => ops(h16(c), set(C_MAG + i))),
    ops(get(B_K), i32.const(7), i32.shl, i32.const(7 - (120 << 7)), i32.add, i16x8.splat, set(KC)),
    ops(threshold(121), set(TH), threshold(117), set(TH2)),
    whileBelow(R, B_ROWS, row),
  );
}

/** `list(hist, out)`: params 0 hist, 1 out; i32 locals 2 p, 3 o, 4 i (pattern of the bin at p). */
function listBody(): Bytes {
  const [HIST, OUT, LP, LO, LI] = [0, 1, 2, 3, 4];
  const bin = (j: number) =>
    ops(
      ops(get(LO), get(LI), i32.const(j), i32.add, i32.store16(0)),
      ops(get(LO), get(LP), i32.load(4 * j), i32.const(0), i32.ne, i32.const(1), i32.shl, i32.add, set(LO)),
    );
  const step = ops(
    ops(get(LP), v128.load(0), v128.any_true, if_(), bin(0), bin(1), bin(2), bin(3), END),
    addTo(LP, 16),
    addTo(LI, 4),
  );
  return ops(
    ops(get(HIST), set(LP), get(OUT), set(LO)),
    block(),
    loop(),
    ops(get(LI), i32.const(65536), i32.ge_u, brIf(1)),
    step,
    br(0),
    END,
    END,
    ops(get(LO), get(OUT), i32.sub, i32.const(1), i32.shr_u),
  );
}

/**
 * `groups`: params 0 in, 1 out, 2 rows, 3 cols, 4 bw, 5 j (from j0), 6 j1, 7 plan; i32 locals 8 p,
 * 9 w, 10 c0. Calls the `block` of `BLOCK_FN` (function `blockFn`) for each planned column.
 */
function groupsBody(blockFn: number): Bytes {
  const [G_IN, G_OUT, G_ROWS, G_COLS, G_BW, G_J, G_J1, G_PLAN, G_P, G_W, G_C0] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
  ];
  const column = ops(
    ops(get(G_J), get(G_BW), i32.mul, tee(G_C0)),
    // w = min(bw, cols - c0)
    ops(get(G_COLS), get(G_C0), i32.sub, set(G_W)),
    ops(get(G_BW), get(G_W), get(G_BW), get(G_W), i32.lt_s, SELECT, set(G_W)),
    ops(get(G_P), i32.load(4), i32.const(0), i32.ge_s, if_()),
    ops(get(G_IN), get(G_C0), i32.const(1), i32.shl, i32.add, get(G_OUT), get(G_C0), i32.add),
    ops(get(G_ROWS), get(G_W), get(G_COLS), get(G_P), i32.load(0), get(G_P), i32.load(4), call(blockFn)),
    END,
    addTo(G_P, 8),
    addTo(G_J, 1),
  );
  return ops(
    ops(get(G_PLAN), get(G_J), i32.const(3), i32.shl, i32.add, set(G_P)),
    whileBelow(G_J, G_J1, column),
  );
}

/** `finiteMax`: params 0 p (from in), 1 end; v128 locals 2 acc, 3 m. */
function finiteMaxBody(): Bytes {
  const [FP, FEND, ACC, M] = [0, 1, 2, 3];
  return ops(
    whileBelow(
      FP,
      FEND,
      ops(
        ops(get(FP), v128.load(0), h16(0x7fff), v128.and, set(M)),
        ops(get(ACC), get(M), get(M), h16(0x7f80), i16x8.lt_s, v128.and, i16x8.max_u, set(ACC)),
        addTo(FP, 16),
      ),
    ),
    ops(i32.const(SCRATCH), get(ACC), v128.store(0)),
  );
}

export function quantBf16Module(): Uint8Array {
  return wasmModule({
    memory: { min: 1, export: "mem" },
    funcs: [
      {
        params: Array<ValType>(5).fill(I32),
        locals: [I32, I32, I32, I32, I32, V128],
        body: amaxBody(),
        export: "amax",
      },
      { params: Array<ValType>(7).fill(I32), locals: BLOCK_LOCALS, body: blockBody("e4m3"), export: "block" },
      { params: [I32, I32], results: [I32], locals: [I32, I32, I32], body: listBody(), export: "list" },
      {
        params: Array<ValType>(8).fill(I32),
        locals: [I32, I32, I32],
        body: groupsBody(BLOCK_FN.e4m3),
        export: "groups",
      },
      { params: [I32, I32], locals: [V128, V128], body: finiteMaxBody(), export: "finiteMax" },
      // 5, 6: E2M1; 7, 8: E2M1 with compressed-tensors' zeros (`BLOCK_FN`)
      { params: Array<ValType>(7).fill(I32), locals: BLOCK_LOCALS, body: blockBody("e2m1") },
      {
        params: Array<ValType>(8).fill(I32),
        locals: [I32, I32, I32],
        body: groupsBody(BLOCK_FN.e2m1),
        export: "groupsE2m1",
      },
      { params: Array<ValType>(7).fill(I32), locals: BLOCK_LOCALS, body: blockBody("e2m1-ct") },
      {
        params: Array<ValType>(8).fill(I32),
        locals: [I32, I32, I32],
        body: groupsBody(BLOCK_FN["e2m1-ct"]),
        export: "groupsE2m1Ct",
      },
    ],
  });
}

interface Exports {
  mem: WebAssembly.Memory;
  amax: (input: number, rows: number, cols: number, bc: number, out: number) => void;
  block: (input: number, out: number, rows: number, w: number, cols: number, k: number, hist: number) => void;
  list: (hist: number, out: number) => number;
  finiteMax: (input: number, end: number) => void;
  groups: GroupsFn;
  groupsE2m1: GroupsFn;
  groupsE2m1Ct: GroupsFn;
}

type GroupsFn = (
  input: number,
  out: number,
  rows: number,
  cols: number,
  bw: number,
  j0: number,
  j1: number,
  plan: number,
) => void;

/** A histogram's reduction: the scale exponent k, the counts, the patterns with a count, how many. */
export type Reduce = (k: number, hist: Int32Array, list: Uint16Array, n: number) => void;

/**
 * One thread's kernel: its instance, memory and views. `reserve` sizes the memory for a chunk,
 * `load` copies the chunk's BF16 bytes in, `amax` and `block` run the loops, `store` copies the
 * chunk's codes out. The code histograms live in slots, one per scale exponent k: `open` gives the
 * slot of a k (reducing the least recently opened one first when all are taken), `drain` reduces
 * every slot in use. A reduction must zero the counts of the patterns it is given (all the
 * non-zero ones), which leaves the histogram zero for its next k.
 */
export class QuantBf16Kernel {
  private planAt = 0;
  private planView = new Int32Array(0);
  private inAt = 0;
  private outAt = 0;
  private elems = -1;
  private blockCols = -1;
  private lanes = new Uint16Array(0);
  private list = new Uint16Array(0);
  private readonly hists: Int32Array[] = [];
  /** Per slot: its k (NaN: free), and when it was last opened (0: free, so taken first). */
  private readonly slotK = new Array<number>(SLOTS).fill(Number.NaN);
  private readonly slotTick = new Array<number>(SLOTS).fill(0);
  private tick = 0;
  private last = 0;

  private constructor(private readonly k: Exports) {
    this.reserve(0, 0);
  }

  /**
   * Lays the memory out for chunks of up to `elems` elements and `sc` block columns, growing it if
   * needed (views are refreshed, since growing detaches the old buffer).
   */
  reserve(elems: number, sc: number): void {
    if (elems <= this.elems && sc <= this.blockCols) return;
    this.elems = Math.max(elems, this.elems);
    this.blockCols = Math.max(sc, this.blockCols);
    this.planAt = AMAX + this.blockCols * 16;
    this.inAt = this.planAt + ((this.blockCols * 8 + 15) & ~15);
    this.outAt = this.inAt + ((this.elems * 2 + PAD + 15) & ~15);
    const need = this.outAt + this.elems + PAD;
    const have = this.k.mem.buffer.byteLength;
    if (need > have) this.k.mem.grow(Math.ceil((need - have) / 65536));
    const buf = this.k.mem.buffer;
    for (let i = 0; i < SLOTS; i++) this.hists[i] = new Int32Array(buf, i * HIST_BYTES, 65536);
    this.list = new Uint16Array(buf, LIST, 65537);
    this.lanes = new Uint16Array(buf, AMAX, this.blockCols * 8);
    this.planView = new Int32Array(buf, this.planAt, this.blockCols * 2);
  }

  /** Copies `bytes` (BF16 codes, any byte offset) to the start of the input region. */
  load(bytes: Uint8Array): void {
    new Uint8Array(this.k.mem.buffer, this.inAt, bytes.length).set(bytes);
  }

  /**
   * Per block column j of rows [r0, r1) of the loaded chunk, the magnitude bits of its amax into
   * `out[j]` (above 0x7f80: a NaN).
   */
  amax(r0: number, r1: number, cols: number, bc: number, out: Uint32Array): void {
    const sc = Math.ceil(cols / bc);
    const lanes = this.lanes;
    lanes.fill(0, 0, sc * 8);
    this.k.amax(this.inAt + r0 * cols * 2, r1 - r0, cols, bc, AMAX);
    for (let j = 0, o = 0; j < sc; j++, o += 8)
      out[j] = Math.max(
        lanes[o],
        lanes[o + 1],
        lanes[o + 2],
        lanes[o + 3],
        lanes[o + 4],
        lanes[o + 5],
        lanes[o + 6],
        lanes[o + 7],
      );
  }

  /** Hands slot `i`'s histogram to `reduce` and frees the slot. */
  private reduceSlot(i: number, reduce: Reduce): void {
    const n = this.k.list(i * HIST_BYTES, LIST);
    reduce(this.slotK[i], this.hists[i], this.list, n);
    this.slotK[i] = Number.NaN;
    this.slotTick[i] = 0;
  }

  /**
   * The slot counting the codes of scale exponent `k` (|k| <= 127): the one already open for it,
   * else a free one, else the least recently opened, reduced first (after `beforeReduce`, which
   * runs the planned blocks that still count into it).
   */
  open(k: number, reduce: Reduce, beforeReduce?: () => void): number {
    // Neighbouring blocks mostly share a scale: the slot opened last first.
    if (this.slotK[this.last] === k) {
      this.slotTick[this.last] = ++this.tick;
      return this.last;
    }
    let slot = 0;
    for (let i = 0; i < SLOTS; i++) {
      if (this.slotK[i] === k) {
        slot = i;
        break;
      }
      if (this.slotTick[i] < this.slotTick[slot]) slot = i;
    }
    if (this.slotK[slot] !== k) {
      if (!Number.isNaN(this.slotK[slot])) {
        beforeReduce?.();
        this.reduceSlot(slot, reduce);
      }
      this.slotK[slot] = k;
    }
    this.slotTick[slot] = ++this.tick;
    this.last = slot;
    return slot;
  }

  /** Codes of rows [r0, r1) x columns [c0, c1) of the loaded chunk at the scale of `slot`, counted in its histogram. */
  block(r0: number, r1: number, c0: number, c1: number, cols: number, slot: number): void {
    const at = r0 * cols + c0;
    this.k.block(
      this.inAt + at * 2,
      this.outAt + at,
      r1 - r0,
      c1 - c0,
      cols,
      this.slotK[slot],
      slot * HIST_BYTES,
    );
  }

  /**
   * Plans block column j of the next `groups` call: its codes at the scale of `slot`, counted in its
   * histogram; a negative slot skips the column.
   */
  plan(j: number, slot: number): void {
    this.planView[2 * j] = slot < 0 ? 0 : this.slotK[slot];
    this.planView[2 * j + 1] = slot < 0 ? -1 : slot * HIST_BYTES;
  }

  /**
   * `block` over the planned block columns j0..j1 (blocks `bw` wide) of rows [r0, r1) of the loaded
   * chunk, E4M3 codes or E2M1 codes (`codeLanesE2m1`: finite blocks with k <= 124, and k >= -16
   * for `e2m1-ct`), one a byte. A slot a plan names must not be reduced before the call (`open`'s
   * `beforeReduce`).
   */
  groups(
    r0: number,
    r1: number,
    cols: number,
    bw: number,
    j0: number,
    j1: number,
    element: BlockCodes = "e4m3",
  ): void {
    if (j1 <= j0) return;
    const at = r0 * cols;
    const fn =
      element === "e4m3" ? this.k.groups : element === "e2m1" ? this.k.groupsE2m1 : this.k.groupsE2m1Ct;
    fn(this.inAt + at * 2, this.outAt + at, r1 - r0, cols, bw, j0, j1, this.planAt);
  }

  /**
   * The largest BF16 magnitude bits below Inf among `bytes` (BF16 codes, any byte offset), or `m`
   * if larger: NaN and Inf are left out. Streams through the input region in chunks.
   */
  finiteMax(bytes: Uint8Array, m: number): number {
    if (this.elems < FINITE_CHUNK) this.reserve(FINITE_CHUNK, 0);
    const step = this.elems * 2;
    const lanes = new Uint16Array(this.k.mem.buffer, SCRATCH, 8);
    let best = m;
    for (let at = 0; at < bytes.length; at += step) {
      const piece = bytes.subarray(at, Math.min(bytes.length, at + step));
      const whole = piece.length & ~15;
      this.load(piece.subarray(0, whole));
      this.k.finiteMax(this.inAt, this.inAt + whole);
      for (let i = 0; i < 8; i++) if (lanes[i] > best) best = lanes[i];
      for (let i = whole; i + 1 < piece.length; i += 2) {
        const a = (piece[i] | (piece[i + 1] << 8)) & 0x7fff;
        if (a < 0x7f80 && a > best) best = a;
      }
    }
    return best;
  }

  /** Reduces every open slot, in slot order, and frees it. */
  drain(reduce: Reduce): void {
    for (let i = 0; i < SLOTS; i++) if (!Number.isNaN(this.slotK[i])) this.reduceSlot(i, reduce);
  }

  /** Zeroes and frees the slots a band left open (it threw before `drain`). */
  clear(): void {
    for (let i = 0; i < SLOTS; i++)
      if (!Number.isNaN(this.slotK[i])) {
        this.hists[i].fill(0);
        this.slotK[i] = Number.NaN;
        this.slotTick[i] = 0;
      }
  }

  /** Copies the first `n` codes of the chunk to `out[at..]`. */
  store(out: Uint8Array, at: number, n: number): void {
    out.set(new Uint8Array(this.k.mem.buffer, this.outAt, n), at);
  }

  private static instance: QuantBf16Kernel | null | undefined;

  /** This thread's kernel, or null where WebAssembly SIMD is unavailable or instantiation fails. */
  static get(): QuantBf16Kernel | null {
    if (QuantBf16Kernel.instance === undefined) {
      try {
        QuantBf16Kernel.instance = hasSimd()
          ? new QuantBf16Kernel(instantiate(quantBf16Module()).exports as unknown as Exports)
          : null;
      } catch {
        QuantBf16Kernel.instance = null;
      }
    }
    return QuantBf16Kernel.instance;
  }
}
