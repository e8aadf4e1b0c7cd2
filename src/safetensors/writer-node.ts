import { basename } from "node:path";
import { AtomicFile } from "./atomic-node.js";
import { SafetensorsError } from "./errors.js";
import type { TensorInfo } from "./header.js";
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

/**
 * A safetensors file written at offsets (Node), for writers that produce a tensor in pieces and in
 * any order (convert's bands, several at once). The layout (and so the header) is planned up front
 * (`planLayout`); `create` writes the header to an `AtomicFile`; `writeTensorAt` puts bytes at an
 * offset inside one tensor's data; `finish` checks that every tensor received exactly its byte
 * length, then fsyncs and renames into place. Failures abort the file (no temporary file is left)
 * and are `SafetensorsError`s naming the file and, where known, the tensor.
 */
export class PositionalSafetensorsWriter {
  private readonly byName: Map<string, TensorInfo>;
  private readonly received = new Map<string, number>();

  private constructor(
    readonly layout: SafetensorsLayout,
    private readonly file: AtomicFile,
  ) {
    this.byName = new Map(layout.tensors.map((t) => [t.name, t]));
  }

  /** Create the temporary file for `layout` at `path` and write the header. */
  static async create(
    path: string,
    layout: SafetensorsLayout,
    options: { flushEvery?: number } = {},
  ): Promise<PositionalSafetensorsWriter> {
    const file = await AtomicFile.create(path, options);
    await file.writeAt(0, layout.header, "the header");
    return new PositionalSafetensorsWriter(layout, file);
  }

  get path(): string {
    return this.file.path;
  }

  get tempPath(): string {
    return this.file.tempPath;
  }

  /** File name used in messages. */
  get name(): string {
    return basename(this.file.path);
  }

  /** Bytes written so far, header included. */
  get bytesWritten(): number {
    return this.file.bytesWritten;
  }

  /** Background fsyncs started so far (`flushEvery`). */
  get flushes(): number {
    return this.file.flushes;
  }

  /** Write `data` at byte `offset` of tensor `name`'s data. Aborts the file on error. */
  async writeTensorAt(name: string, offset: number, data: Uint8Array): Promise<void> {
    const t = this.byName.get(name);
    if (t === undefined || !(offset >= 0 && offset + data.length <= t.byteLength)) {
      await this.abort();
      throw new SafetensorsError(
        "invalid-argument",
        t === undefined
          ? `${this.name}: tensor "${name}" is not in the layout`
          : `${this.name}: tensor "${name}": ${data.length} bytes at ${offset} run past its ${t.byteLength}`,
      );
    }
    const position = this.layout.header.length + t.dataOffsets[0] + offset;
    await this.file.writeAt(position, data, `tensor "${name}"`);
    this.received.set(name, (this.received.get(name) ?? 0) + data.length);
  }

  /** Check every tensor was written in full, fsync, rename into place and fsync the directory. */
  async finish(): Promise<void> {
    for (const t of this.layout.tensors) {
      const got = this.received.get(t.name) ?? 0;
      if (got !== t.byteLength) {
        await this.abort();
        const what = got === 0 ? "was never written" : `got ${got} of its ${t.byteLength} bytes`;
        throw new SafetensorsError("invalid-argument", `${this.name}: tensor "${t.name}" ${what}`);
      }
    }
    await this.file.finish();
  }

  /** Close and delete the temporary file (idempotent). */
  async abort(): Promise<void> {
    await this.file.abort();
  }
}

/**
 * An atomic, streaming safetensors file writer (Node): tensors are written whole, one at a time in
 * layout order, as the reference writer lays them out, so memory stays at one tensor. Built on
 * `PositionalSafetensorsWriter` (same temporary file, checks and errors); adds the order check.
 */
export class SafetensorsFileWriter {
  private next = 0;

  private constructor(private readonly out: PositionalSafetensorsWriter) {}

  /** Plan the layout, create the temporary file and write the header. */
  static async create(
    path: string,
    descriptors: readonly TensorDescriptor[],
    options: { metadata?: MetadataInput | null } = {},
  ): Promise<SafetensorsFileWriter> {
    const layout = planLayout(descriptors, options.metadata, basename(path));
    return new SafetensorsFileWriter(await PositionalSafetensorsWriter.create(path, layout));
  }

  get path(): string {
    return this.out.path;
  }

  get tempPath(): string {
    return this.out.tempPath;
  }

  get layout(): SafetensorsLayout {
    return this.out.layout;
  }

  get name(): string {
    return this.out.name;
  }

  /** The tensor `write` expects next, or null when all have been written. */
  get nextTensor(): TensorInfo | null {
    return this.layout.tensors[this.next] ?? null;
  }

  /** Write the next tensor's bytes; `name` must be `nextTensor.name`. Aborts the file on error. */
  async write(name: string, data: Uint8Array): Promise<void> {
    const info = this.nextTensor;
    try {
      if (info?.name !== name) {
        const what = info
          ? `expected tensor "${info.name}" next (layout order), got "${name}"`
          : `tensor "${name}" is not in the layout or was written already`;
        throw new SafetensorsError("invalid-argument", `${this.name}: ${what}`);
      }
      checkTensorBytes(this.name, info, data);
    } catch (e) {
      await this.abort();
      throw e;
    }
    await this.out.writeTensorAt(name, 0, data);
    this.next++;
  }

  /** Check every tensor was written, fsync, close and rename into place (then fsync the directory). */
  async finish(): Promise<void> {
    await this.out.finish();
  }

  /** Close and delete the temporary file (idempotent). */
  async abort(): Promise<void> {
    await this.out.abort();
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
        const next = w.nextTensor;
        if (!(item instanceof Uint8Array)) await w.write(item.name, item.data);
        else if (next) await w.write(next.name, item);
        else
          throw new SafetensorsError(
            "invalid-argument",
            `${w.name}: source yielded more tensors than the layout holds`,
          );
      }
    }
    await w.finish();
  } catch (e) {
    await w.abort();
    if (e instanceof SafetensorsError) throw e;
    const at = w.nextTensor ? ` at tensor "${w.nextTensor.name}"` : "";
    const message = `${w.name}: tensor source failed${at} (${(e as Error)?.message ?? e})`;
    throw new SafetensorsError("write-failed", message, { cause: e });
  }
  return w.layout;
}
