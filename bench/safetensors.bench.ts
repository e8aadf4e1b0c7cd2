/**
 * safetensors reader/writer throughput against plain file I/O on the same warm file.
 *
 * Generates a file of F8_E4M3/BF16 tensors of 64-256 MB each (plus small F32 scales), 2 GB in all
 * (`quick`: 256 MB), under `.tmp/bench` in the repository (same disk as the repo, git-ignored),
 * then measures, alternating baseline and ours 3 times each and reporting the median:
 *   - read: plain sequential `FileHandle.read` in 16 MB chunks vs `SafetensorsFile.readBytes` of
 *     every tensor;
 *   - copy: plain read+write in 16 MB chunks + fsync vs reader -> `SafetensorsFileWriter` (fsync +
 *     rename);
 *   - write from memory: plain 16 MB-chunk writes + fsync vs `writeSafetensorsFile`.
 * The page cache is not dropped (no root needed): both sides read the same warm file, so read
 * figures are memory-bandwidth bound and comparable to each other, not to the disk. Peak RSS is
 * `process.resourceUsage().maxRSS` at the end, checked against 2 x the largest tensor + 200 MB.
 */
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Dtype } from "../src/safetensors/dtypes.js";
import { SafetensorsFile } from "../src/safetensors/reader.js";
import { NodeFileSource } from "../src/safetensors/source-node.js";
import type { TensorDescriptor } from "../src/safetensors/writer.js";
import { SafetensorsFileWriter, writeSafetensorsFile } from "../src/safetensors/writer-node.js";

const MB = 1024 * 1024;
const CHUNK = 16 * MB;
const RUNS = 3;

function descriptorsFor(totalBytes: number): TensorDescriptor[] {
  const sizes = [256, 128, 64, 192, 96, 160];
  const out: TensorDescriptor[] = [];
  let used = 0;
  for (let i = 0; used < totalBytes; i++) {
    const mb = Math.min(sizes[i % sizes.length], (totalBytes - used) / MB);
    const dtype: Dtype = i % 3 === 2 ? "BF16" : "F8_E4M3";
    const cols = 7168;
    const rows = Math.max(1, Math.floor((mb * MB) / (cols * (dtype === "BF16" ? 2 : 1))));
    out.push({ name: `model.layers.${i}.mlp.weight`, dtype, shape: [rows, cols] });
    out.push({
      name: `model.layers.${i}.mlp.weight_scale_inv`,
      dtype: "F32",
      shape: [Math.ceil(rows / 128), 56],
    });
    used += rows * cols * (dtype === "BF16" ? 2 : 1);
  }
  return out;
}

