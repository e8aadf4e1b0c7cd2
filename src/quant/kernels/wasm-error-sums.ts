/**
 * The error statistics of the WebAssembly SIMD band kernels (INT8/INT4 per channel, NVFP4), one
 * implementation for both: per four float32 lanes of inputs x and outputs y, the sums x*x, e*e, x*y,
 * y*y with e = x - y in f64x2 lanes (each product and difference the same f64 operation as
 * `addPairs` in JavaScript; only the order of the additions differs), the largest |e| (exactly
 * JavaScript's), and the count of y == 0 && x != 0 (flushed). The kernel stores the lanes at a
 * `stats` address; `addErrorSums` adds them to an `ErrorStats` (count and nonfinite are the
 * kernel's caller's: it knows which elements it took).
 */
import { type Bytes, f32x4, f64x2, get, i32x4, ops, set, v128 } from "../../formats/wasm/asm.js";
import type { ErrorStats } from "../error-stats.js";

/** The v128 locals the sums use: inputs X and Y, scratch XD, YD, E, and the accumulators. */
export interface ErrorSumLocals {
  X: number;
  Y: number;
  XD: number;
  YD: number;
  E: number;
  AXX: number;
  AEE: number;
  AXY: number;
  AYY: number;
  AMAX: number;
  AFL: number;
}

/** Bytes 8..15 of the first operand into lanes 0..7 (the high two float32 lanes, to promote). */
const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];

/** `acc += a * b` on f64x2 locals. */
const fma = (acc: number, a: number, b: number): Bytes =>
  ops(get(acc), get(a), get(b), f64x2.mul, f64x2.add, set(acc));

/** Adds the four lanes in X and Y to the accumulators. */
export function errorSumLanes(L: ErrorSumLocals): Bytes {
  const half = (high: boolean): Bytes => {
    const promote = (l: number) =>
      high
        ? ops(get(l), get(l), v128.shuffle(HIGH_HALF), f64x2.promote_low_f32x4)
        : ops(get(l), f64x2.promote_low_f32x4);
    return ops(
      ops(promote(L.X), set(L.XD), promote(L.Y), set(L.YD)),
      ops(get(L.XD), get(L.YD), f64x2.sub, set(L.E)),
      ops(fma(L.AXX, L.XD, L.XD), fma(L.AEE, L.E, L.E), fma(L.AXY, L.XD, L.YD), fma(L.AYY, L.YD, L.YD)),
      ops(get(L.AMAX), get(L.E), f64x2.abs, f64x2.pmax, set(L.AMAX)),
    );
  };
  const zero = v128.i32x4(0);
  return ops(
    half(false),
    half(true),
    ops(get(L.AFL), get(L.Y), zero, f32x4.eq, get(L.X), zero, f32x4.ne, v128.and, i32x4.sub, set(L.AFL)),
  );
}

/** Bytes the accumulators take at `stats`: four f64 sums and the max (two lanes each), the flushed count. */
export const ERROR_SUMS_BYTES = 96;

/** Stores the accumulators at the address in local `stats` (96 bytes, see `addErrorSums`). */
export function storeErrorSums(stats: number, L: ErrorSumLocals): Bytes {
  const store = (k: number, l: number) => ops(get(stats), get(l), v128.store(k * 16));
  return ops(
    store(0, L.AXX),
    store(1, L.AEE),
    store(2, L.AXY),
    store(3, L.AYY),
    store(4, L.AMAX),
    store(5, L.AFL),
  );
}

/** Adds the sums a kernel stored at byte `at` of `buf` to `st` (all but count and nonfinite). */
export function addErrorSums(st: ErrorStats, buf: ArrayBuffer, at: number): void {
  const s = new Float64Array(buf, at, 10);
  const flushed = new Int32Array(buf, at + 80, 4);
  st.xx += s[0] + s[1];
  st.ee += s[2] + s[3];
  st.xy += s[4] + s[5];
  st.yy += s[6] + s[7];
  const me = Math.max(s[8], s[9]);
  if (me > st.maxAbsErr) st.maxAbsErr = me;
  st.flushed += flushed[0] + flushed[1] + flushed[2] + flushed[3];
}
