import type { ByteSource, CheckpointDir } from "../safetensors/index.js";

/**
 * Open shard sources while streaming tensor by tensor: each shard is opened once when first needed
 * and closed when the stream moves past it, so at most two shards (current and prefetch) are open.
 */
export class ShardSources {
  private readonly open = new Map<string, Promise<ByteSource>>();
  constructor(private readonly dir: CheckpointDir) {}

  get(shard: string): Promise<ByteSource> {
    let p = this.open.get(shard);
    if (!p) {
      p = this.dir.open(shard);
      this.open.set(shard, p);
    }
    return p;
  }

  /** Reads `length` bytes at absolute `offset` of `shard`. */
  async read(shard: string, offset: number, length: number): Promise<Uint8Array> {
    return (await this.get(shard)).read(offset, length);
  }

  /** Closes every shard not in `keep`. */
  async closeExcept(keep: ReadonlySet<string>): Promise<void> {
    for (const [name, p] of [...this.open]) {
      if (keep.has(name)) continue;
      this.open.delete(name);
      const src = await p.catch(() => null);
      await src?.close?.();
    }
  }

  async closeAll(): Promise<void> {
    await this.closeExcept(new Set());
  }
}
