/**
 * Fast path: BF16 -> NVFP4. The generic path widens the band to float32 in a JavaScript loop and
 * copies the float32 values into the WebAssembly kernel's memory; here the BF16 bits are copied
 * (half the bytes) and widened inside the kernel (`encodeNvfp4Bf16`), the same values, so the same
 * codes, scales and statistics. Where WebAssembly SIMD does not run, the caller takes the generic
 * path.
 */
import { LITTLE_ENDIAN } from "../../formats/endian.js";
import type { EncodedBand } from "./encode-band.js";
import { encodeNvfp4Bf16 } from "./encode-nvfp4.js";
import type { BandSpec } from "./types.js";

/** Whether `nvfp4Bf16Band` converts `spec`: a plain BF16 band to NVFP4. */
export function nvfp4Bf16Applies(spec: BandSpec): boolean {
  return (
    LITTLE_ENDIAN &&
    spec.source.kind === "plain" &&
    spec.source.dtype === "BF16" &&
    spec.target.kind === "nvfp4" &&
    spec.via === undefined
  );
}

/** The band encoded from its BF16 bits in WebAssembly, or null where that backend does not run. */
export function nvfp4Bf16Band(spec: BandSpec, data: Uint8Array): EncodedBand | null {
  const t = spec.target as Extract<BandSpec["target"], { kind: "nvfp4" }>;
  const n = spec.rows * spec.cols;
  const b = data.byteOffset % 2 === 0 ? data : data.slice(0, n * 2);
  const bits = new Uint16Array(b.buffer, b.byteOffset, n);
  return encodeNvfp4Bf16(t, bits, spec.rows, spec.cols, spec.outTensorScale);
}
