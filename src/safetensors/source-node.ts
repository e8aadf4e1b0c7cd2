import { closeSync, openSync, readSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { basename } from "node:path";
import { SafetensorsError } from "./errors.js";
import { MAX_READ_CHUNK } from "./limits.js";
import { type ByteSource, checkRange } from "./source.js";

/**
 * A Node file system failure on `path` as the layer's error, keeping the Node error as `cause`:
 * `not-found` for ENOENT (a path that does not exist), `read-failed` for anything else.
 */
export function readFailure(path: string, what: string, e: unknown): SafetensorsError {
  if (e instanceof SafetensorsError) return e;
  const code = (e as NodeJS.ErrnoException)?.code === "ENOENT" ? "not-found" : "read-failed";
  return new SafetensorsError(code, `${path}: ${what} (${e instanceof Error ? e.message : String(e)})`, {
    cause: e,
  });
}

/**
 * A source over a file on disk (Node). Each `read` allocates one buffer of the requested length and
 * fills it with positioned `FileHandle.read` calls (no intermediate copies); the handle stays open
 * until `close()`.
 */
export class NodeFileSource implements ByteSource {
  private constructor(
    private handle: FileHandle | null,
    readonly size: number,
    readonly name: string,
    readonly path: string,
  ) {}

  /** Open `path` for reading. `name` (for messages) defaults to the file's base name. */
  static async open(path: string, name = basename(path)): Promise<NodeFileSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (e) {
      throw readFailure(name, "cannot open", e);
    }
    try {
      return new NodeFileSource(handle, (await handle.stat()).size, name, path);
    } catch (e) {
      await handle.close();
      throw readFailure(name, "cannot stat", e);
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    const buf = Buffer.allocUnsafe(length);
    return this.readInto(offset, new Uint8Array(buf.buffer, buf.byteOffset, length));
  }

  async readInto(offset: number, target: Uint8Array): Promise<Uint8Array> {
    const length = target.length;
    checkRange(this.name, this.size, offset, length);
    if (this.handle === null) throw new SafetensorsError("read-failed", `${this.name}: source is closed`);
    let done = 0;
    try {
      while (done < length) {
        const want = Math.min(length - done, MAX_READ_CHUNK);
        const { bytesRead } = await this.handle.read(target, done, want, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (e) {
      throw readError(this.name, offset, length, e);
    }
    checkEnded(this.name, offset, length, done);
    // A plain view even when `target` is a Buffer, whose `slice` would not copy.
    return new Uint8Array(target.buffer, target.byteOffset, length);
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    await h?.close();
  }
}

const readError = (name: string, offset: number, length: number, e: unknown) =>
  new SafetensorsError("read-failed", `${name}: read of ${length} bytes at ${offset} failed`, { cause: e });

function checkEnded(name: string, offset: number, length: number, done: number): void {
  if (done !== length) {
    throw new SafetensorsError(
      "read-failed",
      `${name}: file ended after ${done} of ${length} bytes at ${offset}`,
    );
  }
}

/**
 * A file opened for synchronous positional reads, for worker threads that read straight into the
 * memory they compute on (a WebAssembly kernel's, say) and have nothing else to do meanwhile. The
 * same errors as `NodeFileSource`; `close` it when done.
 */
export class SyncFileReader {
  private fd: number | null;

  /** Opens `path`; `name` (the shard file) is what messages name. */
  constructor(
    path: string,
    readonly name: string,
  ) {
    try {
      this.fd = openSync(path, "r");
    } catch (e) {
      throw readFailure(name, "cannot open", e);
    }
  }

  /** Fills `target` with the bytes at absolute `offset`; a file that ends first is `read-failed`. */
  readInto(offset: number, target: Uint8Array): void {
    const length = target.length;
    if (this.fd === null) throw new SafetensorsError("read-failed", `${this.name}: source is closed`);
    let done = 0;
    try {
      while (done < length) {
        const want = Math.min(length - done, MAX_READ_CHUNK);
        const n = readSync(this.fd, target, done, want, offset + done);
        if (n === 0) break;
        done += n;
      }
    } catch (e) {
      throw readError(this.name, offset, length, e);
    }
    checkEnded(this.name, offset, length, done);
  }

  close(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) closeSync(fd);
  }
}
