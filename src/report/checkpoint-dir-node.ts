import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { Fp8kitError } from "../errors.js";
import { type ByteSource, checkShardName, INDEX_FILE_NAME } from "../safetensors/index.js";
import { NodeFileSource } from "../safetensors/node.js";
import type { CheckpointDir } from "./checkpoint-dir.js";

/** Largest config/index JSON read (the biggest real indexes are about 60 MB). */
const MAX_JSON_BYTES = 128 * 1024 * 1024;

/**
 * A checkpoint directory on disk. `path` may be the directory, its index file, or one
 * `.safetensors` file (then only that shard is listed). Every byte read through it (JSON files and
 * shard reads) is added to `bytesRead`, so tests can check that a command read headers only.
 */
export class NodeCheckpointDir implements CheckpointDir {
  bytesRead = 0;
  readonly name: string;
  private constructor(
    readonly dir: string,
    private readonly only: string | null,
  ) {
    this.name = basename(resolve(dir));
  }

  /** Opens `path`; throws an `Fp8kitError` naming it when it does not exist. */
  static async open(path: string): Promise<NodeCheckpointDir> {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(path);
    } catch (e) {
      throw new Fp8kitError(
        "not-found",
        `${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    if (st.isDirectory()) return new NodeCheckpointDir(path, null);
    if (path.endsWith(".index.json") || basename(path) === INDEX_FILE_NAME)
      return new NodeCheckpointDir(dirname(path), null);
    if (path.endsWith(".safetensors")) return new NodeCheckpointDir(dirname(path), basename(path));
    throw new Fp8kitError("bad-input", `${path}: not a directory, an index file or a .safetensors file`);
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.dir);
    if (this.only === null) return names.sort();
    return names.filter((n) => n === this.only || n === "config.json" || n === "hf_quant_config.json");
  }

  async readText(file: string): Promise<string | null> {
    checkShardName(file, this.name);
    const p = join(this.dir, file);
    let size: number;
    try {
      size = (await stat(p)).size;
    } catch {
      return null;
    }
    if (size > MAX_JSON_BYTES)
      throw new Fp8kitError("too-large", `${file}: ${size} bytes is larger than ${MAX_JSON_BYTES}`);
    const text = await readFile(p, "utf8");
    this.bytesRead += size;
    return text;
  }

  async open(file: string): Promise<ByteSource> {
    checkShardName(file, this.name);
    const src = await NodeFileSource.open(join(this.dir, file), file);
    // Count bytes (the wrapper keeps the source's own read, so nothing is copied).
    return {
      name: src.name,
      size: src.size,
      read: async (offset: number, length: number) => {
        const b = await src.read(offset, length);
        this.bytesRead += b.length;
        return b;
      },
      close: () => src.close(),
    };
  }
}
