import { SafetensorsError } from "./errors.js";
import { checkShardName } from "./index-json.js";
import { MAX_INDEX_SIZE } from "./limits.js";
import { BlobSource, type ByteSource } from "./source.js";

/**
 * A checkpoint directory, as every reader of fp8kit sees it: its file names, the bytes of small
 * side files (config.json, the index) read whole under a size limit, and random-access byte
 * sources for shards. `NodeCheckpointDir` reads the file system; `BlobCheckpointDir` wraps a
 * browser's `File`s. File names are plain names inside the directory (`checkShardName`).
 */
export interface CheckpointDir {
  /** Name used in messages (the directory's base name). */
  readonly name: string;
  /** File names in the directory (not recursive), sorted, or only those a single-file path covers. */
  list(): Promise<string[]>;
  /**
   * The bytes of `file`, or null when it does not exist; a file over `maxBytes` (default
   * `MAX_INDEX_SIZE`) is a `file-too-large` error.
   */
  readBytes(file: string, maxBytes?: number): Promise<Uint8Array | null>;
  /** `readBytes` decoded as UTF-8 (invalid sequences become U+FFFD, as Node's `readFile` does). */
  readText(file: string, maxBytes?: number): Promise<string | null>;
  /** Open `file` for random-access reads. */
  open(file: string): Promise<ByteSource>;
  /**
   * Where `file` is on this machine's file system, for code that reads it without this object (a
   * worker thread); absent for remote and in-memory checkpoints.
   */
  localPath?(file: string): string;
}

/** Side files listed beside a single `.safetensors` file the user named (they describe it). */
export const SINGLE_FILE_SIDE_FILES: readonly string[] = ["config.json", "hf_quant_config.json"];

/** Throws `file-too-large` when a side file of `size` bytes is over `maxBytes`. */
export function checkSideFileSize(file: string, size: number, maxBytes: number): void {
  if (size > maxBytes) {
    throw new SafetensorsError(
      "file-too-large",
      `${file}: ${size} bytes exceeds the limit of ${maxBytes} for a file read whole`,
    );
  }
}

/** A checkpoint directory made of `Blob`s or `File`s by name (a browser's dropped folder). */
export class BlobCheckpointDir implements CheckpointDir {
  private readonly files: Map<string, Blob>;

  constructor(
    files: Iterable<readonly [string, Blob]>,
    readonly name = "checkpoint",
  ) {
    this.files = new Map(files);
  }

  async list(): Promise<string[]> {
    return [...this.files.keys()].sort();
  }

  async readBytes(file: string, maxBytes = MAX_INDEX_SIZE): Promise<Uint8Array | null> {
    checkShardName(file, this.name);
    const blob = this.files.get(file);
    if (blob === undefined) return null;
    checkSideFileSize(file, blob.size, maxBytes);
    return new BlobSource(blob, file).read(0, blob.size);
  }

  async readText(file: string, maxBytes?: number): Promise<string | null> {
    const bytes = await this.readBytes(file, maxBytes);
    return bytes === null ? null : new TextDecoder().decode(bytes);
  }

  async open(file: string): Promise<ByteSource> {
    checkShardName(file, this.name);
    const blob = this.files.get(file);
    if (blob === undefined) throw new SafetensorsError("not-found", `${this.name}: no file named ${file}`);
    return new BlobSource(blob, file);
  }
}
