import { SafetensorsError } from "./errors.js";
import { type ParsedHeader, parseHeader, readHeaderLength, type TensorInfo } from "./header.js";
import { HEADER_LENGTH_BYTES } from "./limits.js";
import type { ByteSource } from "./source.js";
import { type TypedArrayFor, viewAs } from "./views.js";

/** A tensor's bytes viewed as its dtype's typed array (see `DtypeArrayMap`). */
export interface TypedTensor {
  info: TensorInfo;
  data: TypedArrayFor<TensorInfo["dtype"]>;
}

/** Tensors looked up and read by name: shared by one file (`SafetensorsFile`) and a `Checkpoint`. */
export abstract class TensorTable<T extends TensorInfo> {
  protected readonly byName = new Map<string, T>();
  /** Name used in messages. */
  abstract readonly name: string;

  /**
   * `length` bytes at byte `offset` of tensor `name`'s data, with one positioned read (into `into`,
   * returned as a view of its first `length` bytes, when given).
   */
  abstract readRange(name: string, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The header entry of `name`; throws `tensor-not-found` when absent. */
  get(name: string): T {
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
    return this.readRange(name, 0, this.get(name).byteLength, into);
  }

  /** The tensor viewed as its typed array (zero-copy when aligned; see `viewAs`). */
  async readTyped(name: string): Promise<TypedTensor> {
    const info = this.get(name);
    return { info, data: viewAs(info.dtype, await this.readBytes(name)) };
  }
}

/**
 * A safetensors file opened for reading. `open` reads and validates only the 8-byte length and the
 * header; tensor data is read on demand, one byte range per call, so memory stays at the size of
 * the tensor asked for. Validation follows the reference reader (see `parseHeader`).
 */
export class SafetensorsFile extends TensorTable<TensorInfo> {
  private constructor(
    readonly source: ByteSource,
    readonly header: ParsedHeader,
  ) {
    super();
    for (const t of header.tensors) this.byName.set(t.name, t);
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

  async close(): Promise<void> {
    await this.source.close?.();
  }
}

/**
 * Read `length` bytes at byte `offset` of tensor `t`'s data, whose first byte is at absolute offset
 * `begin` of `source`: into `into` (its first `length` bytes, returned as a view of it) when given,
 * with the source's `readInto` when it has one, else into a fresh array. A range outside the tensor
 * or a buffer too small is an `invalid-argument` error naming file and tensor.
 */
export async function readTensorRange(
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
  if (into === undefined) return source.read(begin + offset, length);
  if (into.length < length) {
    throw new SafetensorsError(
      "invalid-argument",
      `${where}: buffer of ${into.length} bytes is smaller than the ${length} to read`,
    );
  }
  const target = into.subarray(0, length);
  if (source.readInto) return source.readInto(begin + offset, target);
  target.set(await source.read(begin + offset, length));
  return target;
}
