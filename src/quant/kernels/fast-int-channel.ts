/**
 * Fast path: 8-bit block-scaled codes (DeepSeek's FP8 with float block scales) -> per-channel
 * INT8/INT4 (Ascend W8A8/W4A8). The generic path decodes the band to float32 in a JavaScript loop
 * and copies the values into the WebAssembly kernel's memory; here the codes are copied instead and
 * decoded there through one 256-entry table per block column, fl32(value(code) * s) as
 * `decodeBand` computes it, so the kernel sees the same float32 values and writes the same codes,
 * scales and statistics. Where WebAssembly SIMD does not run, `encodeIntChannelCodes` returns null
 * and the caller takes the generic path.
 */
import { valuesOf } from "../element-codes.js";
import { bandScales } from "./decode-band.js";
import type { EncodedBand } from "./encode-band.js";
import { encodeIntChannelCodes } from "./encode-int-channel.js";
import type { BandSpec } from "./types.js";

/** Whether `intChannelCodesBand` converts `spec`: unpacked 8-bit block codes with scales to an integer target. */
export function intChannelCodesApply(spec: BandSpec, scale: Uint8Array | null): boolean {
  const { source: s, target: t } = spec;
  return (
    s.kind === "block" &&
    !s.packed &&
    valuesOf(s.element).length === 256 &&
    scale !== null &&
    t.kind === "int-channel" &&
    spec.via === undefined
  );
}

/** The band encoded from its codes in WebAssembly, or null where that backend does not run. */
export function intChannelCodesBand(spec: BandSpec, data: Uint8Array, scale: Uint8Array): EncodedBand | null {
  const src = spec.source as Extract<BandSpec["source"], { kind: "block" }>;
  const t = spec.target as Extract<BandSpec["target"], { kind: "int-channel" }>;
  const { rows, cols } = spec;
  const [, bc] = src.block;
  const sc = Math.ceil(cols / bc);
  const s = bandScales(src, scale, rows, cols, spec.tensorScale);
  const values = valuesOf(src.element);
  const tables = new Float32Array(sc * 256);
  const tablesOf = (bi: number) => {
    for (let j = 0; j < sc; j++) {
      const sv = s[bi * sc + j];
      const tb = tables.subarray(j * 256, j * 256 + 256);
      // A NaN scale makes its block NaN, as in decodeBand.
      if (Number.isNaN(sv)) tb.fill(Number.NaN);
      else for (let c = 0; c < 256; c++) tb[c] = values[c] * sv;
    }
    return tables;
  };
  return encodeIntChannelCodes(t, { codes: data, block: src.block, tables: tablesOf }, rows, cols);
}
