/**
 * Block code histograms in WebAssembly, emitted at run time by the few lines of assembler below (no
 * committed binary). One exported function, `hist(codes, rows, cols, bc, hist)`: for each of `rows`
 * rows of `cols` bytes at `codes`, adds every byte to the 256-bin u32 histogram of its block column
 * (four interleaved sub-bins per bin, see `increment`), reading four bytes per load; `cols` and `bc`
 * must be multiples of 4. It does what `bandHistograms` does, about twice as fast in V8;
 * `bandHistograms` stays the reference and the fallback where WebAssembly is unavailable.
 */

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};

const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
};

const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const str = (s: string) => [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))];
/** A run of instructions: opcodes and encoded instructions, flattened. */
const ops = (...parts: (number | number[])[]): number[] => parts.flat();

// Opcodes.
const I32 = 0x7f;
const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const tee = (i: number) => [0x22, i];
const c32 = (n: number) => [0x41, ...sleb(n)];
const ADD = 0x6a;
const MUL = 0x6c;
const AND = 0x71;
const SHL = 0x74;
const SHR_U = 0x76;
const GE_U = 0x4f;
const LT_U = 0x49;
const SELECT = 0x1b;
const load = (offset: number) => [0x28, 2, ...uleb(offset)];
const store = (offset: number) => [0x36, 2, ...uleb(offset)];
const END = 0x0b;

// Params 0 codes, 1 rows, 2 cols, 3 bc, 4 hist; locals 5 r, 6 p, 7 rowEnd, 8 hb, 9 end, 10 w, 11 a.
const [CODES, ROWS, COLS, BC, HIST, R, P, ROW_END, HB, E, W, A] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

/** `while (a < b) { body }` (unsigned): a block around a loop that exits when a >= b. */
const whileBelow = (a: number, b: number, body: number[]) =>
  ops([0x02, 0x40, 0x03, 0x40], get(a), get(b), GE_U, [0x0d, 1], body, [0x0c, 0], END, END);

/** `local += n`. */
const addTo = (local: number, n: number) => ops(get(local), c32(n), ADD, set(local));

/**
 * Bins are interleaved four ways, `hist + ((block * 256 + byte) * 4 + k) * 4`, and byte k of each
 * word goes to sub-bin k (the k * 4 is the load/store offset): repeated codes then do not wait on
 * the previous increment of the same address. `band` adds the four sub-bins up.
 */
function increment(k: number): number[] {
  const shift = k * 8;
  const byte =
    shift === 0
      ? ops(get(W), c32(255), AND)
      : shift === 24
        ? ops(get(W), c32(24), SHR_U)
        : ops(get(W), c32(shift), SHR_U, c32(255), AND);
  return ops(get(HB), byte, c32(4), SHL, ADD, tee(A), get(A), load(k * 4), c32(1), ADD, store(k * 4));
}

function body(): number[] {
  const word = ops(get(P), load(0), set(W), increment(0), increment(1), increment(2), increment(3));
  // e = min(p + bc, rowEnd)
  const blockEnd = ops(
    get(P),
    get(BC),
    ADD,
    tee(E),
    get(ROW_END),
    get(E),
    get(ROW_END),
    LT_U,
    SELECT,
    set(E),
  );
  const row = ops(
    // p = codes + r * cols; rowEnd = p + cols; hb = hist
    ops(get(CODES), get(R), get(COLS), MUL, ADD, tee(P), get(COLS), ADD, set(ROW_END), get(HIST), set(HB)),
    whileBelow(P, ROW_END, ops(blockEnd, whileBelow(P, E, ops(word, addTo(P, 4))), addTo(HB, 4096))),
    addTo(R, 1),
  );
  return ops(c32(0), set(R), whileBelow(R, ROWS, row), END);
}

function moduleBytes(): Uint8Array {
  const code = [...uleb(1), 7, I32, ...body()];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 5, I32, I32, I32, I32, I32, 0]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0x00, 1]),
    ...section(7, [2, ...str("mem"), 0x02, 0, ...str("hist"), 0x00, 0]),
    ...section(10, [1, ...uleb(code.length), ...code]),
  ]);
}

/** A WebAssembly histogram kernel with its own memory: histograms at 0, the band of codes after. */
export class WasmHistogram {
  private readonly memory: WebAssembly.Memory;
  private readonly fn: (codes: number, rows: number, cols: number, bc: number, hist: number) => void;

  private constructor() {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes() as BufferSource));
    this.memory = inst.exports.mem as WebAssembly.Memory;
    this.fn = inst.exports.hist as WasmHistogram["fn"];
  }

  /** The kernel, or null where WebAssembly is not available. */
  static create(): WasmHistogram | null {
    try {
      return typeof WebAssembly === "object" ? new WasmHistogram() : null;
    } catch {
      return null;
    }
  }

  /**
   * Histograms of one band: rows `r0..r1` of the `[rows, cols]` matrix at `codes[offset..]`, blocks
   * `bc` wide; returns the `gc * 256` bins (a view into the kernel's memory, valid until the next call).
   */
  band(codes: Uint8Array, offset: number, cols: number, r0: number, r1: number, bc: number): Uint32Array {
    const gc = Math.ceil(cols / bc);
    const bins = gc * 256;
    const subBytes = bins * 16;
    const outBytes = bins * 4;
    const n = (r1 - r0) * cols;
    const need = subBytes + outBytes + n;
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / 65536));
    const mem = new Uint8Array(this.memory.buffer);
    mem.fill(0, 0, subBytes);
    mem.set(codes.subarray(offset + r0 * cols, offset + r1 * cols), subBytes + outBytes);
    this.fn(subBytes + outBytes, r1 - r0, cols, bc, 0);
    const sub = new Uint32Array(this.memory.buffer, 0, bins * 4);
    const out = new Uint32Array(this.memory.buffer, subBytes, bins);
    for (let i = 0, j = 0; i < bins; i++, j += 4) out[i] = sub[j] + sub[j + 1] + sub[j + 2] + sub[j + 3];
    return out;
  }
}
