/**
 * The one atomic-write helper (atomic-node.ts) and the positional writer built on it: a finished
 * file appears whole under its final name; an aborted or failed one leaves nothing behind; errors
 * are SafetensorsErrors naming the file (and tensor), keeping the Node error as `cause`.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  AtomicFile,
  copyFileAtomic,
  targetOfTempName,
  tempPathFor,
  writeFileAtomic,
} from "../../src/safetensors/atomic-node.js";
import { SafetensorsError } from "../../src/safetensors/errors.js";
import { useWriteFs, type WriteHandle, writeFs } from "../../src/safetensors/fs-node.js";
import { planLayout, serializeSafetensors, type TensorWithData } from "../../src/safetensors/writer.js";
import { PositionalSafetensorsWriter } from "../../src/safetensors/writer-node.js";
import { mulberry32 } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "fp8kit-atomic-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const fresh = (name: string) => mkdtempSync(join(tmp, `${name}-`));
const asRoot = typeof process.getuid === "function" && process.getuid() === 0;

describe("atomic writes", () => {
  it("writeFileAtomic replaces a file whole and leaves no temporary file", async () => {
    const dir = fresh("w");
    const p = join(dir, "config.json");
    writeFileSync(p, "old");
    await writeFileAtomic(p, '{"a": 1}\n');
    expect(readFileSync(p, "utf8")).toBe('{"a": 1}\n');
    await writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    expect([...readFileSync(p)]).toEqual([1, 2, 3]);
    expect(readdirSync(dir)).toEqual(["config.json"]);
  });

  it("temporary names are hidden, per process, random, and map back to their target", () => {
    const a = tempPathFor("/x/model.safetensors");
    const b = tempPathFor("/x/model.safetensors");
    expect(a).not.toBe(b);
    const name = a.slice(3);
    expect(name).toMatch(new RegExp(`^\\.model\\.safetensors\\.tmp-${process.pid}-[0-9a-f]{12}$`));
    expect(targetOfTempName(name)).toBe("model.safetensors");
    expect(targetOfTempName(".fp8kit-job.json.tmp-12-ab")).toBe("fp8kit-job.json");
    expect(targetOfTempName("model.safetensors")).toBeNull();
    expect(targetOfTempName(".model.safetensors.tmp-12")).toBeNull();
  });

  it("abort removes the temporary file; the final name never appears", async () => {
    const dir = fresh("abort");
    const f = await AtomicFile.create(join(dir, "x.bin"));
    await f.writeAt(4, new Uint8Array([9]));
    await f.writeAt(0, new Uint8Array([1, 2, 3, 4]));
    expect(f.bytesWritten).toBe(5);
    expect(readdirSync(dir)).toHaveLength(1);
    await f.abort();
    await f.abort();
    expect(readdirSync(dir)).toEqual([]);
    await expect(f.finish()).rejects.toThrow(/x\.bin: file is closed/);
  });

  /** The writers' file system with every fsync counted, and failing when `fail(k)` says so for the k-th. */
  function countingFs(fail: (k: number) => boolean = () => false) {
    const real = writeFs();
    let syncs = 0;
    const wrap = (h: WriteHandle): WriteHandle => ({
      write: (b, o, l, p) => h.write(b, o, l, p),
      sync: async () => {
        const k = ++syncs;
        // A slow fsync, so writes happen while it is in flight.
        await new Promise((r) => setTimeout(r, 5));
        if (fail(k))
          throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO", syscall: "fsync" });
        return h.sync();
      },
      close: () => h.close(),
    });
    const restore = useWriteFs({ ...real, open: async (p, flags) => wrap(await real.open(p, flags)) });
    return { restore, syncs: () => syncs };
  }

  it("flushEvery: fsyncs in the background while writing, one at a time; the file is exact", async () => {
    const dir = fresh("flush");
    const fs = countingFs();
    try {
      const f = await AtomicFile.create(join(dir, "x.bin"), { flushEvery: 1000 });
      const rnd = mulberry32(3);
      const all = new Uint8Array(20 * 600).map(() => rnd() * 256);
      for (let i = 0; i < 20; i++) {
        await f.writeAt(i * 600, all.subarray(i * 600, (i + 1) * 600));
        await new Promise((r) => setTimeout(r, 1));
      }
      // 12000 bytes at a flush per 1000 written while none is in flight: several, not 12.
      expect(f.flushes).toBeGreaterThanOrEqual(2);
      expect(f.flushes).toBeLessThan(12);
      await f.finish();
      expect(fs.syncs()).toBe(f.flushes + 1);
      expect(Buffer.compare(readFileSync(join(dir, "x.bin")), all)).toBe(0);
      expect(readdirSync(dir)).toEqual(["x.bin"]);
    } finally {
      fs.restore();
    }
    // Without flushEvery, only the final fsync.
    const fs2 = countingFs();
    try {
      const f = await AtomicFile.create(join(dir, "y.bin"));
      for (let i = 0; i < 5; i++) await f.writeAt(i * 600, new Uint8Array(600));
      await f.finish();
      expect(f.flushes).toBe(0);
      expect(fs2.syncs()).toBe(1);
    } finally {
      fs2.restore();
    }
  });

  it("a failed background fsync fails the file: named, with advice, nothing left behind", async () => {
    // The failure reported by the next write...
    const dir = fresh("flush-fail");
    let fs = countingFs((k) => k === 1);
    try {
      const f = await AtomicFile.create(join(dir, "x.bin"), { flushEvery: 100 });
      await f.writeAt(0, new Uint8Array(200));
      await new Promise((r) => setTimeout(r, 30));
      const err = await f.writeAt(200, new Uint8Array(10)).catch((e) => e);
      expect(err).toBeInstanceOf(SafetensorsError);
      expect(err.code).toBe("write-failed");
      expect(err.message).toContain(join(dir, "x.bin"));
      expect(err.message).toMatch(/flushing written data to disk \(fsync\) failed: an I\/O error/);
      expect(readdirSync(dir)).toEqual([]);
      await expect(f.finish()).rejects.toThrow(/x\.bin/);
    } finally {
      fs.restore();
    }
    // ...or by finish, when it fails after the last write.
    fs = countingFs((k) => k === 1);
    try {
      const f = await AtomicFile.create(join(dir, "y.bin"), { flushEvery: 100 });
      await f.writeAt(0, new Uint8Array(200));
      const err = await f.finish().catch((e) => e);
      expect(err).toBeInstanceOf(SafetensorsError);
      expect(err.message).toContain(join(dir, "y.bin"));
      expect(err.message).toMatch(/an I\/O error/);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      fs.restore();
    }
  });

  it("copyFileAtomic copies bytes exactly (several chunks) and names a missing source", async () => {
    const dir = fresh("copy");
    const big = new Uint8Array((8 << 20) + 12345).map((_, i) => (i * 7) & 0xff);
    writeFileSync(join(dir, "src.bin"), big);
    mkdirSync(join(dir, "out"));
    await copyFileAtomic(join(dir, "src.bin"), join(dir, "out", "dst.bin"));
    expect(readFileSync(join(dir, "out", "dst.bin")).equals(Buffer.from(big))).toBe(true);
    expect(readdirSync(join(dir, "out"))).toEqual(["dst.bin"]);
    const e = await copyFileAtomic(join(dir, "nope"), join(dir, "out", "n")).catch((x) => x);
    expect(e).toBeInstanceOf(SafetensorsError);
    expect(e.message).toMatch(/nope: cannot open/);
    expect(e.cause?.code).toBe("ENOENT");
  });

  it.skipIf(asRoot)(
    "a directory that cannot be written: write-failed naming the path, with the cause",
    async () => {
      const dir = fresh("ro");
      chmodSync(dir, 0o500);
      try {
        const e = await writeFileAtomic(join(dir, "index.json"), "{}").catch((x) => x);
        expect(e).toBeInstanceOf(SafetensorsError);
        expect(e.code).toBe("write-failed");
        expect(e.message).toContain(join(dir, "index.json"));
        expect(e.cause?.code).toBe("EACCES");
      } finally {
        chmodSync(dir, 0o700);
      }
    },
  );
});

