/**
 * Atomic file writes (Node) for every file fp8kit writes: filled under a temporary name beside the
 * final one, fsynced, renamed over it and the directory fsynced, so a crash leaves the old file or
 * the complete new one, never a torn file (the `os.replace` pattern of huggingface_hub's writers).
 */
import { randomBytes } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { SafetensorsError } from "./errors.js";
import { fsAdvice, type WriteHandle, writeFs } from "./fs-node.js";
import { MAX_READ_CHUNK } from "./limits.js";

/** Random hex digits in a temporary name, so two writers of the same file never collide. */
const TEMP_RANDOM_BYTES = 6;

/** Bytes per read when copying a file (a buffer this size is held during the copy). */
const COPY_CHUNK = 8 << 20;

/** `.name.tmp-<pid>-<random>` beside `path`: hidden, and tied to the process that made it. */
export function tempPathFor(path: string): string {
  const random = randomBytes(TEMP_RANDOM_BYTES).toString("hex");
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${random}`);
}

const TEMP_NAME = /^\.(.+)\.tmp-\d+-[0-9a-f]+$/;

/** The final file name a temporary name of `tempPathFor` stands for, or null for any other name. */
export function targetOfTempName(entry: string): string | null {
  return TEMP_NAME.exec(entry)?.[1] ?? null;
}

const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** A file system failure of writing `path`, as the layer's error (keeping the Node error as cause). */
function writeFailure(path: string, what: string, e: unknown): SafetensorsError {
  if (e instanceof SafetensorsError) return e;
  const advice = fsAdvice(e);
  const message = `${path}: ${what} failed${advice ? `: ${advice}` : ""} (${reason(e)})`;
  return new SafetensorsError("write-failed", message, { cause: e });
}

/** Makes a rename in `dir` durable on POSIX; directories cannot be opened for fsync on Windows. */
async function syncDirectory(dir: string): Promise<void> {
  let h: FileHandle | undefined;
  try {
    h = await open(dir, "r");
    await h.sync();
  } catch {
    // best effort: the data itself was fsynced before the rename
  } finally {
    await h?.close().catch(() => {});
  }
}

/**
 * A file being written atomically: positional writes go to a temporary file beside `path`;
 * `finish` fsyncs, closes, renames it over `path` and fsyncs the directory; `abort` (idempotent)
 * closes and deletes it. Failures are `SafetensorsError`s ("write-failed") naming `path`; any
 * failure in `writeAt` or `finish` aborts the file first.
 *
 * With `flushEvery` (bytes), an fsync starts in the background each time that many bytes have been
 * written since the last one began (one at a time, never awaited by `writeAt`): the disk then
 * writes a large file while it is being computed, instead of all of it in the final fsync (which
 * took 2.1-2.5 s for a 3 GB shard, with nothing else running; docs/CONVERT.md). A background fsync
 * that fails fails the file like a write: the next `writeAt` or `finish` aborts it and reports the
 * error (Linux reports a writeback error to one fsync only, so it must not be dropped).
 */
export class AtomicFile {
  /** Bytes written so far. */
  bytesWritten = 0;
  /** The first failure of a write: later writes (in flight or queued) report it, not "file is closed". */
  private failure: SafetensorsError | null = null;
  /** The background fsync in flight, if any. */
  private flushing: Promise<void> | null = null;
  /** Bytes written since the last background fsync began. */
  private unflushed = 0;
  /** Background fsyncs started (tests). */
  flushes = 0;

  private constructor(
    readonly path: string,
    readonly tempPath: string,
    private handle: WriteHandle | null,
    private readonly flushEvery: number,
  ) {}

  /** Create the temporary file (it must not exist; its name is random). */
  static async create(path: string, options: { flushEvery?: number } = {}): Promise<AtomicFile> {
    const tempPath = tempPathFor(path);
    try {
      return new AtomicFile(path, tempPath, await writeFs().open(tempPath, "wx"), options.flushEvery ?? 0);
    } catch (e) {
      throw writeFailure(path, `creating the temporary file ${basename(tempPath)}`, e);
    }
  }

  /** Start a background fsync once `flushEvery` bytes are written and none is in flight. */
  private maybeFlush(): void {
    const h = this.handle;
    if (this.flushEvery <= 0 || this.unflushed < this.flushEvery || this.flushing !== null || h === null)
      return;
    this.unflushed = 0;
    this.flushes++;
    this.flushing = h
      .sync()
      .catch((e) => {
        this.failure ??= writeFailure(this.path, "flushing written data to disk (fsync)", e);
      })
      .finally(() => {
        this.flushing = null;
      });
  }

  /**
   * Write all of `data` at byte `position` (concurrent calls at disjoint positions are fine);
   * `what` names the bytes in an error message (default: their count and position).
   */
  async writeAt(position: number, data: Uint8Array, what?: string): Promise<void> {
    try {
      if (this.handle === null || this.failure !== null)
        throw this.failure ?? new SafetensorsError("write-failed", `${this.path}: file is closed`);
      let done = 0;
      while (done < data.length) {
        const len = Math.min(data.length - done, MAX_READ_CHUNK);
        const { bytesWritten } = await this.handle.write(data, done, len, position + done);
        done += bytesWritten;
      }
      this.bytesWritten += data.length;
      this.unflushed += data.length;
      this.maybeFlush();
    } catch (e) {
      this.failure ??= writeFailure(this.path, `writing ${what ?? `${data.length} bytes at ${position}`}`, e);
      await this.abort();
      throw this.failure;
    }
  }

  /** Fsync, close and rename into place, then fsync the directory. */
  async finish(): Promise<void> {
    try {
      await this.flushing;
      if (this.failure !== null) throw this.failure;
      const h = this.handle;
      if (h === null) throw new SafetensorsError("write-failed", `${this.path}: file is closed`);
      await h.sync();
      this.handle = null;
      await h.close();
      await writeFs().rename(this.tempPath, this.path);
    } catch (e) {
      await this.abort();
      throw writeFailure(this.path, "finishing (fsync and rename)", e);
    }
    await syncDirectory(dirname(this.path));
  }

  /** Close and delete the temporary file (idempotent; never throws). */
  async abort(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    await h?.close().catch(() => {});
    await writeFs()
      .unlink(this.tempPath)
      .catch(() => {});
  }
}

/** Write `data` (text is UTF-8) to `path` atomically. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const f = await AtomicFile.create(path);
  await f.writeAt(0, typeof data === "string" ? new TextEncoder().encode(data) : data);
  await f.finish();
}

/** Copy the file `from` to `to` atomically, one `MAX_READ_CHUNK`-bounded piece at a time. */
export async function copyFileAtomic(from: string, to: string): Promise<void> {
  let src: FileHandle;
  try {
    src = await open(from, "r");
  } catch (e) {
    throw new SafetensorsError("read-failed", `${from}: cannot open (${reason(e)})`, { cause: e });
  }
  const f = await AtomicFile.create(to);
  try {
    const size = (await src.stat()).size;
    const buf = new Uint8Array(Math.min(size, COPY_CHUNK));
    for (let pos = 0; pos < size; ) {
      const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) throw new Error(`file ended at ${pos} of ${size} bytes`);
      await f.writeAt(pos, buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    await f.finish();
  } catch (e) {
    await f.abort();
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError("read-failed", `${from}: reading failed (${reason(e)})`, { cause: e });
  } finally {
    await src.close().catch(() => {});
  }
}
