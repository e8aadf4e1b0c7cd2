/**
 * The element loops of the two code-table band kernels of convert in WebAssembly, emitted at run
 * time through `formats/wasm/asm.ts` (no committed binary):
 *
 * - `dequantRowsWasm`, the loop of `dequantBand` (./fast-dequant.ts): per element one lookup in its
 *   block column's 256-entry output table (u16 for BF16/F16, f32 bits for F32), one store and one
 *   histogram increment. The tables are built and the statistics reduced from the histograms by
 *   the TypeScript kernel, as without WebAssembly, so they stay bit-identical.
 * - `mapRowsWasm`, the lookup pass of `requantBand` (./fast-requant.ts): per element one u8 -> u8
 *   lookup in its block column's code map.
 *
 * Both read codes four bytes per load (any alignment; a block's last 1-3 codes one at a time).
 * Histogram bins are interleaved four ways, as in ./code-histogram-wasm.ts: byte k of each word
 * goes to sub-bin k, so repeated codes do not wait on the previous increment of the same address;
 * JS adds the sub-bins up. The TypeScript loops stay the specification and the fallback
 * (`preferWasm(n, MIN_AUTO)`, or WebAssembly missing or failing to instantiate).
 *
 * One instance and memory per thread, laid out per call from 0: histogram sub-bins, tables (or
 * maps), then a chunk of codes and its output. Rows stream through in chunks of about `CHUNK`
 * elements (L2-sized), whole rows where a row fits, else pieces of one row, so memory grows only
 * for block rows with many block columns, never with the band.
 */

import {
  addTo,
  type Bytes,
  block,
  br,
  brIf,
  END,
  get,
  I32,
  i32,
  instantiate,
  loop,
  ops,
  SELECT,
  set,
  tee,
  wasmModule,
  whileBelow,
} from "../../formats/wasm/asm.js";
import { preferWasm } from "../../formats/wasm/kernel-backend.js";

const c32 = i32.const;

/** `while (local + step <= limit) { body }` on unsigned i32 locals. */
const whileRoom = (local: number, step: number, limit: number, body: Bytes): Bytes =>
  ops(block(), loop(), get(local), c32(step), i32.add, get(limit), i32.gt_u, brIf(1), body, br(0), END, END);

/** Byte k (0-3, little-endian) of the i32 local `w`. */
function byteOf(w: number, k: number): Bytes {
  if (k === 0) return ops(get(w), c32(255), i32.and);
  if (k === 3) return ops(get(w), c32(24), i32.shr_u);
  return ops(get(w), c32(k * 8), i32.shr_u, c32(255), i32.and);
}

/** `hist[hb + code * 16 + k * 4] += 1` for the code in local `b` (sub-bin k). */
const increment = (hb: number, b: number, a: number, k: number): Bytes =>
  ops(
    get(hb),
    get(b),
    c32(4),
    i32.shl,
    i32.add,
    tee(a),
    get(a),
    i32.load(k * 4),
    c32(1),
    i32.add,
    i32.store(k * 4),
  );

/**
 * The row walk shared by both functions. Params 0 codes, 1 rows, 2 width, 3 first, 4 bc, then the
 * function's own; row r's codes are at `codes + r * width`; a row's first block column ends
 * `first` codes in, the next ones every `bc`. `rowStart` sets the per-row locals after `p`,
 * `block(e)` handles the codes [p, e) of one block column and advances p, `nextBlock` moves the
 * per-column bases on.
 */
const [CODES, ROWS, WIDTH, FIRST, BC] = [0, 1, 2, 3, 4];
function rows(
  L: { r: number; p: number; end: number; e: number; len: number },
  rowStart: Bytes,
  blk: Bytes,
  nextBlock: Bytes,
): Bytes {
  const blockEnd = ops(
    // e = min(p + len, rowEnd); len = bc
    ops(
      get(L.p),
      get(L.len),
      i32.add,
      tee(L.e),
      get(L.end),
      get(L.e),
      get(L.end),
      i32.lt_u,
      SELECT,
      set(L.e),
    ),
    ops(get(BC), set(L.len)),
  );
  const row = ops(
    ops(get(CODES), get(L.r), get(WIDTH), i32.mul, i32.add, tee(L.p), get(WIDTH), i32.add, set(L.end)),
    ops(get(FIRST), set(L.len)),
    rowStart,
    whileBelow(L.p, L.end, ops(blockEnd, blk, nextBlock)),
    addTo(L.r, 1),
  );
  return ops(c32(0), set(L.r), whileBelow(L.r, ROWS, row));
}

/**
 * dequant (esz 2 or 4): params 0 codes, 1 rows, 2 width, 3 first, 4 bc, 5 out, 6 tables, 7 hist;
 * locals 8 r, 9 p, 10 rowEnd, 11 e, 12 len, 13 d, 14 tb, 15 hb, 16 w, 17-20 b0..b3, 21 a.
 * Output row r at `out + r * width * esz`; block column j's table at `tables + j * 256 * esz`, its
 * sub-bins at `hist + j * 4096`.
 */
