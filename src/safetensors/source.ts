import { SafetensorsError } from "./errors.js";

/**
 * Random-access bytes: a file handle, a browser Blob/File, or a buffer. The reader asks for the
 * header first and then only the byte ranges of the tensors it is asked for, so a source never
 * needs more memory than one tensor. `read` resolves exactly `length` bytes or rejects.
 */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Name used in error messages (usually the file name). */
  readonly name: string;
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: fill `target` with the `target.length` bytes at `offset` and return it. Lets callers
   * reuse one buffer across tensors (fresh multi-hundred-MB buffers cost page faults on every read).
   */
  readInto?(offset: number, target: Uint8Array): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** Throws unless `[offset, offset + length)` lies within a source of `size` bytes. */
export function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new SafetensorsError("invalid-argument", `${name}: invalid read range ${offset}+${length}`);
  }
  if (offset + length > size) {
    throw new SafetensorsError(
      "read-failed",
      `${name}: read of ${length} bytes at ${offset} runs past the end (${size} bytes)`,
    );
  }
}

/** A source over bytes already in memory; `read` returns zero-copy subarrays. */
export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(
    readonly bytes: Uint8Array,
    readonly name = "<buffer>",
  ) {
    this.size = bytes.length;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
}

/** A source over a browser `Blob` or `File` (also Node's `Blob`): each read slices and loads one range. */
export class BlobSource implements ByteSource {
  readonly size: number;
  readonly name: string;
  constructor(
    readonly blob: Blob,
    name?: string,
  ) {
    this.size = blob.size;
    this.name = name ?? ((blob as { name?: unknown }).name as string | undefined) ?? "<blob>";
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    let buf: ArrayBuffer;
    try {
      buf = await this.blob.slice(offset, offset + length).arrayBuffer();
    } catch (e) {
      throw new SafetensorsError("read-failed", `${this.name}: reading ${length} bytes at ${offset} failed`, {
        cause: e,
      });
    }
    if (buf.byteLength !== length) {
      throw new SafetensorsError(
        "read-failed",
        `${this.name}: short read at ${offset} (${buf.byteLength} of ${length} bytes)`,
      );
    }
    return new Uint8Array(buf);
  }
}
