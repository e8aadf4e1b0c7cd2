import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { SafetensorsError } from "./errors.js";
import type { TensorInfo } from "./header.js";
import { MAX_READ_CHUNK } from "./limits.js";
import {
  checkTensorBytes,
  type MetadataInput,
  planLayout,
  type SafetensorsLayout,
  type TensorDescriptor,
} from "./writer.js";

/**
 * Where the streaming writer gets tensor bytes: a callback it calls once per tensor in layout
 * order, or an (async) iterable yielding the tensors in layout order (bare bytes, or `{ name, data }`
 * so the writer can check the order).
 */
export type TensorBytesSource =
  | ((info: TensorInfo) => Promise<Uint8Array> | Uint8Array)
  | AsyncIterable<Uint8Array | { name: string; data: Uint8Array }>
  | Iterable<Uint8Array | { name: string; data: Uint8Array }>;

/** Name of the temporary file the writer fills before renaming it to `path`. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes the rename durable on POSIX; directories cannot be opened for sync on Windows.
  let h: FileHandle | undefined;
  try {
    h = await open(dir, "r");
    await h.sync();
  } catch {
    // best effort
  } finally {
    await h?.close().catch(() => {});
  }
}

/**
 * An atomic, streaming safetensors file writer (Node). The layout (and so the header) is computed
 * from the descriptors up front, as the reference writer does; tensors are then written one at a
 * time in layout order, so memory stays at one tensor. Everything goes to a temporary file in the
 * target directory (`.name.tmp-<pid>-<random>`), which `finish` fsyncs and renames over `path`: a
 * crash never leaves a file under the final name that looks complete. Any failure removes the
 * temporary file and throws a `SafetensorsError` naming the file and tensor.
 */
export class SafetensorsFileWriter {
  private next = 0;
  private pos: number;
  private handle: FileHandle | null;

  private constructor(
    readonly path: string,
    readonly tempPath: string,
    readonly layout: SafetensorsLayout,
    handle: FileHandle,
  ) {
    this.handle = handle;
    this.pos = layout.header.length;
  }

  /** Plan the layout, create the temporary file and write the header. */
  static async create(
    path: string,
    descriptors: readonly TensorDescriptor[],
    options: { metadata?: MetadataInput | null } = {},
  ): Promise<SafetensorsFileWriter> {
    const name = basename(path);
    const layout = planLayout(descriptors, options.metadata, name);
    const tempPath = tempPathFor(path);
    let handle: FileHandle;
    try {
      handle = await open(tempPath, "wx");
    } catch (e) {
      throw new SafetensorsError(
        "write-failed",
        `${name}: cannot create ${tempPath} (${(e as Error).message})`,
        { cause: e },
      );
    }
    const w = new SafetensorsFileWriter(path, tempPath, layout, handle);
    try {
      await w.writeAll(layout.header, 0);
    } catch (e) {
      await w.abort();
      throw w.wrap(e, "writing the header");
    }
    return w;
  }

  get name(): string {
    return basename(this.path);
  }

  /** The tensor `write` expects next, or null when all have been written. */
  get nextTensor(): TensorInfo | null {
    return this.layout.tensors[this.next] ?? null;
  }

  /** Write the next tensor's bytes; `name` must be `nextTensor.name`. Aborts the file on error. */
  async write(name: string, data: Uint8Array): Promise<void> {
    const info = this.nextTensor;
    try {
      if (this.handle === null) throw new SafetensorsError("write-failed", `${this.name}: writer is closed`);
      if (info === null)
        throw new SafetensorsError(
          "invalid-argument",
          `${this.name}: tensor "${name}" is not in the layout or was written already`,
        );
      if (info.name !== name) {
        throw new SafetensorsError(
          "invalid-argument",
          `${this.name}: expected tensor "${info.name}" next (layout order), got "${name}"`,
        );
      }
      checkTensorBytes(this.name, info, data);
      await this.writeAll(data, this.pos);
      this.pos += data.length;
      this.next++;
    } catch (e) {
      await this.abort();
      throw this.wrap(e, `tensor "${name}"`);
    }
  }

  /** Check every tensor was written, fsync, close and rename into place (then fsync the directory). */
  async finish(): Promise<void> {
    try {
      if (this.handle === null) throw new SafetensorsError("write-failed", `${this.name}: writer is closed`);
      const missing = this.nextTensor;
      if (missing !== null)
        throw new SafetensorsError(
          "invalid-argument",
          `${this.name}: tensor "${missing.name}" was never written`,
        );
      await this.handle.sync();
      const h = this.handle;
      this.handle = null;
      await h.close();
      await rename(this.tempPath, this.path);
    } catch (e) {
      await this.abort();
      throw this.wrap(e, "finishing");
    }
    await syncDirectory(dirname(this.path));
  }

  /** Close and delete the temporary file (idempotent). */
  async abort(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    await h?.close().catch(() => {});
    await unlink(this.tempPath).catch(() => {});
  }

  private async writeAll(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const len = Math.min(data.length - done, MAX_READ_CHUNK);
      const { bytesWritten } = await this.handle!.write(data, done, len, position + done);
      done += bytesWritten;
    }
  }

  private wrap(e: unknown, what: string): SafetensorsError {
    if (e instanceof SafetensorsError) return e;
    const msg = e instanceof Error ? e.message : String(e);
    return new SafetensorsError("write-failed", `${this.name}: ${what} failed (${msg})`, { cause: e });
  }
}

/**
 * Write a safetensors file at `path` atomically from tensor descriptors and a source of their bytes
 * (see `TensorBytesSource`), holding one tensor in memory at a time. Returns the layout written.
 */
export async function writeSafetensorsFile(
  path: string,
  descriptors: readonly TensorDescriptor[],
  source: TensorBytesSource,
  options: { metadata?: MetadataInput | null } = {},
): Promise<SafetensorsLayout> {
  const w = await SafetensorsFileWriter.create(path, descriptors, options);
  try {
    if (typeof source === "function") {
      for (const info of w.layout.tensors) await w.write(info.name, await source(info));
    } else {
      for await (const item of source) {
        const info = w.nextTensor;
        if (item instanceof Uint8Array) {
          if (info === null)
            throw new SafetensorsError(
              "invalid-argument",
              `${w.name}: source yielded more tensors than the layout holds`,
            );
          await w.write(info.name, item);
        } else {
          await w.write(item.name, item.data);
        }
      }
    }
    await w.finish();
  } catch (e) {
    await w.abort();
    if (e instanceof SafetensorsError) throw e;
    const at = w.nextTensor ? ` at tensor "${w.nextTensor.name}"` : "";
    throw new SafetensorsError(
      "write-failed",
      `${w.name}: tensor source failed${at} (${(e as Error)?.message ?? e})`,
      { cause: e },
    );
  }
  return w.layout;
}