function dequantBody(esz: 2 | 4): Bytes {
  const [OUT, TABLES, HIST, R, P, END_, E, LEN, D, TB, HB, W, B0, A] = [
    5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 21,
  ];
  const lg = esz === 2 ? 1 : 2;
  const entry = (b: number): Bytes =>
    ops(get(TB), get(b), c32(lg), i32.shl, i32.add, esz === 2 ? i32.load16_u(0) : i32.load(0));
  const byte = (k: number) => ops(byteOf(W, k), set(B0 + k));
  const outputs =
    esz === 2
      ? ops(
          ops(get(D), entry(B0), entry(B0 + 1), c32(16), i32.shl, i32.or, i32.store(0)),
          ops(get(D), entry(B0 + 2), entry(B0 + 3), c32(16), i32.shl, i32.or, i32.store(4)),
        )
      : ops(
          ops(get(D), entry(B0), i32.store(0), get(D), entry(B0 + 1), i32.store(4)),
          ops(get(D), entry(B0 + 2), i32.store(8), get(D), entry(B0 + 3), i32.store(12)),
        );
  const four = ops(
    ops(get(P), i32.load(0), set(W), byte(0), byte(1), byte(2), byte(3)),
    outputs,
    increment(HB, B0, A, 0),
    increment(HB, B0 + 1, A, 1),
    increment(HB, B0 + 2, A, 2),
    increment(HB, B0 + 3, A, 3),
    addTo(P, 4),
    addTo(D, 4 * esz),
  );
  const one = ops(
    ops(get(P), i32.load8_u(0), set(B0)),
    ops(get(D), entry(B0), esz === 2 ? i32.store16(0) : i32.store(0)),
    increment(HB, B0, A, 0),
    addTo(P, 1),
    addTo(D, esz),
  );
  const L = { r: R, p: P, end: END_, e: E, len: LEN };
  return rows(
    L,
    ops(
      ops(get(OUT), get(R), get(WIDTH), i32.mul, c32(lg), i32.shl, i32.add, set(D)),
      ops(get(TABLES), set(TB), get(HIST), set(HB)),
    ),
    ops(whileRoom(P, 4, E, four), whileBelow(P, E, one)),
    ops(addTo(TB, 256 * esz), addTo(HB, 4096)),
  );
}

/**
 * map (in place): params 0 codes, 1 rows, 2 width, 3 first, 4 bc, 5 maps; locals 6 r, 7 p,
 * 8 rowEnd, 9 e, 10 len, 11 mb, 12 w. Block column j's map at `maps + j * 256`.
 */
function mapBody(): Bytes {
  const [MAPS, R, P, END_, E, LEN, MB, W] = [5, 6, 7, 8, 9, 10, 11, 12];
  const look = (b: Bytes): Bytes => ops(get(MB), b, i32.add, i32.load8_u(0));
  const four = ops(
    ops(get(P), get(P), i32.load(0), set(W)),
    look(byteOf(W, 0)),
    ops(look(byteOf(W, 1)), c32(8), i32.shl, i32.or),
    ops(look(byteOf(W, 2)), c32(16), i32.shl, i32.or),
    ops(look(byteOf(W, 3)), c32(24), i32.shl, i32.or),
    i32.store(0),
    addTo(P, 4),
  );
  const one = ops(get(P), look(ops(get(P), i32.load8_u(0))), i32.store8(0), addTo(P, 1));
  const L = { r: R, p: P, end: END_, e: E, len: LEN };
  return rows(
    L,
    ops(get(MAPS), set(MB)),
    ops(whileRoom(P, 4, E, four), whileBelow(P, E, one)),
    addTo(MB, 256),
  );
}

/** The module: `deq16`, `deq32` and `map`, with its own growable memory exported as `mem`. */
export function codeMapModule(): Uint8Array {
  const p = (n: number) => Array<typeof I32>(n).fill(I32);
  return wasmModule({
    memory: { min: 1, export: "mem" },
    funcs: [
      { params: p(8), locals: p(14), body: dequantBody(2), export: "deq16" },
      { params: p(8), locals: p(14), body: dequantBody(4), export: "deq32" },
      { params: p(6), locals: p(7), body: mapBody(), export: "map" },
    ],
  });
}

type Walk = (codes: number, rows: number, width: number, first: number, bc: number) => void;
interface Exports {
  mem: WebAssembly.Memory;
  deq16: (...a: [...Parameters<Walk>, out: number, tables: number, hist: number]) => void;
  deq32: Exports["deq16"];
  map: (...a: [...Parameters<Walk>, maps: number]) => void;
}

/** Elements per chunk of codes (64 KiB in, up to 256 KiB out). */
const CHUNK = 65536;
/** Below this many elements in a band "auto" keeps the TypeScript loops (call and copy overhead). */
const MIN_AUTO = 4096;

let kernel: Exports | null | undefined;

function instance(): Exports | null {
  if (kernel === undefined) {
    try {
      kernel =
        typeof WebAssembly === "object" ? (instantiate(codeMapModule()).exports as unknown as Exports) : null;
    } catch {
      kernel = null;
    }
  }
  return kernel;
}

