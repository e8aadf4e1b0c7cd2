/**
 * A faulty file system for the writers (a `WriteFs` wrapping Node's): the Nth call of one operation
 * on a path matching a pattern fails with a Node-like system error (ENOSPC, EIO, EROFS), the way a
 * full disk, a dying device or a read-only mount would answer. Every other call goes to the real
 * file system. Install with `installFault`, which returns the restore function.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { useWriteFs, type WriteFs, type WriteHandle, writeFs } from "../../src/safetensors/node.js";

export type FaultOp = "open" | "write" | "sync" | "close" | "rename" | "mkdir" | "rm";
export type FaultCode = "ENOSPC" | "EIO" | "EROFS";

export interface Fault {
  op: FaultOp;
  /** Tested against the path of the call (for `rename`, its destination; for handle calls, the opened path). */
  path: RegExp;
  code: FaultCode;
  /** Which matching call fails (1-based; default 1). */
  nth?: number;
}

const WORDS: Record<FaultCode, string> = {
  ENOSPC: "no space left on device",
  EIO: "i/o error",
  EROFS: "read-only file system",
};

const ERRNO: Record<FaultCode, number> = { ENOSPC: -28, EIO: -5, EROFS: -30 };

/**
 * The error Node gives for `syscall` failing with `code`: calls on a path carry it (and quote it in
 * the message); calls on an open handle (write, fsync, close) name no file at all.
 */
export function systemError(code: FaultCode, syscall: string, path?: string): NodeJS.ErrnoException {
  const message = `${code}: ${WORDS[code]}, ${syscall}${path ? ` '${path}'` : ""}`;
  const e: NodeJS.ErrnoException = new Error(message);
  e.code = code;
  e.errno = ERRNO[code];
  e.syscall = syscall;
  if (path) e.path = path;
  return e;
}

/** Replace the writers' file system with one that fails as `fault` says; returns the restore function. */
export function installFault(fault: Fault): { restore: () => void; fired: () => boolean } {
  const real = writeFs();
  const nth = fault.nth ?? 1;
  let seen = 0;
  let fired = false;
  const hit = (op: FaultOp, path: string): boolean => {
    if (op !== fault.op || !fault.path.test(path)) return false;
    seen++;
    if (seen !== nth) return false;
    fired = true;
    return true;
  };
  const handle = (path: string, h: WriteHandle): WriteHandle => ({
    write: (buffer, offset, length, position) =>
      hit("write", path)
        ? Promise.reject(systemError(fault.code, "write"))
        : h.write(buffer, offset, length, position),
    sync: () => (hit("sync", path) ? Promise.reject(systemError(fault.code, "fsync")) : h.sync()),
    // A failed close still releases the descriptor, as in Node.
    close: () =>
      hit("close", path) ? h.close().then(() => Promise.reject(systemError(fault.code, "close"))) : h.close(),
  });
  const faulty: WriteFs = {
    open: async (path, flags) => {
      if (hit("open", path)) throw systemError(fault.code, "open", path);
      return handle(path, await real.open(path, flags));
    },
    rename: async (from, to) => {
      if (hit("rename", to)) throw systemError(fault.code, "rename", from);
      return real.rename(from, to);
    },
    unlink: (path) => real.unlink(path),
    mkdir: async (path) => {
      if (hit("mkdir", path)) throw systemError(fault.code, "mkdir", path);
      return real.mkdir(path);
    },
    rm: async (path) => {
      if (hit("rm", path)) throw systemError(fault.code, "rm", path);
      return real.rm(path);
    },
  };
  return { restore: useWriteFs(faulty), fired: () => fired };
}

/** Relative paths of every entry under `dir` (directories end with "/"); [] when it does not exist. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) {
        out.push(`${rel}${e.name}/`);
        await walk(join(d, e.name), `${rel}${e.name}/`);
      } else out.push(`${rel}${e.name}`);
    }
  };
  await walk(dir, "").catch(() => {});
  return out.sort();
}

/** A temporary file of the atomic writers (`.<name>.tmp-<pid>-<hex>`), at any depth. */
export const TEMP_FILE = /(^|\/)\.[^/]+\.tmp-\d+-[0-9a-f]+$/;
/** A lock file of a run. */
export const LOCK_FILE = /(^|\/)\.fp8kit-lock/;
