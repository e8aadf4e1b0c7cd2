import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { ConvertError } from "./errors.js";

/** Positioned reads from the shards of a directory, one open handle per shard, counting bytes. */
export class InputFiles {
  private readonly handles = new Map<string, Promise<FileHandle>>();
  bytesRead = 0;
  constructor(private readonly dir: string) {}

  async read(shard: string, pos: number, len: number, into?: Uint8Array): Promise<Uint8Array> {
    let h = this.handles.get(shard);
    if (!h) {
      h = open(join(this.dir, shard), "r");
      this.handles.set(shard, h);
    }
    const fh = await h;
    const buf = into ?? new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const { bytesRead } = await fh.read(buf, done, len - done, pos + done);
      if (bytesRead === 0)
        throw new ConvertError("read-failed", `${shard}: file ended early at byte ${pos + done}`);
      done += bytesRead;
    }
    this.bytesRead += len;
    return buf;
  }
  async close(): Promise<void> {
    for (const h of this.handles.values()) await (await h).close().catch(() => {});
    this.handles.clear();
  }
}
