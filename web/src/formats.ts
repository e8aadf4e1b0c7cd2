/**
 * What the format explorer shows of one format: short names, bit fields, the value of a code and the
 * neighbours of a value, all read from the library's codecs (`encode`, `decode`, `decodeTable`,
 * `formatInfo`); nothing here rounds or decodes by itself.
 */
import {
  type ByteFormatName,
  decode,
  decodeTable,
  encode,
  FORMAT_NAMES,
  type FormatName,
  formatInfo,
} from "../../src/index.js";

/** The short names people use (ml_dtypes names in the tooltips). */
export const SHORT_NAMES: Readonly<Record<FormatName, string>> = {
  float8_e4m3fn: "E4M3",
  float8_e5m2: "E5M2",
  float8_e4m3fnuz: "E4M3FNUZ",
  float8_e5m2fnuz: "E5M2FNUZ",
  float8_e8m0fnu: "E8M0",
  float6_e2m3fn: "E2M3",
  float6_e3m2fn: "E3M2",
  float4_e2m1fn: "E2M1",
  hifloat8: "HiF8",
  bfloat16: "BF16",
  float16: "FP16",
};

/** Formats whose codes fit a byte (their whole code table fits on the page). */
export const BYTE_FORMATS = FORMAT_NAMES.filter((f) => formatInfo(f).bits <= 8) as ByteFormatName[];

/** A value as the page prints it: exact (shortest round-trip), with -0, NaN, Inf and -Inf spelled out. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

/** Parses what a person types: numbers, `nan`, `inf`, `-inf`, `-0`, hex floats are not needed. */
export function parseValue(s: string): number | null {
  const t = s.trim().toLowerCase();
  if (t === "nan") return Number.NaN;
  if (t === "inf" || t === "+inf" || t === "infinity") return Number.POSITIVE_INFINITY;
  if (t === "-inf" || t === "-infinity") return Number.NEGATIVE_INFINITY;
  if (t === "") return null;
  const v = Number(t);
  return Number.isNaN(v) ? null : v;
}

/** The float32 bit pattern of a value, as 8 hex digits (shows NaN signs and payloads too). */
export function float32Hex(v: number): string {
  const f = new Float32Array([v]);
  return new Uint32Array(f.buffer)[0].toString(16).padStart(8, "0");
}

/** A code as hex with the format's width (0x7e, 0x3f80). */
export function codeHex(format: FormatName, code: number): string {
  return `0x${code.toString(16).padStart(formatInfo(format).bits > 8 ? 4 : 2, "0")}`;
}

/** The value of one code (`decode` of a one-element array). */
export function decodeCode(format: FormatName, code: number): number {
  return formatInfo(format).bits > 8 ? decode(format, new Uint16Array([code]))[0] : decode(format, [code])[0];
}

/** The code `encode` gives a value, with the format's default rounding. */
export function codeOf(format: FormatName, value: number, saturate: boolean): number {
  return encode(format, [value], { overflow: saturate ? "saturate" : "nonfinite" })[0];
}

/** One bit field of a code: what it is and its bits, most significant first. */
export interface BitField {
  kind: "sign" | "dot" | "exponent" | "mantissa";
  bits: string;
}

/**
 * The fields of a code. IEEE-like formats: sign, exponent, mantissa as `formatInfo` gives their
 * widths. HiFloat8 is tapered: after the sign a prefix-coded dot field says how many exponent bits
 * follow and the mantissa gets the rest (0000: denormal, 0001: D=0, 001: D=1, 01/10/11: D=2/3/4).
 */
export function bitFields(format: FormatName, code: number): BitField[] {
  const info = formatInfo(format);
  const all = code.toString(2).padStart(info.bits, "0");
  if (info.specials === "tapered") {
    const rest = all.slice(1);
    const [dotLength, d] = rest.startsWith("000")
      ? [4, 0]
      : rest.startsWith("001")
        ? [3, 1]
        : [2, Number.parseInt(rest.slice(0, 2), 2) + 1];
    return [
      { kind: "sign", bits: all[0] },
      { kind: "dot", bits: rest.slice(0, dotLength) },
      { kind: "exponent", bits: rest.slice(dotLength, dotLength + d) },
      { kind: "mantissa", bits: rest.slice(dotLength + d) },
    ];
  }
  const s = info.signed ? 1 : 0;
  return [
    { kind: "sign" as const, bits: all.slice(0, s) },
    { kind: "exponent" as const, bits: all.slice(s, s + info.exponentBits) },
    { kind: "mantissa" as const, bits: all.slice(s + info.exponentBits) },
  ].filter((f) => f.bits.length > 0);
}

interface Ladder {
  values: Float64Array;
  codes: Uint32Array;
}
const ladders = new Map<FormatName, Ladder>();

/** The finite values of a format in increasing order (one code per value: +0 over -0), cached. */
function ladderOf(format: FormatName): Ladder {
  let l = ladders.get(format);
  if (l) return l;
  const table = decodeTable(format);
  const n = formatInfo(format).codeCount;
  const seen = new Map<number, number>();
  for (let c = 0; c < n; c++) {
    const v = table[c];
    if (!Number.isFinite(v)) continue;
    const prev = seen.get(v);
    if (prev === undefined || (v === 0 && Object.is(table[prev], -0))) seen.set(v, c);
  }
  const sorted = [...seen.entries()].sort((a, b) => a[0] - b[0]);
  l = { values: Float64Array.from(sorted, (e) => e[0]), codes: Uint32Array.from(sorted, (e) => e[1]) };
  ladders.set(format, l);
  return l;
}

/** The representable values just below and just above `v` (null past either end, or for NaN). */
export function neighbours(
  format: FormatName,
  v: number,
): { below: { code: number; value: number } | null; above: { code: number; value: number } | null } {
  const { values, codes } = ladderOf(format);
  if (Number.isNaN(v)) return { below: null, above: null };
  // First index with values[i] >= v, then step past v itself.
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  const b = lo - 1;
  let a = lo;
  while (a < values.length && values[a] <= v) a++;
  return {
    below: b >= 0 ? { code: codes[b], value: values[b] } : null,
    above: a < values.length ? { code: codes[a], value: values[a] } : null,
  };
}
