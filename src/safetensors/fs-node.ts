/**
 * The file-system calls every fp8kit writer makes (Node), behind one replaceable object, and the
 * words for their failures. Production code always uses Node's `fs/promises`; tests swap in a
 * wrapper (`useWriteFs`) that fails a chosen write with ENOSPC, EIO or EROFS at any step (a shard's
 * body, its marker, config.json, the index, a copied file) to check that nothing is left looking
 * complete. Reads of the input do not go through it.
 */
import * as fsp from "node:fs/promises";

/** The parts of a Node `FileHandle` the writers use. */
export interface WriteHandle {
  write(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The file-system operations of the writers (same meaning and errors as `node:fs/promises`). */
export interface WriteFs {
  /** Open `path` for writing (`flags` "wx": create, failing when it exists). */
  open(path: string, flags: string): Promise<WriteHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  /** Remove `path` recursively; a missing path is not an error. */
  rm(path: string): Promise<void>;
}

const NODE_FS: WriteFs = {
  open: (path, flags) => fsp.open(path, flags),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
  mkdir: async (path) => {
    await fsp.mkdir(path, { recursive: true });
  },
  rm: (path) => fsp.rm(path, { recursive: true, force: true }),
};

let current: WriteFs = NODE_FS;

/** The file system the writers use now. */
export function writeFs(): WriteFs {
  return current;
}

/**
 * Make every writer use `fs` (for tests that inject failures); returns the function that restores
 * Node's. Only one replacement at a time.
 */
export function useWriteFs(fs: WriteFs): () => void {
  current = fs;
  return () => {
    current = NODE_FS;
  };
}

/** What to do about a failed file-system call, by its error code (empty when there is no advice). */
const ADVICE: Record<string, string> = {
  ENOSPC: "the disk is full: free some space",
  EDQUOT: "the disk quota is exhausted: free some space",
  EROFS: "the file system is read-only: choose an output on a writable disk",
  EACCES: "permission denied: check the directory's owner and permissions",
  EPERM: "operation not permitted: check the directory's owner and permissions",
  EIO: "an I/O error from the disk: check the device (dmesg) and retry",
  EMFILE: "too many open files: raise the limit (ulimit -n) or use fewer --workers",
};

/** The errno code (`ENOSPC`...) of a Node system error, or of the first one in its `cause` chain; or null. */
export function errnoOf(e: unknown): string | null {
  for (let x = e, depth = 0; x instanceof Error && depth < 8; x = x.cause, depth++) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
  }
  return null;
}

/** Advice for a failed file-system call, or "" when its code has none. */
export function fsAdvice(e: unknown): string {
  return ADVICE[errnoOf(e) ?? ""] ?? "";
}
