import { FormatError } from "./errors.js";

/**
 * Packs 4-bit codes two per byte, element 0 in the low nibble (torchao `pack_uint4`, DeepGEMM,
 * safetensors F4, gpt-oss `_blocks`). An odd count leaves the last high nibble zero.
 */
export function packFp4(codes: Uint8Array): Uint8Array {
  const n = codes.length;
  const out = new Uint8Array((n + 1) >>> 1);
  for (let i = 0; i < n; i++) {
    const c = codes[i];
    if (c > 15) throw new FormatError("invalid-code", `packFp4: element ${i} (${c}) is not a 4-bit code`);
    out[i >>> 1] |= (i & 1) === 0 ? c : c << 4;
  }
  return out;
}

/** Unpacks `count` 4-bit codes (element 0 from the low nibble), one per byte. */
export function unpackFp4(packed: Uint8Array, count: number): Uint8Array {
  if (!Number.isSafeInteger(count) || count < 0 || (count + 1) >>> 1 > packed.length) {
    throw new FormatError(
      "length-mismatch",
      `unpackFp4: ${count} elements need ${Math.ceil(count / 2)} bytes, got ${packed.length}`,
    );
  }
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const b = packed[i >>> 1];
    out[i] = (i & 1) === 0 ? b & 0x0f : b >>> 4;
  }
  return out;
}
