/**
 * `npm run bench:audit`: UE8M0 audit throughput against a plain sequential read of the same files.
 * Generates a ~1 GB DeepSeek-layout FP8 checkpoint under .tmp/ (F8_E4M3 2048x7168 weights, random
 * non-NaN codes, random float32 `weight_scale_inv` so every block really is requantized), times
 * `auditPath` (full, every block) with the default worker count, with one worker and in-thread
 * (`--workers 0`), and a plain read of every shard in 16 MiB chunks, median of 3 runs each (files
 * warm in the page cache for all), prints peak RSS, and deletes the checkpoint.
 * Set FP8KIT_BENCH_GB to change the size.
 */
import { open, readdir, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// `npm run bench:audit` builds first: time the compiled library (types come from the source).
type ReportNode = typeof import("../src/report/node.js");
const dist = pathToFileURL(join(import.meta.dirname, "..", "dist", "report", "node.js")).href;
const { auditPath, defaultAuditThreads } = (await import(dist)) as ReportNode;

import { peakRssBytes } from "../src/cli/peak-rss.js";
import { writeShardedCheckpoint } from "../src/safetensors/node.js";

const GB = Number(process.env.FP8KIT_BENCH_GB ?? 1);
const ROWS = 2048;
const COLS = 7168;
const dir = join(import.meta.dirname, "..", ".tmp", "audit-bench");

function xorshift(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

async function generate(): Promise<number> {
  const per = ROWS * COLS;
  const n = Math.max(1, Math.round((GB * 1e9) / per));
  const descs = [];
  for (let i = 0; i < n; i++) {
    const p = `model.layers.${Math.floor(i / 7)}.mlp.experts.${i % 7}.down_proj`;
    descs.push({ name: `${p}.weight`, dtype: "F8_E4M3" as const, shape: [ROWS, COLS] });
    descs.push({ name: `${p}.weight_scale_inv`, dtype: "F32" as const, shape: [ROWS / 128, COLS / 128] });
  }
  await rm(dir, { recursive: true, force: true });
  const { mkdir, writeFile } = await import("node:fs/promises");
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "config.json"),
    JSON.stringify({
      quantization_config: { quant_method: "fp8", weight_block_size: [128, 128], fmt: "e4m3" },
    }),
  );
  let seed = 1;
  await writeShardedCheckpoint(
    dir,
    descs,
    (t) => {
      const next = xorshift(seed++);
      if (t.dtype === "F32") {
        const s = new Float32Array(t.numel);
        for (let i = 0; i < s.length; i++) s[i] = (1 + (next() & 0xffff) / 65536) * 2 ** -12;
        return new Uint8Array(s.buffer);
      }
      const w = new Uint32Array(t.byteLength / 4);
      for (let i = 0; i < w.length; i++) w[i] = next();
      const b = new Uint8Array(w.buffer);
      // Keep codes finite and mostly mid-range: mask the exponent so no 0x7F/0xFF (NaN) remains.
      for (let i = 0; i < b.length; i++) if ((b[i] & 0x7f) === 0x7f) b[i] ^= 1;
      return b;
    },
    { maxShardSize: "500MB" },
  );
  return n * (per + (ROWS / 128) * (COLS / 128) * 4);
}

async function plainRead(): Promise<number> {
  const buf = Buffer.allocUnsafe(16 << 20);
  let total = 0;
  for (const f of (await readdir(dir)).filter((x) => x.endsWith(".safetensors")).sort()) {
    const h = await open(join(dir, f), "r");
    try {
      for (;;) {
        const { bytesRead } = await h.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        total += bytesRead;
      }
    } finally {
      await h.close();
    }
  }
  return total;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  console.log(`audit bench: generating ~${GB} GB DeepSeek-layout FP8 checkpoint in ${dir} ...`);
  const bytes = await generate();
  const threads = defaultAuditThreads();
  // Default worker count, one worker, and the in-thread path (--workers 0), interleaved per round.
  const modes = [...new Set([threads, 1]), 0];
  const times = new Map<number, number[]>(modes.map((w) => [w, []]));
  const tRead: number[] = [];
  let rel: number | undefined;
  for (let run = 0; run < 3; run++) {
    let t0 = performance.now();
    await plainRead();
    tRead.push((performance.now() - t0) / 1000);
    for (const workers of modes) {
      t0 = performance.now();
      const r = await auditPath(dir, { workers });
      times.get(workers)!.push((performance.now() - t0) / 1000);
      const got = r.summary.requant?.relFrobenius ?? Number.NaN;
      if (rel !== undefined && got !== rel) throw new Error(`--workers ${workers} gives another result`);
      rel = got;
    }
  }
  const rss = peakRssBytes() / 2 ** 20;
  console.log(`${availableParallelism()} cores available`);
  const mr = median(tRead);
  const gbs = (t: number) => (bytes / t / 1e9).toFixed(2);
  console.log(`tensor bytes ${(bytes / 1e9).toFixed(3)} GB, median of 3 runs (page cache warm)`);
  console.log("method                          seconds   GB/s   vs read");
  const row = (name: string, t: number) =>
    console.log(
      `${name.padEnd(30)}  ${t.toFixed(3).padStart(7)}  ${gbs(t).padStart(5)}   ${(mr / t).toFixed(2)}`,
    );
  row("plain sequential read (16 MiB)", mr);
  for (const w of modes)
    row(`fp8kit audit, ${w === 0 ? "in-thread" : `${w} worker${w > 1 ? "s" : ""}`}`, median(times.get(w)!));
  if (threads > 1)
    console.log(
      `${threads} workers vs 1: ${(median(times.get(1)!) / median(times.get(threads)!)).toFixed(2)}x (issue 13's target: 1.7x on 2 cores)`,
    );
  console.log(
    `peak RSS ${rss.toFixed(0)} MiB; overall UE8M0 requant relative error ${((rel ?? Number.NaN) * 100).toFixed(3)}%`,
  );
  if (!process.env.FP8KIT_BENCH_KEEP) await rm(dir, { recursive: true, force: true });
}

main().catch(async (e) => {
  await rm(dir, { recursive: true, force: true });
  console.error(e);
  process.exitCode = 1;
});
