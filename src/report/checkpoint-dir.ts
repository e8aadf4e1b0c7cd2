import type { ByteSource } from "../safetensors/index.js";

/**
 * What the report layer needs from a checkpoint directory: its file names, the text of small JSON
 * files, and random-access byte sources for shards. The Node implementation (`NodeCheckpointDir`)
 * reads the file system and counts the bytes it reads; a browser one can wrap dropped `File`s.
 */
export interface CheckpointDir {
  /** Name used in messages (the directory's base name). */
  readonly name: string;
  /** File names in the directory (not recursive), or only the one file the user named. */
  list(): Promise<string[]>;
  /** The text of `file` (config.json, the index), or null when it does not exist. */
  readText(file: string): Promise<string | null>;
  /** Open `file` (a plain name inside the directory) for reading. */
  open(file: string): Promise<ByteSource>;
}
