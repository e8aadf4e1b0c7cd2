import { decodeTable, type FormatName } from "../formats/index.js";

/**
 * Element codes inside `QuantizedTensor.data`: one per byte for 8- and 6-bit formats; two per byte
 * for 4-bit formats, element 0 in the low nibble (torchao `pack_uint4`, DeepGEMM, Ascend fp4x2),
 * packed along the flat row-major element index (an odd count leaves the last high nibble 0).
 */
export function dataLength(count: number, bits: number): number {
  return bits === 4 ? Math.ceil(count / 2) : count;
}

/** Writes `n` codes at flat element index `at`, packing nibbles for 4-bit formats. */
export function storeCodes(data: Uint8Array, bits: number, at: number, codes: Uint8Array, n: number): void {
  if (bits !== 4) {
    data.set(n === codes.length ? codes : codes.subarray(0, n), at);
    return;
  }
  let i = 0;
  let idx = at;
  if (idx & 1 && n > 0) {
    data[idx >> 1] = (data[idx >> 1] & 0x0f) | (codes[0] << 4);
    i = 1;
    idx++;
  }
  for (; i + 1 < n; i += 2, idx += 2) data[idx >> 1] = codes[i] | (codes[i + 1] << 4);
  if (i < n) data[idx >> 1] = (data[idx >> 1] & 0xf0) | codes[i];
}

/** Reads `n` codes from flat element index `at` into `out`, unpacking nibbles for 4-bit formats. */
export function loadCodes(data: Uint8Array, bits: number, at: number, out: Uint8Array, n: number): void {
  if (bits !== 4) {
    out.set(data.subarray(at, at + n));
    return;
  }
  for (let i = 0, idx = at; i < n; i++, idx++) out[i] = (data[idx >> 1] >> ((idx & 1) << 2)) & 0x0f;
}

const tables = new Map<FormatName, Float32Array>();
/** Cached decode table of a format (the codec returns a fresh copy each call). */
export function valuesOf(format: FormatName): Float32Array {
  let t = tables.get(format);
  if (t === undefined) {
    t = decodeTable(format);
    tables.set(format, t);
  }
  return t;
}
