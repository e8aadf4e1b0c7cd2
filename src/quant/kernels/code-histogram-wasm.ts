/**
 * Block code histograms in WebAssembly, emitted at run time through `formats/wasm/asm.ts` (no
 * committed binary). One exported function, `hist(codes, rows, cols, bc, hist)`: for each of `rows`
 * rows of `cols` bytes at `codes`, adds every byte to the 256-bin u32 histogram of its block column
 * (four interleaved sub-bins per bin, see `increment`), reading four bytes per load; `cols` and `bc`
 * must be multiples of 4. It does what `bandHistograms` does, about twice as fast in V8;
 * `bandHistograms` stays the reference and the fallback where WebAssembly is unavailable.
 */

import {
  addTo,
  get,
  I32,
  i32,
  instantiate,
  ops,
  SELECT,
  set,
  tee,
  wasmModule,
  whileBelow,
} from "../../formats/wasm/asm.js";

const { add: ADD, mul: MUL, and: AND, shl: SHL, shr_u: SHR_U, lt_u: LT_U } = i32;
const c32 = i32.const;
const { load, store } = i32;

// Params 0 codes, 1 rows, 2 cols, 3 bc, 4 hist; locals 5 r, 6 p, 7 rowEnd, 8 hb, 9 end, 10 w, 11 a.
const [CODES, ROWS, COLS, BC, HIST, R, P, ROW_END, HB, E, W, A] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

/**
 * Bins are interleaved four ways, `hist + ((block * 256 + byte) * 4 + k) * 4`, and byte k of each
 * word goes to sub-bin k (the k * 4 is the load/store offset): repeated codes then do not wait on
 * the previous increment of the same address. `band` adds the four sub-bins up. Byte k's bin
 * offset `byte * 16` comes from one shift and one mask of the word.
 */
function increment(k: number): number[] {
  const binOffset =
    k === 0 ? ops(get(W), c32(4), SHL, c32(0xff0), AND) : ops(get(W), c32(8 * k - 4), SHR_U, c32(0xff0), AND);
  return ops(get(HB), binOffset, ADD, tee(A), get(A), load(k * 4), c32(1), ADD, store(k * 4));
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
  return ops(c32(0), set(R), whileBelow(R, ROWS, row));
}

function moduleBytes(): Uint8Array {
  return wasmModule({
    memory: { min: 1, export: "mem" },
    funcs: [
      {
        params: [I32, I32, I32, I32, I32],
        locals: [I32, I32, I32, I32, I32, I32, I32],
        body: body(),
        export: "hist",
      },
    ],
  });
}

/** A WebAssembly histogram kernel with its own memory: histograms at 0, the band of codes after. */
export class WasmHistogram {
  private readonly memory: WebAssembly.Memory;
  private readonly fn: (codes: number, rows: number, cols: number, bc: number, hist: number) => void;

  private constructor() {
    const inst = instantiate(moduleBytes());
    this.memory = inst.exports.mem as WebAssembly.Memory;
    this.fn = inst.exports.hist as WasmHistogram["fn"];
  }

  private static instance: WasmHistogram | null | undefined;

  /** This thread's kernel (made on first use), or null where WebAssembly is not available. */
  static shared(): WasmHistogram | null {
    if (WasmHistogram.instance === undefined) WasmHistogram.instance = WasmHistogram.create();
    return WasmHistogram.instance;
  }

  /** A new kernel, or null where WebAssembly is not available. */
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
    this.target((r1 - r0) * cols, cols, bc).set(codes.subarray(offset + r0 * cols, offset + r1 * cols));
    return this.run(r1 - r0, cols, bc);
  }

  /**
   * Where the next band's `n` codes go (a view into the kernel's memory): fill it, for instance by
   * reading a file straight into it, then call `run` with the same `cols` and `bc`.
   */
  target(n: number, cols: number, bc: number): Uint8Array {
    const bins = Math.ceil(cols / bc) * 256;
    const at = bins * 20; // four sub-bins, then the summed bins, then the codes
    const have = this.memory.buffer.byteLength;
    if (at + n > have) this.memory.grow(Math.ceil((at + n - have) / 65536));
    return new Uint8Array(this.memory.buffer, at, n);
  }

  /** Histograms the `rows` rows of `cols` codes that `target` received; returns the bins as `band` does. */
  run(rows: number, cols: number, bc: number): Uint32Array {
    const bins = Math.ceil(cols / bc) * 256;
    new Uint8Array(this.memory.buffer).fill(0, 0, bins * 16);
    this.fn(bins * 20, rows, cols, bc, 0);
    const sub = new Uint32Array(this.memory.buffer, 0, bins * 4);
    const out = new Uint32Array(this.memory.buffer, bins * 16, bins);
    for (let i = 0, j = 0; i < bins; i++, j += 4) out[i] = sub[j] + sub[j + 1] + sub[j + 2] + sub[j + 3];
    return out;
  }
}
