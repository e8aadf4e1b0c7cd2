/**
 * Requantizing one block of E4M3 codes to E4M3 with a fresh block scale, from the block's code
 * histogram alone: within a block every element with the same code has the same value, so the new
 * code and the error are computed once per code present, not once per element. The one
 * implementation behind the E4M3 -> block-FP8 fast path of `fp8kit convert` and the UE8M0
 * requantization measurement of `fp8kit audit`; bit-identical to decode-then-encode.
 */
import { addPairs, type ErrorStats } from "../error-stats.js";
import { f32Bits } from "../float32.js";
import { E4M3_MAX, E4M3_VALUES, e4m3FromBits, e4m3Nan } from "./tables.js";
import { fp8BlockScale } from "./target-scales.js";

/** Positive finite E4M3 codes 0..126. */
const E4M3_FINITE = 127;

/** The value of code `c` under block multiplier `s`, as `decodeBand` computes it. */
function codeValue(c: number, s: number): number {
  return Number.isNaN(s) ? Number.NaN : Math.fround(E4M3_VALUES[c] * s);
}

export class E4m3Requantizer {
  /** Midpoints between consecutive E4M3 magnitudes: |q| > mids[j] rounds above code j. */
  private readonly mids = Float64Array.from(
    { length: E4M3_FINITE - 1 },
    (_, j) => (E4M3_VALUES[j] + E4M3_VALUES[j + 1]) / 2,
  );

  /** `scaleFmt` is the target's rule: `ue8m0` (DeepSeek-V3.1) or `float` (DeepSeek-V3). */
  constructor(readonly scaleFmt: "ue8m0" | "float") {}

  /**
   * Requantizes the block whose code histogram is `hist[at .. at+256)` and float32 multiplier `s`:
   * values x = fl32(e4m3(code) * s), the new scale sf from their amax (NaN-propagating) by
   * `fp8BlockScale`, codes e4m3(fl32(x * fl32(1 / sf))) with RNE and saturation. Adds every element's
   * error to `st`, writes the new code of each code present to `map` (when given), returns sf.
   * Codes m and m | 0x80 hold opposite values (x and -x exactly), so they round alike and add the
   * same error: the work is done once per magnitude.
   */
  requantize(hist: Uint32Array, at: number, s: number, st: ErrorStats, map: Uint8Array | null): number {
    const amax = this.amax(hist, at, s);
    const sf = Math.fround(fp8BlockScale(this.scaleFmt, amax));
    const inv = Math.fround(1 / sf);
    if (Number.isNaN(sf)) {
      // A NaN scale: every element becomes +NaN, as `encodeBand` writes it.
      for (let c = 0; c < 256; c++) {
        const n = hist[at + c];
        if (n === 0) continue;
        if (map !== null) map[c] = e4m3Nan();
        addPairs(st, codeValue(c, s), Number.NaN, n);
      }
      return sf;
    }
    // The stored scale already is the new power of two: x * 2^-k gives back every code exactly.
    const same = this.scaleFmt === "ue8m0" && sf === s && Number.isFinite(amax);
    // |q| grows with m, so one pointer j walks the E4M3 grid.
    const mids = this.mids;
    let j = 0;
    for (let m = 0; m < 128; m++) {
      const n = hist[at + m] + hist[at + m + 128];
      if (n === 0) continue;
      const x = codeValue(m, s);
      if (same) {
        if (map !== null) {
          map[m] = m;
          map[m + 128] = m + 128;
        }
        addPairs(st, x, x, n);
        continue;
      }
      const q = Math.fround(x * inv);
      if (m === E4M3_FINITE || Number.isNaN(q)) {
        // NaN codes, or NaN values: each code as the codec encodes it.
        for (let c = m; c < 256; c += 128) {
          if (hist[at + c] === 0) continue;
          const xc = codeValue(c, s);
          const code = e4m3FromBits(f32Bits(Math.fround(xc * inv)));
          if (map !== null) map[c] = code;
          addPairs(st, xc, E4M3_VALUES[code] * sf, hist[at + c]);
        }
        continue;
      }
      const aq = q < 0 ? -q : q;
      while (j < E4M3_FINITE - 1 && aq > mids[j]) j++;
      const k = j < E4M3_FINITE - 1 && aq === mids[j] && (j & 1) === 1 ? j + 1 : j;
      const code = q < 0 || (q === 0 && 1 / q < 0) ? k | 0x80 : k;
      if (map !== null) {
        map[m] = code;
        map[m + 128] = code ^ 0x80;
      }
      if (aq > E4M3_MAX && Number.isFinite(x)) st.saturated += n;
      addPairs(st, x, E4M3_VALUES[code] * sf, n);
    }
    return sf;
  }

  /** Largest |value| of the codes present; NaN as soon as one value is NaN (as `torch.amax`). */
  private amax(hist: Uint32Array, at: number, s: number): number {
    if (Number.isFinite(s)) {
      // |fl32(e4m3(m) * s)| grows with m, and only the NaN codes give NaN.
      if (hist[at + E4M3_FINITE] + hist[at + E4M3_FINITE + 128] !== 0) return Number.NaN;
      for (let m = E4M3_FINITE - 1; m >= 0; m--)
        if (hist[at + m] + hist[at + m + 128] !== 0) return Math.abs(codeValue(m, s));
      return 0;
    }
    let amax = 0;
    for (let c = 0; c < 256; c++) {
      if (hist[at + c] === 0) continue;
      const a = Math.abs(codeValue(c, s));
      if (Number.isNaN(a)) return Number.NaN;
      if (a > amax) amax = a;
    }
    return amax;
  }
}
