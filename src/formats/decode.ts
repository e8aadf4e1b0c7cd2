import { describe } from "./encode.js";
import { LITTLE_ENDIAN } from "./endian.js";
import { FormatError } from "./errors.js";
import { type FormatState, formatState } from "./format-cache.js";
import type { FormatName } from "./types.js";
import { wasmDecode } from "./wasm/backend.js";

/** Codes to decode: a Uint8Array for byte formats, a Uint16Array for 16-bit ones, or plain numbers. */
type DecodeInput = Uint8Array | Uint16Array | readonly number[];

/**
 * Decodes codes to float32 values (exact: every value of these formats is a float32). Byte formats
 * take a Uint8Array (or number[]), bfloat16/float16 a Uint16Array (or number[]). Decoding is a table
 * lookup on bit patterns, so NaN signs survive. A code with bits above a 4/6-bit format's width is
 * an error, not a silent wrong value.
 */
export function decode(format: FormatName, codes: DecodeInput): Float32Array {
  return decodeWith(format, codes, null);
}

/** Like `decode`, into an existing Float32Array of the same length. */
export function decodeInto(format: FormatName, codes: DecodeInput, dst: Float32Array): void {
  decodeWith(format, codes, dst);
}

function decodeWith(format: FormatName, codes: unknown, dst: Float32Array | null): Float32Array {
  const st = formatState(format);
  const c = checkCodes(format, codes, st.traits.bits === 16);
  const out = dst ?? new Float32Array(c.length);
  if (out.length !== c.length) {
    throw new FormatError(
      "length-mismatch",
      `decodeInto(${format}): ${c.length} codes but destination holds ${out.length}`,
    );
  }
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  decodeIntoUnchecked(st, c, bits);
  return out;
}

/**
 * The value of every code as a Float32Array: 256 entries for formats of 8 bits or fewer (entries
 * past 2^bits are NaN), 65536 for bfloat16/float16. A fresh copy each call.
 */
export function decodeTable(format: FormatName): Float32Array {
  return new Float32Array(formatState(format).tableBits.slice().buffer);
}

function checkCodes(format: FormatName, codes: unknown, wide: boolean): DecodeInput {
  if (wide ? codes instanceof Uint16Array : codes instanceof Uint8Array)
    return codes as Uint8Array | Uint16Array;
  if (Array.isArray(codes)) {
    const limit = wide ? 0xffff : 0xff;
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (!Number.isInteger(c) || c < 0 || c > limit) {
        throw new FormatError(
          "invalid-code",
          `decode(${format}): element ${i} (${c}) is not a code in 0..${limit}`,
        );
      }
    }
    return codes;
  }
  throw new FormatError(
    "invalid-array",
    `decode(${format}) needs a ${wide ? "Uint16Array" : "Uint8Array"} or number[], got ${describe(codes)}`,
  );
}

function decodeIntoUnchecked(st: FormatState, codes: DecodeInput, out: Uint32Array): void {
  const { tableBits: table, traits } = st;
  const { bits, name: format } = traits;
  const n = codes.length;
  if (bits === 8 && codes instanceof Uint8Array && wasmDecode(traits, table, codes, out)) return;
  if (bits < 8 && codes instanceof Uint8Array) {
    // One pass: look up and collect any bit above the code width, then report the first offender.
    const mask = ~((1 << bits) - 1) & 0xff;
    let stray = 0;
    for (let i = 0; i < n; i++) {
      const c = codes[i];
      stray |= c & mask;
      out[i] = table[c];
    }
    if (stray !== 0) throw strayBits(format, bits, codes);
    return;
  }
  if (bits < 8) {
    for (let i = 0; i < n; i++) if (codes[i] >= 1 << bits) throw strayBits(format, bits, codes);
  }
  if (codes instanceof Uint8Array) lookup8(table, codes, out);
  else if (codes instanceof Uint16Array) lookup16(table, codes, out);
  else for (let i = 0; i < n; i++) out[i] = table[codes[i]];
}

// One monomorphic loop per code array type (V8 keeps typed-array element access fast that way).
function lookup8(table: Uint32Array, codes: Uint8Array, out: Uint32Array): void {
  const n = codes.length;
  let i = 0;
  while (i < n && (codes.byteOffset + i) % 4 !== 0) {
    out[i] = table[codes[i]];
    i++;
  }
  // Four codes per 32-bit load (little-endian: code i is the low byte).
  const words = (n - i) >>> 2;
  if (words > 0 && LITTLE_ENDIAN) {
    const c32 = new Uint32Array(codes.buffer, codes.byteOffset + i, words);
    for (let w = 0; w < words; w++, i += 4) {
      const v = c32[w];
      out[i] = table[v & 0xff];
      out[i + 1] = table[(v >>> 8) & 0xff];
      out[i + 2] = table[(v >>> 16) & 0xff];
      out[i + 3] = table[v >>> 24];
    }
  }
  for (; i < n; i++) out[i] = table[codes[i]];
}

function lookup16(table: Uint32Array, codes: Uint16Array, out: Uint32Array): void {
  const n = codes.length;
  for (let i = 0; i < n; i++) out[i] = table[codes[i]];
}

function strayBits(format: FormatName, bits: number, codes: ArrayLike<number>): FormatError {
  let i = 0;
  while (i < codes.length && codes[i] < 1 << bits) i++;
  return new FormatError(
    "invalid-code",
    `decode(${format}): element ${i} (${codes[i]}) has bits above the ${bits}-bit code`,
  );
}