function bytesOf(d: TensorDescriptor): number {
  return d.shape.reduce((a, b) => a * b, 1) * (d.dtype === "BF16" ? 2 : d.dtype === "F32" ? 4 : 1);
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function plainRead(path: string): Promise<void> {
  const h = await open(path, "r");
  const buf = Buffer.allocUnsafe(CHUNK);
  try {
    let pos = 0;
    for (;;) {
      const { bytesRead } = await h.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
    }
  } finally {
    await h.close();
  }
}

async function plainCopy(src: string, dst: string): Promise<void> {
  const r = await open(src, "r");
  const w = await open(dst, "w");
  const buf = Buffer.allocUnsafe(CHUNK);
  try {
    let pos = 0;
    for (;;) {
      const { bytesRead } = await r.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      let done = 0;
      while (done < bytesRead) done += (await w.write(buf, done, bytesRead - done, pos + done)).bytesWritten;
      pos += bytesRead;
    }
    await w.sync();
  } finally {
    await r.close();
    await w.close();
  }
  await rm(dst);
}

async function plainWrite(dst: string, total: number, pool: Uint8Array): Promise<void> {
  const w = await open(dst, "w");
  try {
    for (let pos = 0; pos < total; pos += CHUNK) {
      const n = Math.min(CHUNK, total - pos);
      let done = 0;
      while (done < n) done += (await w.write(pool, done, n - done, pos + done)).bytesWritten;
    }
    await w.sync();
  } finally {
    await w.close();
  }
  await rm(dst);
}

async function readerReadAll(path: string, into?: Uint8Array): Promise<void> {
  const f = await SafetensorsFile.open(await NodeFileSource.open(path));
  try {
    for (const t of f.tensors) await f.readBytes(t.name, into);
  } finally {
    await f.close();
  }
}

async function readerCopy(src: string, dst: string, into: Uint8Array): Promise<void> {
  const f = await SafetensorsFile.open(await NodeFileSource.open(src));
  try {
    const w = await SafetensorsFileWriter.create(dst, f.tensors, { metadata: f.metadata });
    for (const t of w.layout.tensors) await w.write(t.name, await f.readBytes(t.name, into));
    await w.finish();
  } finally {
    await f.close();
  }
  await rm(dst);
}

export async function run(opts: { quick?: boolean }): Promise<void> {
  const total = opts.quick ? 256 * MB : 2048 * MB;
  const dir = join(import.meta.dirname, "..", ".tmp", "bench", `safetensors-${process.pid}`);
  await rm(dir, { recursive: true, force: true });
  const { mkdir } = await import("node:fs/promises");
  await mkdir(dir, { recursive: true });
  const descriptors = descriptorsFor(total);
  const largest = Math.max(...descriptors.map(bytesOf));
  // One pool of the largest tensor's size holds every tensor's bytes during generation.
  // The reader benchmarks reuse it as their read target too (readBytes(name, into)).
  const pool = new Uint8Array(largest);
  let x = 0x12345678;
  for (let i = 0; i < pool.length; i += 4096) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    pool.fill(x & 0xff, i, i + 4096);
  }
  const file = join(dir, "bench.safetensors");
  try {
    const genS = await timed(() =>
      writeSafetensorsFile(file, descriptors, (info) => pool.subarray(0, info.byteLength)),
    );
    const f = await SafetensorsFile.open(await NodeFileSource.open(file));
    const fileSize = f.source.size;
    await f.close();
    await plainRead(file); // warm the page cache for both sides
    const rows: { what: string; base: number[]; ours: number[]; baseName: string; ourName: string }[] = [
      { what: "read", baseName: "plain read 16MB", ourName: "reader, reused buffer", base: [], ours: [] },
      { what: "read", baseName: "plain read 16MB", ourName: "reader, new buffers", base: [], ours: [] },
      { what: "copy", baseName: "plain read+write+fsync", ourName: "reader -> writer", base: [], ours: [] },
      { what: "write", baseName: "plain write+fsync", ourName: "writeSafetensorsFile", base: [], ours: [] },
    ];
    const out = join(dir, "out.safetensors");
    for (let r = 0; r < RUNS; r++) {
      rows[0].base.push(await timed(() => plainRead(file)));
      rows[0].ours.push(await timed(() => readerReadAll(file, pool)));
      rows[2].base.push(await timed(() => plainCopy(file, out)));
      rows[2].ours.push(await timed(() => readerCopy(file, out, pool)));
      rows[3].base.push(await timed(() => plainWrite(out, fileSize, pool)));
      rows[3].ours.push(
        await timed(async () => {
          await writeSafetensorsFile(out, descriptors, (info) => pool.subarray(0, info.byteLength));
          await rm(out);
        }),
      );
    }
    // maxRSS is a high-water mark: take it before the run that allocates a fresh buffer per tensor,
    // whose garbage (collected lazily) would otherwise dominate it.
    const rssMB = process.resourceUsage().maxRSS / 1024;
    for (let r = 0; r < RUNS; r++) {
      rows[1].base.push(await timed(() => plainRead(file)));
      rows[1].ours.push(await timed(() => readerReadAll(file)));
    }
    const rssAfterMB = process.resourceUsage().maxRSS / 1024;
    const mbps = (s: number) => fileSize / MB / s;
    const fmt = (n: number, w: number) => n.toFixed(0).padStart(w);
    console.log(
      `safetensors bench: ${(fileSize / MB).toFixed(0)} MB file, ${descriptors.length} tensors, largest ${(largest / MB).toFixed(0)} MB; ` +
        `generated in ${genS.toFixed(2)} s; median of ${RUNS}, baseline and ours alternating on the same warm file (page cache not dropped)`,
    );
    console.log(
      `${"op".padEnd(6)}${"baseline".padEnd(24)}${"MB/s".padStart(8)}  ${"fp8kit".padEnd(22)}${"MB/s".padStart(8)}  ratio`,
    );
    for (const row of rows) {
      const b = mbps(median(row.base));
      const o = mbps(median(row.ours));
      console.log(
        `${row.what.padEnd(6)}${row.baseName.padEnd(24)}${fmt(b, 8)}  ${row.ourName.padEnd(22)}${fmt(o, 8)}  ${(o / b).toFixed(2)}`,
      );
    }
    const limitMB = (2 * largest) / MB + 200;
    console.log(
      `peak RSS ${rssMB.toFixed(0)} MB (target < 2 x largest tensor + 200 MB = ${limitMB.toFixed(0)} MB: ${rssMB < limitMB ? "ok" : "OVER"}); ` +
        `${rssAfterMB.toFixed(0)} MB after the new-buffer-per-tensor reads`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
