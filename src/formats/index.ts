export { decode, decodeInto, decodeTable } from "./decode.js";
export { type EncodeInput, encode, encodeInto, float32BitsEncoder } from "./encode.js";
export { FormatError, type FormatErrorCode } from "./errors.js";
export { encodeE8m0Bits } from "./float8-e8m0.js";
export { decodeHif8 } from "./hifloat8.js";
export { formatInfo } from "./info.js";
export { packFp4, unpackFp4 } from "./pack.js";
export { FORMAT_NAMES, FORMATS, isFormatName } from "./registry.js";
export type {
  ByteFormatName,
  EncodeOptions,
  FormatInfo,
  FormatName,
  FormatTraits,
  Overflow,
  Rounding,
  SpecialKind,
  WordFormatName,
} from "./types.js";
