/**
 * The lock of an output directory (Node): one run at a time writes it. A whole run (or
 * `--finalize`) holds `.fp8kit-lock`; a `--part i/n` run holds `.fp8kit-lock-part-i-of-n`, so the
 * parts of one job (on one machine or several, over a shared file system) run side by side, but
 * never beside a whole run nor a second copy of themselves. The lock file is created exclusively
 * and names its holder (pid, host, start time); a lock whose holder is dead on this host is stale
 * and taken over. A holder on another host cannot be checked, so it counts as alive and the message
 * says which file to delete if it is not.
 */
import { readdir, readFile, rename, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { writeFs } from "../safetensors/fs-node.js";
import { ConvertError } from "./errors.js";

const WHOLE = ".fp8kit-lock";
const PART = /^\.fp8kit-lock-part-\d+-of-\d+$/;

/** True for the lock files of any run (they are never part of a finished output). */
export const isLockFile = (name: string) => name === WHOLE || PART.test(name);

interface Holder {
  pid: number;
  host: string;
  started: string;
}

/** True when `h` may still be running (always, for a holder on another host). */
function alive(h: Holder): boolean {
  if (h.host !== hostname()) return true;
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function readHolder(path: string): Promise<Holder | null> {
  try {
    const h = JSON.parse(await readFile(path, "utf8")) as Holder;
    return typeof h?.pid === "number" && typeof h.host === "string" ? h : null;
  } catch {
    return null;
  }
}

function busy(out: string, file: string, h: Holder): ConvertError {
  return new ConvertError(
    "output-locked",
    `${out}: another fp8kit run is writing this directory (pid ${h.pid} on ${h.host}, started ${h.started}); wait for it to finish, or if it is no longer running, delete ${join(out, file)}`,
  );
}

/** A held lock; `release` (idempotent) deletes its file. */
export interface OutputLock {
  release(): Promise<void>;
}

/**
 * Create `file` exclusively in `out`, holding `h`; a stale lock of the same name (dead holder on
 * this host) is moved aside and the creation retried once. Returns the holder when a live run
 * holds it, null once held.
 */
async function create(out: string, file: string, h: Holder): Promise<Holder | null> {
  const path = join(out, file);
  const bytes = new TextEncoder().encode(JSON.stringify(h));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await writeFs().open(path, "wx");
      try {
        await fh.write(bytes, 0, bytes.length, 0);
      } finally {
        await fh.close();
      }
      return null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const holder = await readHolder(path);
    if (holder && alive(holder)) return holder;
    // Stale (or unreadable: a holder killed while writing it). Only one taker's rename succeeds.
    const aside = `${path}.stale-${process.pid}`;
    await rename(path, aside).catch(() => {});
    await unlink(aside).catch(() => {});
  }
  return (await readHolder(path)) ?? { pid: -1, host: "?", started: "?" };
}

/**
 * Take the lock of `out` for a whole run (`part` null) or part `[i, n]`. Fails with
 * `output-locked`, naming the holder, when a live run holds it or a conflicting one (a part
 * beside a whole run, or the reverse).
 */
export async function lockOutput(out: string, part: [number, number] | null): Promise<OutputLock> {
  const file = part ? `.fp8kit-lock-part-${part[0]}-of-${part[1]}` : WHOLE;
  const me: Holder = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const holder = await create(out, file, me);
  if (holder) throw busy(out, file, holder);
  const lock: OutputLock = {
    release: async () => {
      lock.release = async () => {};
      await writeFs()
        .unlink(join(out, file))
        .catch(() => {});
    },
  };
  // A whole run conflicts with every part; a part with a whole run.
  for (const other of await readdir(out).catch(() => [] as string[])) {
    if (other === file || !isLockFile(other) || (part !== null && other !== WHOLE)) continue;
    const h = await readHolder(join(out, other));
    if (h && alive(h)) {
      await lock.release();
      throw busy(out, other, h);
    }
  }
  return lock;
}
