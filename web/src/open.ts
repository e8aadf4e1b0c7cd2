/**
 * Where a checkpoint comes from: files picked or dropped (read through `File` slices by
 * `BlobCheckpointDir`, nothing leaves the machine) or an address (`openRemoteCheckpoint`: HTTP Range
 * requests for the headers and the sampled blocks only).
 */
import { BlobCheckpointDir, type CheckpointDir, openRemoteCheckpoint } from "../../src/index.js";

/** An opened checkpoint and how to count what reading it fetched. */
export interface Opened {
  dir: CheckpointDir;
  /** The address for remote checkpoints, null for local files. */
  address: string | null;
  /** Bytes and requests fetched so far (remote only). */
  fetched(): { bytes: number; requests: number } | null;
}

/**
 * Local files as a checkpoint directory. Files from a folder picker carry `webkitRelativePath`
 * (`folder/file`): the folder's own files are kept (a checkpoint directory is not recursive) and the
 * folder names it.
 */
export function openFiles(files: readonly File[], folderName?: string): Opened {
  const top = new Map<string, File>();
  let name = folderName ?? "";
  for (const f of files) {
    const parts = (f.webkitRelativePath || f.name).split("/");
    if (parts.length > 2) continue;
    if (parts.length === 2) name ||= parts[0];
    top.set(parts[parts.length - 1], f);
  }
  // Loose files have no folder name; suggested commands then say `checkpoint` for it.
  if (!name) name = top.size === 1 ? [...top.keys()][0] : "checkpoint";
  return { dir: new BlobCheckpointDir(top, name), address: null, fetched: () => null };
}

/** A remote checkpoint: a folder URL, an index.json or .safetensors URL, or `hf://org/model[@rev]`. */
export async function openAddress(address: string, token?: string): Promise<Opened> {
  const dir = await openRemoteCheckpoint(address, token ? { token } : {});
  return { dir, address, fetched: () => ({ bytes: dir.bytesFetched, requests: dir.requests }) };
}

/** Reads every file entry of a dropped directory (not recursive). */
async function filesOfDirectory(entry: FileSystemDirectoryEntry): Promise<File[]> {
  const reader = entry.createReader();
  const entries: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
    if (batch.length === 0) break;
    entries.push(...batch);
  }
  const files = entries.filter((e): e is FileSystemFileEntry => e.isFile);
  return Promise.all(files.map((e) => new Promise<File>((ok, fail) => e.file(ok, fail))));
}

/** What was dropped: one folder (its files) or loose files. */
export async function openDropped(data: DataTransfer): Promise<Opened | null> {
  const entries = Array.from(data.items)
    .map((i) => i.webkitGetAsEntry())
    .filter((e) => e !== null);
  const dirs = entries.filter((e): e is FileSystemDirectoryEntry => e.isDirectory);
  if (dirs.length === 1 && entries.length === 1)
    return openFiles(await filesOfDirectory(dirs[0]), dirs[0].name);
  const files = Array.from(data.files);
  return files.length > 0 ? openFiles(files) : null;
}
