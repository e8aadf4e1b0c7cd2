import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { type CheckpointDir, checkSideFileSize, SINGLE_FILE_SIDE_FILES } from "./checkpoint-dir.js";
import { SafetensorsError } from "./errors.js";
import { checkShardName } from "./index-json.js";
import { MAX_INDEX_SIZE } from "./limits.js";
import type { ByteSource } from "./source.js";
import { NodeFileSource, readFailure } from "./source-node.js";

/**
 * A checkpoint directory on disk (Node). `path` may be the directory, an index file (`*.index.json`,
 * then `indexFile` names it), or one `.safetensors` file (then only it and its side files are
 * listed, and `file` names it). Every byte read through it (side files and shard reads) is added to
 * `bytesRead`, so tests can check that a command read headers only.
 */
export class NodeCheckpointDir implements CheckpointDir {
  bytesRead = 0;
  readonly name: string;

  private constructor(
    /** The directory. */
    readonly dir: string,
    /** The single `.safetensors` file `path` named, or null. */
    readonly file: string | null,
    /** The index file `path` named, or null. */
    readonly indexFile: string | null,
  ) {
    this.name = basename(resolve(dir));
  }

  /** Open `path`; a path that does not exist is a `not-found` error naming it. */
  static async open(path: string): Promise<NodeCheckpointDir> {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(path);
    } catch (e) {
      throw readFailure(path, "cannot open", e);
    }
    if (st.isDirectory()) return new NodeCheckpointDir(path, null, null);
    if (path.endsWith(".index.json")) return new NodeCheckpointDir(dirname(path), null, basename(path));
    if (path.endsWith(".safetensors")) return new NodeCheckpointDir(dirname(path), basename(path), null);
    throw new SafetensorsError(
      "invalid-argument",
      `${path}: not a directory, an index file or a .safetensors file`,
    );
  }

  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      throw readFailure(this.dir, "cannot list the directory", e);
    }
    if (this.file === null) return names.sort();
    return names.filter((n) => n === this.file || SINGLE_FILE_SIDE_FILES.includes(n)).sort();
  }

  async readBytes(file: string, maxBytes = MAX_INDEX_SIZE): Promise<Uint8Array | null> {
    checkShardName(file, this.name);
    const p = join(this.dir, file);
    let size: number;
    try {
      size = (await stat(p)).size;
    } catch {
      return null;
    }
    checkSideFileSize(file, size, maxBytes);
    let bytes: Buffer;
    try {
      bytes = await readFile(p);
    } catch (e) {
      throw readFailure(p, "cannot read", e);
    }
    this.bytesRead += bytes.length;
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  async readText(file: string, maxBytes?: number): Promise<string | null> {
    const bytes = await this.readBytes(file, maxBytes);
    return bytes === null ? null : new TextDecoder().decode(bytes);
  }

  localPath(file: string): string {
    checkShardName(file, this.name);
    return join(this.dir, file);
  }

  async open(file: string): Promise<ByteSource> {
    checkShardName(file, this.name);
    const src = await NodeFileSource.open(join(this.dir, file), file);
    // Counts both `read` and `readInto` (without copying) into `bytesRead`.
    const count = (b: Uint8Array) => {
      this.bytesRead += b.length;
      return b;
    };
    return {
      name: src.name,
      size: src.size,
      read: async (offset, length) => count(await src.read(offset, length)),
      readInto: async (offset, target) => count(await src.readInto(offset, target)),
      close: () => src.close(),
    };
  }
}