/**
 * Below this many elements per block (in the band) "auto" keeps the TypeScript loops: building the
 * 256-entry tables then costs more than the element loop, and clearing and adding up the sub-bins
 * makes the WebAssembly path slower (1x32 blocks: 0.8x).
 */
const MIN_BLOCK = 1024;

/**
 * Whether a band of `n` elements in blocks of `blockElems` elements takes the WebAssembly loops
 * (the backend switch, and an instance).
 */
export function codeMapWasm(n: number, blockElems: number): boolean {
  return n > 0 && preferWasm(blockElems >= MIN_BLOCK ? n : 0, MIN_AUTO) && instance() !== null;
}

/** Grows the memory to `bytes` and returns it as bytes. */
function memory(k: Exports, bytes: number): Uint8Array {
  const have = k.mem.buffer.byteLength;
  if (bytes > have) k.mem.grow(Math.ceil((bytes - have) / 65536));
  return new Uint8Array(k.mem.buffer);
}

/**
 * Calls `f(r, m, c, w)` for the chunks of rows `r0..r1` of a `cols`-wide band: `m` rows of the
 * columns `c..c + w` (whole rows where `CHUNK` holds one, else pieces of one row).
 */
function chunks(
  r0: number,
  r1: number,
  cols: number,
  f: (r: number, m: number, c: number, w: number) => void,
): void {
  if (cols <= CHUNK) {
    const step = Math.floor(CHUNK / cols);
    for (let r = r0; r < r1; r += step) f(r, Math.min(step, r1 - r), 0, cols);
    return;
  }
  for (let r = r0; r < r1; r++) for (let c = 0; c < cols; c += CHUNK) f(r, 1, c, Math.min(CHUNK, cols - c));
}

/**
 * `dequantBand`'s loop over the rows `r0..r1` of one block row (`data` holds the band's codes from
 * index 0, `cols` wide, blocks `bc` wide): writes `table[code]` of each element's block column
 * (entries of `esz` bytes, `256` per block column) to `out` at the element's index times `esz`,
 * and sets `hist` (`256` counts per block column) to the block row's code counts.
 */
export function dequantRowsWasm(
  data: Uint8Array,
  cols: number,
  r0: number,
  r1: number,
  bc: number,
  table: Uint16Array | Float32Array,
  out: Uint8Array,
  hist: Int32Array,
): void {
  const k = instance()!;
  const esz = table.BYTES_PER_ELEMENT as 2 | 4;
  const w = Math.min(bc, cols);
  const sc = Math.ceil(cols / w);
  const tablesAt = sc * 4096;
  const codesAt = tablesAt + sc * 256 * esz;
  const piece = Math.min(cols, CHUNK) * (cols <= CHUNK ? Math.floor(CHUNK / cols) : 1);
  const outAt = codesAt + piece;
  const mem = memory(k, outAt + piece * esz);
  mem.fill(0, 0, tablesAt);
  mem.set(new Uint8Array(table.buffer, table.byteOffset, sc * 256 * esz), tablesAt);
  const run = esz === 2 ? k.deq16 : k.deq32;
  chunks(r0, r1, cols, (r, m, c, width) => {
    const j = Math.floor(c / w);
    const first = Math.min(w - (c - j * w), width);
    const from = r * cols + c;
    mem.set(data.subarray(from, from + m * width), codesAt);
    run(codesAt, m, width, first, w, outAt, tablesAt + j * 256 * esz, j * 4096);
    out.set(mem.subarray(outAt, outAt + m * width * esz), from * esz);
  });
  const sub = new Uint32Array(k.mem.buffer, 0, sc * 1024);
  for (let i = 0, s = 0; i < sc * 256; i++, s += 4) hist[i] = sub[s] + sub[s + 1] + sub[s + 2] + sub[s + 3];
}

/**
 * `requantBand`'s lookup pass over the rows `r0..r1` of one block row (`data` and `out` hold the
 * band from index 0, `cols` wide, blocks `bc` wide): `out[i] = maps[j * 256 + data[i]]` with j the
 * element's block column.
 */
export function mapRowsWasm(
  data: Uint8Array,
  cols: number,
  r0: number,
  r1: number,
  bc: number,
  maps: Uint8Array,
  out: Uint8Array,
): void {
  const k = instance()!;
  const w = Math.min(bc, cols);
  const sc = Math.ceil(cols / w);
  const codesAt = sc * 256;
  const piece = Math.min(cols, CHUNK) * (cols <= CHUNK ? Math.floor(CHUNK / cols) : 1);
  const mem = memory(k, codesAt + piece);
  mem.set(maps.subarray(0, sc * 256), 0);
  chunks(r0, r1, cols, (r, m, c, width) => {
    const j = Math.floor(c / w);
    const first = Math.min(w - (c - j * w), width);
    const from = r * cols + c;
    const len = m * width;
    mem.set(data.subarray(from, from + len), codesAt);
    k.map(codesAt, m, width, first, w, j * 256);
    out.set(mem.subarray(codesAt, codesAt + len), from);
  });
}