describe("PositionalSafetensorsWriter", () => {
  const rnd = mulberry32(7);
  const bytes = (n: number) => new Uint8Array(n).map(() => rnd() * 256);
  const tensors: TensorWithData[] = [
    { name: "w", dtype: "F8_E4M3", shape: [8, 16], data: bytes(128) },
    { name: "w_scale_inv", dtype: "F32", shape: [2, 1], data: bytes(8) },
    { name: "norm", dtype: "BF16", shape: [16], data: bytes(32) },
    { name: "empty", dtype: "BF16", shape: [0], data: bytes(0) },
  ];
  const layout = planLayout(tensors, { format: "pt" }, "pos.safetensors");

  it("pieces written in any order give the reference writer's bytes", async () => {
    const dir = fresh("pos");
    const path = join(dir, "pos.safetensors");
    const w = await PositionalSafetensorsWriter.create(path, layout);
    const pieces: [string, number, Uint8Array][] = [];
    for (const t of tensors)
      for (let off = 0; off < t.data.length; off += 24)
        pieces.push([t.name, off, t.data.subarray(off, off + 24)]);
    pieces.reverse();
    await Promise.all(pieces.map(([name, off, b]) => w.writeTensorAt(name, off, b)));
    await w.finish();
    expect(w.bytesWritten).toBe(layout.fileSize);
    const want = serializeSafetensors(tensors, { metadata: { format: "pt" } });
    expect(readFileSync(path).equals(Buffer.from(want))).toBe(true);
    expect(readdirSync(dir)).toEqual(["pos.safetensors"]);
  });

  it("a tensor not fully written, a range past a tensor, an unknown tensor: errors naming both", async () => {
    const dir = fresh("posbad");
    const path = join(dir, "pos.safetensors");
    const w = await PositionalSafetensorsWriter.create(path, layout);
    for (const t of tensors) if (t.name !== "norm") await w.writeTensorAt(t.name, 0, t.data);
    await w.writeTensorAt("norm", 0, bytes(30));
    await expect(w.finish()).rejects.toThrow(/^pos\.safetensors: tensor "norm" got 30 of its 32 bytes/);
    expect(readdirSync(dir)).toEqual([]);
    const w2 = await PositionalSafetensorsWriter.create(path, layout);
    await expect(w2.writeTensorAt("norm", 16, bytes(17))).rejects.toThrow(
      /pos\.safetensors: tensor "norm": 17 bytes at 16 run past its 32/,
    );
    expect(readdirSync(dir)).toEqual([]);
    const w3 = await PositionalSafetensorsWriter.create(path, layout);
    await expect(w3.writeTensorAt("ghost", 0, bytes(1))).rejects.toThrow(
      /tensor "ghost" is not in the layout/,
    );
    const w4 = await PositionalSafetensorsWriter.create(path, layout);
    await expect(w4.finish()).rejects.toThrow(/tensor "w_scale_inv" was never written/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
