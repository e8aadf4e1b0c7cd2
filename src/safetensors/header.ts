import { type Dtype, dtypeBits, isDtype } from "./dtypes.js";
import { SafetensorsError } from "./errors.js";
import { isPlainObject, scanJson } from "./json-scan.js";
import { HEADER_LENGTH_BYTES, MAX_HEADER_SIZE } from "./limits.js";

/** One tensor as described by a safetensors header. */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  /** Logical element counts per dimension (for F4/F6: elements, not bytes). */
  shape: number[];
  /** `[begin, end)` in bytes, relative to the start of the data buffer (not the file). */
  dataOffsets: [number, number];
  /** Number of elements (product of `shape`; 1 for a rank-0 scalar). */
  numel: number;
  /** `end - begin`, equal to `numel * bits / 8`. */
  byteLength: number;
}

/** A validated header. */
export interface ParsedHeader {
  /** `__metadata__` (string to string), or null when absent. */
  metadata: Record<string, string> | null;
  /** The tensors in data order (ascending offsets), which is the order to stream them in. */
  tensors: TensorInfo[];
  /** N, the byte length of the JSON header (including any padding). */
  headerLength: number;
  /** Absolute file offset of the data buffer: 8 + N. */
  dataStart: number;
  /** Bytes of the data buffer: the end offset of the last tensor. */
  dataSize: number;
}

const METADATA_KEY = "__metadata__";
const ENTRY_KEYS = new Set(["dtype", "shape", "data_offsets"]);
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function fail(code: SafetensorsError["code"], fileName: string, what: string, cause?: unknown): never {
  throw new SafetensorsError(code, `${fileName}: ${what}`, cause === undefined ? undefined : { cause });
}

/**
 * Read N from the first 8 bytes of a file and check it against the reference's rules: file at
 * least 8 bytes (`HeaderTooSmall`), N at most MAX_HEADER_SIZE (`HeaderTooLarge`), 8 + N within the
 * file (`InvalidHeaderLength`). `fileSize` is the total file size in bytes.
 */
