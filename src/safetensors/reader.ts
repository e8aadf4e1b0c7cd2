import { SafetensorsError } from "./errors.js";
import { type ParsedHeader, parseHeader, readHeaderLength, type TensorInfo } from "./header.js";
import { HEADER_LENGTH_BYTES } from "./limits.js";
import { type ByteSource, readRange } from "./source.js";
import { type TypedArrayFor, viewAs } from "./views.js";

/** A tensor's bytes viewed as its dtype's typed array (see `DtypeArrayMap`). */
export interface TypedTensor {
  info: TensorInfo;
  data: TypedArrayFor<TensorInfo["dtype"]>;
}

/**
 * A safetensors file opened for reading. `open` reads and validates only the 8-byte length and the
 * header; tensor data is read on demand, one byte range per call, so memory stays at the size of
 * the tensor asked for. Validation follows the reference reader (see `parseHeader`).
 */
export class SafetensorsFile {
  private readonly byName: Map<string, TensorInfo>;

  private constructor(
    readonly source: ByteSource,
    readonly header: ParsedHeader,
  ) {
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  /** Read and validate the header of `source`. On failure the source is left open for the caller. */
  static async open(source: ByteSource): Promise<SafetensorsFile> {
    const size = source.size;
    const prefix =
      size >= HEADER_LENGTH_BYTES ? await source.read(0, HEADER_LENGTH_BYTES) : new Uint8Array(0);
    const n = readHeaderLength(prefix, source.name, size);
    const headerBytes = await source.read(HEADER_LENGTH_BYTES, n);
    return new SafetensorsFile(source, parseHeader(headerBytes, source.name, size));
  }

  /** File name used in messages. */
  get name(): string {
    return this.source.name;
  }

  /** The tensors in data order (ascending offsets). */
  get tensors(): readonly TensorInfo[] {
    return this.header.tensors;
  }

  /** `__metadata__`, or null when the file has none. */
  get metadata(): Record<string, string> | null {
    return this.header.metadata;
  }

  /** Absolute file offset of the first data byte (8 + header length). */
  get dataStart(): number {
    return this.header.dataStart;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The header entry of `name`; throws `tensor-not-found` when absent. */
  get(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (t === undefined)
      throw new SafetensorsError("tensor-not-found", `${this.name}: no tensor named "${name}"`);
    return t;
  }

  /**
   * The raw little-endian bytes of tensor `name` (exactly its byte range, read with one call).
   * With `into` (at least `byteLength` bytes), the bytes are read into it and a subarray of it is
   * returned, so one buffer can be reused across tensors.
   */
  async readBytes(name: string, into?: Uint8Array): Promise<Uint8Array> {
    const t = this.get(name);
    return readTensorRange(
      this.source,
      this.name,
      t,
      this.dataStart + t.dataOffsets[0],
      0,
      t.byteLength,
      into,
    );
  }

  /** `length` bytes at byte `offset` of tensor `name`'s data (into `into` when given). */
  async readRange(name: string, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const t = this.get(name);
    return readTensorRange(
      this.source,
      this.name,
      t,
      this.dataStart + t.dataOffsets[0],
      offset,
      length,
      into,
    );
  }

  /** The tensor viewed as its typed array (zero-copy when aligned; see `viewAs`). */
  async readTyped(name: string): Promise<TypedTensor> {
    const info = this.get(name);
    const bytes = await this.readBytes(name);
    return { info, data: viewAs(info.dtype, bytes) };
  }

  async close(): Promise<void> {
    await this.source.close?.();
  }
}

/**
 * Read `length` bytes at byte `offset` of tensor `t`'s data, whose first byte is at absolute offset
 * `begin` of `source` (into `into` when given; see `readRange`). A range
 * outside the tensor or a buffer too small is an `invalid-argument` error naming file and tensor.
 */
export function readTensorRange(
  source: ByteSource,
  fileName: string,
  t: TensorInfo,
  begin: number,
  offset: number,
  length: number,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const where = `${fileName}: tensor "${t.name}"`;
  const inside = Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0;
  if (!inside || offset + length > t.byteLength) {
    throw new SafetensorsError(
      "invalid-argument",
      `${where}: range ${offset}+${length} is outside its ${t.byteLength} bytes`,
    );
  }
  if (into !== undefined && into.length < length) {
    throw new SafetensorsError(
      "invalid-argument",
      `${where}: buffer of ${into.length} bytes is smaller than the ${length} to read`,
    );
  }
  return readRange(source, begin + offset, length, into);
}
