import { type Dtype, dtypeRank, isDtype } from "./dtypes.js";
import { SafetensorsError } from "./errors.js";
import { type TensorInfo, tensorSize } from "./header.js";
import { HEADER_LENGTH_BYTES, MAX_HEADER_SIZE } from "./limits.js";

/** What the writer must know about a tensor before any byte is written. */
export interface TensorDescriptor {
  name: string;
  dtype: Dtype;
  /** Logical element counts (for F4/F6: elements, not bytes). */
  shape: readonly number[];
}

/** A tensor with its little-endian bytes, for the in-memory writer. */
export interface TensorWithData extends TensorDescriptor {
  data: Uint8Array;
}

/**
 * `__metadata__` for the writer: an object, a Map or a list of pairs. Keys are written in iteration
 * order; note that a plain object iterates integer-like keys ("1", "100") first in numeric order, so
 * use a Map or pairs when the on-disk key order matters.
 */
export type MetadataInput =
  | Readonly<Record<string, string>>
  | ReadonlyMap<string, string>
  | ReadonlyArray<readonly [string, string]>;

/** Where every tensor goes, and the header bytes, computed before any data is written. */
export interface SafetensorsLayout {
  /** The complete file prefix: 8-byte little-endian N followed by the N-byte space-padded JSON. */
  header: Uint8Array;
  /** Tensors in layout (= write) order, with their offsets in the data buffer. */
  tensors: TensorInfo[];
  /** Bytes of the data buffer. */
  dataSize: number;
  /** Total file size: header.length + dataSize. */
  fileSize: number;
}

/** `"__metadata__":{...}` with the pairs in iteration order; keys and values strings, keys unique. */
function metadataJson(fileName: string, metadata: MetadataInput): string {
  const entries: (readonly [string, string])[] =
    metadata instanceof Map || Array.isArray(metadata) ? [...metadata] : Object.entries(metadata);
  const seen = new Set<string>();
  for (const [k, v] of entries) {
    if (typeof k !== "string" || typeof v !== "string") {
      throw new SafetensorsError(
        "invalid-metadata",
        `${fileName}: __metadata__ "${String(k)}" must map a string to a string`,
      );
    }
    if (seen.has(k))
      throw new SafetensorsError("invalid-metadata", `${fileName}: duplicate __metadata__ key "${k}"`);
    seen.add(k);
  }
  return `"__metadata__":{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`;
}

function describe(fileName: string, d: TensorDescriptor): { numel: number; byteLength: number } {
  const where = `${fileName}: tensor "${d.name}"`;
  if (typeof d.name !== "string" || d.name === "__metadata__") {
    throw new SafetensorsError("invalid-argument", `${where}: invalid tensor name`);
  }
  if (!isDtype(d.dtype))
    throw new SafetensorsError("unknown-dtype", `${where}: unknown dtype ${JSON.stringify(d.dtype)}`);
  return tensorSize(where, d.dtype, d.shape);
}

/**
 * Lay out tensors as the reference writer (`safetensors/src/tensor.rs::prepare`) does: sorted by
 * dtype in descending enum order (widest types first), then by name (code-unit order, which equals
 * Rust's byte order for the BMP); offsets contiguous from 0; header JSON compact with `__metadata__`
 * first, then tensors in layout order, padded with spaces to a multiple of 8 bytes.
 */
export function planLayout(
  descriptors: readonly TensorDescriptor[],
  metadata?: MetadataInput | null,
  fileName = "<safetensors>",
): SafetensorsLayout {
  const names = new Set<string>();
  const sized = descriptors.map((d) => {
    if (names.has(d.name))
      throw new SafetensorsError("duplicate-key", `${fileName}: tensor "${d.name}" given twice`);
    names.add(d.name);
    return { d, ...describe(fileName, d) };
  });
  sized.sort((a, b) => dtypeRank(b.d.dtype) - dtypeRank(a.d.dtype) || compareUtf8(a.d.name, b.d.name));
  const parts = metadata == null ? [] : [metadataJson(fileName, metadata)];
  let offset = 0;
  const tensors: TensorInfo[] = sized.map(({ d: { name, dtype, shape }, numel, byteLength }) => {
    const begin = offset;
    offset += byteLength;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${shape.join(",")}],"data_offsets":[${begin},${offset}]}`,
    );
    return { name, dtype, shape: [...shape], dataOffsets: [begin, offset], numel, byteLength };
  });
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const n = Math.ceil(json.length / 8) * 8;
  if (n > MAX_HEADER_SIZE) {
    throw new SafetensorsError(
      "header-too-large",
      `${fileName}: header of ${n} bytes exceeds the limit of ${MAX_HEADER_SIZE}`,
    );
  }
  const header = new Uint8Array(HEADER_LENGTH_BYTES + n);
  new DataView(header.buffer).setBigUint64(0, BigInt(n), true);
  header.set(json, HEADER_LENGTH_BYTES);
  header.fill(0x20, HEADER_LENGTH_BYTES + json.length);
  return { header, tensors, dataSize: offset, fileSize: header.length + offset };
}

/** Compare strings by UTF-8 bytes (Rust's `String` order), which differs from UTF-16 order only above U+FFFF vs U+E000–U+FFFF. */
function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Throws unless `data` has exactly the byte length `info` requires. */
export function checkTensorBytes(fileName: string, info: TensorInfo, data: Uint8Array): void {
  if (!(data instanceof Uint8Array)) {
    throw new SafetensorsError(
      "invalid-argument",
      `${fileName}: tensor "${info.name}": data is not a Uint8Array`,
    );
  }
  if (data.length !== info.byteLength) {
    throw new SafetensorsError(
      "invalid-tensor-info",
      `${fileName}: tensor "${info.name}": got ${data.length} bytes but ${info.dtype}[${info.shape}] needs ${info.byteLength}`,
    );
  }
}

/**
 * Serialise tensors to a complete safetensors file in memory, byte-for-byte as the reference
 * writer (`safetensors.serialize` / `save_file`) lays it out (see `planLayout`). For the browser and
 * for tests; for large files use the streaming Node writer.
 */
export function serializeSafetensors(
  tensors: readonly TensorWithData[],
  options: { metadata?: MetadataInput | null; name?: string } = {},
): Uint8Array {
  const fileName = options.name ?? "<safetensors>";
  const layout = planLayout(tensors, options.metadata, fileName);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const out = new Uint8Array(layout.fileSize);
  out.set(layout.header, 0);
  let pos = layout.header.length;
  for (const info of layout.tensors) {
    const data = byName.get(info.name)!.data;
    checkTensorBytes(fileName, info, data);
    out.set(data, pos);
    pos += data.length;
  }
  return out;
}
