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