export function readHeaderLength(prefix: Uint8Array, fileName: string, fileSize: number): number {
  if (fileSize < HEADER_LENGTH_BYTES || prefix.length < HEADER_LENGTH_BYTES) {
    fail("header-too-small", fileName, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  }
  const dv = new DataView(prefix.buffer, prefix.byteOffset, HEADER_LENGTH_BYTES);
  const n = Number(dv.getBigUint64(0, true)); // rounded only above 2^53, far past the limit below
  if (n > MAX_HEADER_SIZE) {
    fail("header-too-large", fileName, `header length ${n} exceeds the limit of ${MAX_HEADER_SIZE} bytes`);
  }
  if (HEADER_LENGTH_BYTES + n > fileSize) {
    fail(
      "invalid-header-length",
      fileName,
      `header length ${n} runs past the end of the file (${fileSize} bytes)`,
    );
  }
  return n;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Elements and bytes of a `dtype` tensor of `shape`, checked as the reference's `Metadata::validate`
 * does: every dimension a non-negative integer (`invalid-shape`), the element count far from 2^53
 * (`validation-overflow`) and filling whole bytes (`misaligned-slice`). `where` starts messages.
 */
export function tensorSize(
  where: string,
  dtype: Dtype,
  shape: readonly unknown[],
): { numel: number; byteLength: number } {
  let numel = 1;
  for (const d of shape) {
    if (!isCount(d)) {
      throw new SafetensorsError(
        "invalid-shape",
        `${where}: dimension ${JSON.stringify(d)} is not a non-negative integer`,
      );
    }
    numel *= d;
    if (numel > Number.MAX_SAFE_INTEGER / 64) {
      throw new SafetensorsError(
        "validation-overflow",
        `${where}: element count of shape [${shape}] overflows`,
      );
    }
  }
  const bits = numel * dtypeBits(dtype);
  if (bits % 8 !== 0) {
    throw new SafetensorsError(
      "misaligned-slice",
      `${where}: ${numel} ${dtype} elements are not a whole number of bytes`,
    );
  }
  return { numel, byteLength: bits / 8 };
}

/** One header entry; offsets are checked before the shape, in the reference's order. */
function parseEntry(fileName: string, name: string, v: unknown): TensorInfo {
  const where = `tensor "${name}"`;
  if (!isPlainObject(v)) fail("invalid-tensor-entry", fileName, `${where}: entry is not an object`);
  for (const k of Object.keys(v)) {
    if (!ENTRY_KEYS.has(k)) fail("invalid-tensor-entry", fileName, `${where}: unexpected key "${k}"`);
  }
  for (const k of ENTRY_KEYS) {
    if (!(k in v)) fail("invalid-tensor-entry", fileName, `${where}: missing key "${k}"`);
  }
  const { dtype, shape, data_offsets: offsets } = v;
  if (typeof dtype !== "string") fail("invalid-tensor-entry", fileName, `${where}: dtype is not a string`);
  if (!isDtype(dtype)) fail("unknown-dtype", fileName, `${where}: unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape)) fail("invalid-shape", fileName, `${where}: shape is not an array`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isCount(offsets[0]) || !isCount(offsets[1])) {
    fail("invalid-offset", fileName, `${where}: data_offsets must be two non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin)
    fail("invalid-offset", fileName, `${where}: data_offsets [${begin}, ${end}] end before begin`);
  const { numel, byteLength } = tensorSize(`${fileName}: ${where}`, dtype, shape);
  if (end - begin !== byteLength) {
    fail(
      "invalid-tensor-info",
      fileName,
      `${where}: data_offsets span ${end - begin} bytes but ${dtype}[${shape}] needs ${byteLength}`,
    );
  }
  return { name, dtype, shape: shape.slice(), dataOffsets: [begin, end], numel, byteLength };
}

/**
 * Parse and validate the N header bytes of a safetensors file, as strictly as the reference's
 * `read_metadata` + `Metadata::validate`: UTF-8, starts with `{`, valid JSON without duplicate keys,
 * string-only `__metadata__`, known dtypes, exact tensor entries, byte lengths matching shapes, and
 * offsets tiling the data buffer from 0 with no gap or overlap. When `fileSize` is given, the data
 * buffer must end exactly at the end of the file. Trailing whitespace padding (or none) is accepted.
 */
export function parseHeader(header: Uint8Array, fileName: string, fileSize?: number): ParsedHeader {
  const headerLength = header.length;
  if (headerLength === 0 || header[0] !== 0x7b)
    fail("invalid-header-start", fileName, "header does not start with '{'");
  let text: string;
  try {
    text = utf8.decode(header);
  } catch (e) {
    fail("invalid-utf8", fileName, "header is not valid UTF-8", e);
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    fail("invalid-json", fileName, `header is not valid JSON (${(e as Error).message})`, e);
  }
  if (!isPlainObject(root)) fail("invalid-json", fileName, "header is not a JSON object");
  const problem = scanJson(text);
  if (problem?.kind === "duplicate-key") {
    const where = problem.topKey === null ? "" : ` in "${problem.topKey}"`;
    fail("duplicate-key", fileName, `duplicate key "${problem.key}"${where}`);
  }
  if (problem?.kind === "bad-number") {
    const where = problem.topKey === null ? "" : `entry "${problem.topKey}": `;
    fail("invalid-json", fileName, `${where}number ${problem.text} is not a non-negative integer`);
  }

  let metadata: Record<string, string> | null = null;
  const tensors: TensorInfo[] = [];
  for (const [name, v] of Object.entries(root)) {
    if (name === METADATA_KEY) {
      if (v === null) continue;
      if (!isPlainObject(v)) fail("invalid-metadata", fileName, "__metadata__ is not an object");
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== "string")
          fail("invalid-metadata", fileName, `__metadata__ value of "${k}" is not a string`);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    tensors.push(parseEntry(fileName, name, v));
  }

  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let end = 0;
  for (const t of tensors) {
    if (t.dataOffsets[0] !== end) {
      const what = t.dataOffsets[0] > end ? "leaves a gap" : "overlaps the previous tensor";
      fail(
        "invalid-offset",
        fileName,
        `tensor "${t.name}": data_offsets [${t.dataOffsets}] ${what} (expected begin ${end})`,
      );
    }
    end = t.dataOffsets[1];
  }
  const dataStart = HEADER_LENGTH_BYTES + headerLength;
  if (fileSize !== undefined && dataStart + end !== fileSize) {
    fail(
      "incomplete-buffer",
      fileName,
      `tensor data ends at byte ${dataStart + end} but the file has ${fileSize} bytes (data must end exactly at the end of the file)`,
    );
  }
  return { metadata, tensors, headerLength, dataStart, dataSize: end };
}
