/**
 * Benchmark of `fp8kit convert` (run: `npm run bench:convert [-- --quick] [-- --trials N]`).
 *
 * Generates a DeepSeek-V3-layout FP8 checkpoint under .tmp/ (about 2 GB; `--quick` about 300 MB),
 * then times, with the built CLI (`node dist/cli/main.js convert ...`), each beside `cp -r` of the
 * same input on the same disk in the same run:
 *   1. FP8 (float scales) -> BF16
 *   2. BF16 -> FP8 UE8M0 (the BF16 input is the output of 1)
 *   3. FP8 (float scales) -> FP8 UE8M0 (Blackwell requantization)
 * Throughput counts bytes read plus bytes written (cp: twice the input size). Peak RSS is the
 * child's `process.resourceUsage().maxRSS` (worker threads included) from its --json result.
 * Prints the median of the trials and deletes everything under .tmp/bench-convert afterwards.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { makeDeepseekCheckpoint, type SampleDims, TINY } from "../scripts/make-sample.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const WORK = join(ROOT, ".tmp", "bench-convert");
const CLI = join(ROOT, "dist", "cli", "main.js");
const quick = process.argv.includes("--quick");
const trialsArg = process.argv.indexOf("--trials");
const TRIALS = trialsArg > 0 ? Number(process.argv[trialsArg + 1]) : 3;

const DIMS: SampleDims = quick
  ? {
      ...TINY,
      vocab: 8192,
      hidden: 2048,
      qLoraRank: 1536,
      heads: 16,
      qkNope: 128,
      vHead: 128,
      intermediate: 5632,
      moeIntermediate: 1408,
      routedExperts: 4,
      layers: 3,
    }
  : {
      ...TINY,
      vocab: 16384,
      hidden: 2048,
      qLoraRank: 1536,
      heads: 16,
      qkNope: 128,
      vHead: 128,
      intermediate: 5632,
      moeIntermediate: 1408,
      routedExperts: 16,
      layers: 11,
    };

function dirSize(d: string): number {
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    n += e.isDirectory() ? dirSize(p) : statSync(p).size;
  }
  return n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function timeCp(input: string): number {
  const out = join(WORK, "cp-out");
  rmSync(out, { recursive: true, force: true });
  execFileSync("sync");
  const t0 = performance.now();
  execFileSync("cp", ["-r", input, out]);
  execFileSync("sync");
  const s = (performance.now() - t0) / 1000;
  rmSync(out, { recursive: true, force: true });
  return s;
}

function timeConvert(
  input: string,
  output: string,
  args: string[],
  keep = false,
): { s: number; rss: number; bytes: number } {
  rmSync(output, { recursive: true, force: true });
  execFileSync("sync");
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, "convert", input, output, ...args, "--json"], {
    encoding: "utf8",
    maxBuffer: 256 << 20,
  });
  execFileSync("sync");
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`convert failed: ${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  const res = JSON.parse(lines[lines.length - 1]);
  if (!keep) rmSync(output, { recursive: true, force: true });
  return { s, rss: res.peakRssBytes, bytes: res.bytesRead + res.bytesWritten };
}

async function main(): Promise<void> {
  rmSync(WORK, { recursive: true, force: true });
  const fp8In = join(WORK, "in-fp8");
  const bf16In = join(WORK, "in-bf16");
  let t0 = performance.now();
  await makeDeepseekCheckpoint(fp8In, { dims: DIMS, fast: true, maxShardSize: quick ? "100MB" : "500MB" });
  const size = dirSize(fp8In);
  process.stdout.write(
    `generated ${(size / 1e9).toFixed(2)} GB FP8 checkpoint in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  t0 = performance.now();
  timeConvert(fp8In, bf16In, ["--to", "bf16"], true);
  process.stdout.write(
    `made the BF16 input (${(dirSize(bf16In) / 1e9).toFixed(2)} GB) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  // A DeepSeek-V3.1-style input (UE8M0 scales as F8_E8M0): the source of the MXFP8 relabel.
  const ue8m0In = join(WORK, "in-ue8m0");
  timeConvert(fp8In, ue8m0In, ["--to", "fp8", "--scale-dtype", "e8m0"], true);
  // Targets of issue 3 (conversion) first; the layout cases (issue 11) have no target ratio (0).
  const cases: [string, string, string[], number][] = [
    ["FP8 -> BF16", fp8In, ["--to", "bf16"], 0.7],
    ["BF16 -> FP8 ue8m0", bf16In, ["--to", "fp8"], 0.5],
    ["FP8 float -> FP8 ue8m0", fp8In, ["--to", "fp8"], 0.5],
    ["UE8M0 -> MXFP8 relabel", ue8m0In, ["--to", "mxfp8"], 0],
    ["FP8 -> CT FP8 relabel", fp8In, ["--layout", "compressed-tensors"], 0],
    ["BF16 -> MXFP8 (ct rule)", bf16In, ["--to", "mxfp8"], 0],
    ["BF16 -> NVFP4 (CT)", bf16In, ["--to", "nvfp4"], 0],
  ];
  const rows: string[] = [];
  for (const [name, input, args, target] of cases) {
    const inBytes = dirSize(input);
    const cps: number[] = [];
    const conv: number[] = [];
    const rss: number[] = [];
    let bytes = 0;
    for (let i = 0; i < TRIALS; i++) {
      cps.push((2 * inBytes) / timeCp(input));
      const c = timeConvert(input, join(WORK, "out"), args);
      conv.push(c.bytes / c.s);
      rss.push(c.rss);
      bytes = c.bytes;
    }
    const ratio = median(conv) / median(cps);
    rows.push(
      `${name.padEnd(24)} ${(inBytes / 1e9).toFixed(2).padStart(6)} GB  ${(bytes / 1e9).toFixed(2).padStart(6)} GB r+w  cp ${(median(cps) / 1e6).toFixed(0).padStart(5)} MB/s  convert ${(median(conv) / 1e6).toFixed(0).padStart(5)} MB/s  ratio ${ratio.toFixed(2)} ${target > 0 ? `(target >= ${target})` : "(no target)"}  peak RSS ${(Math.max(...rss) / 2 ** 20).toFixed(0)} MiB`,
    );
    process.stdout.write(`${rows[rows.length - 1]}\n`);
  }
  process.stdout.write(
    `\nmedians of ${TRIALS} trials, ${quick ? "--quick" : "full"} size, workers = cores:\n${rows.join("\n")}\n`,
  );
  rmSync(WORK, { recursive: true, force: true });
}

main().catch((e) => {
  rmSync(WORK, { recursive: true, force: true });
  process.stderr.write(`${e instanceof Error ? e.message : e}\n`);
  process.exitCode = 1;
});
