/**
 * Benchmark of `fp8kit convert` (run: `npm run bench:convert [-- --quick] [-- --trials N] [-- --only a,b]`;
 * `--only` keeps the cases whose name contains one of the words, e.g. `--only "BF16,W8A8"`).
 *
 * Generates a DeepSeek-V3-layout FP8 checkpoint under .tmp/ (about 2 GB; `--quick` about 300 MB),
 * then times, with the built CLI (`node dist/cli/main.js convert ...`), each beside `cp -r` of the
 * same input on the same disk in the same run:
 *   1. FP8 (float scales) -> BF16
 *   2. BF16 -> FP8 UE8M0 (the BF16 input is the output of 1)
 *   3. FP8 (float scales) -> FP8 UE8M0 (Blackwell requantization)
 *   then the layout cases (relabels, MXFP8, NVFP4, Ascend INT8), which have no target.
 * Cases 1 and 2 are also timed with `--workers 1` and `--workers 2` (issue 13's 2/1 speedup), and
 * beside the torch-CPU script users write (scripts/interop/torch_convert.py, 1 and 2 threads) when a
 * Python with torch is found: `$FP8KIT_VENV/bin/python`, else `.venv-interop/bin/python` (made by
 * `npm run interop`). Before any timing, fp8kit's output and the script's are compared tensor by
 * tensor by name (scripts/interop/compare_checkpoints.py); torch is timed only where they are
 * bit-identical. Every contender is a whole process timed by wall clock between two `sync`s, and the
 * trials are interleaved (one of each per round). Throughput counts bytes read plus bytes written
 * (cp: twice the input size). Peak RSS: fp8kit's `peakRssBytes` in its --json result (VmHWM,
 * worker threads included; getrusage's maxRSS would include this script's own peak); torch's from `/usr/bin/time -v` when present, else the script's
 * own `ru_maxrss`. Prints medians of the trials and deletes everything under .tmp/bench-convert.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { makeDeepseekCheckpoint, type SampleDims, TINY } from "../scripts/make-sample.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const WORK = join(ROOT, ".tmp", "bench-convert");
const CLI = join(ROOT, "dist", "cli", "main.js");
const quick = process.argv.includes("--quick");
const trialsArg = process.argv.indexOf("--trials");
const TRIALS = trialsArg > 0 ? Number(process.argv[trialsArg + 1]) : 3;
const onlyArg = process.argv.indexOf("--only");
const ONLY = onlyArg > 0 ? process.argv[onlyArg + 1].toLowerCase().split(",") : null;

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
const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
const HAS_TIME = existsSync("/usr/bin/time");
const CORES = availableParallelism();

interface Run {
  /** Wall-clock seconds, `sync` included. */
  s: number;
  stdout: string;
  stderr: string;
}

/** Run one whole process between two `sync`s, as the cp baseline is timed. */
function timed(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Run {
  execFileSync("sync");
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 256 << 20, env: env ?? process.env });
  execFileSync("sync");
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return { s, stdout: r.stdout, stderr: r.stderr };
}

function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

function timeCp(input: string): number {
  const out = join(WORK, "cp-out");
  rmSync(out, { recursive: true, force: true });
  const { s } = timed("cp", ["-r", input, out]);
  rmSync(out, { recursive: true, force: true });
  return s;
}

interface Timing {
  s: number;
  rss: number;
  /** Bytes read plus written. */
  bytes: number;
}

function timeConvert(input: string, output: string, args: string[], keep = false): Timing {
  rmSync(output, { recursive: true, force: true });
  const r = timed(process.execPath, [CLI, "convert", input, output, ...args, "--json"]);
  const res = lastJson(r.stdout) as { peakRssBytes: number; bytesRead: number; bytesWritten: number };
  if (!keep) rmSync(output, { recursive: true, force: true });
  return { s: r.s, rss: res.peakRssBytes, bytes: res.bytesRead + res.bytesWritten };
}

// ---- the torch-CPU script (scripts/interop/torch_convert.py) -----------------------------------

const VENV = process.env.FP8KIT_VENV ?? join(ROOT, ".venv-interop");
const PYTHON = join(VENV, "bin", "python");
const PY_ENV = { ...process.env, PYTHONDONTWRITEBYTECODE: "1" };
const TORCH_SCRIPT = join(ROOT, "scripts", "interop", "torch_convert.py");
const COMPARE_SCRIPT = join(ROOT, "scripts", "interop", "compare_checkpoints.py");

/** The torch version, or why the torch comparison is skipped. */
function probeTorch(): { version: string } | { skipped: string } {
  if (!existsSync(PYTHON))
    return { skipped: `no Python at ${PYTHON} (run \`npm run interop\` to create it, or set FP8KIT_VENV)` };
  const r = spawnSync(PYTHON, ["-c", "import torch, safetensors; print(torch.__version__)"], {
    encoding: "utf8",
    env: PY_ENV,
  });
  if (r.status !== 0)
    return {
      skipped: `torch or safetensors does not import in ${PYTHON}: ${r.stderr.trim().split("\n").pop()}`,
    };
  return { version: r.stdout.trim() };
}

function timeTorch(input: string, output: string, to: "bf16" | "fp8", threads: number, keep = false): Timing {
  rmSync(output, { recursive: true, force: true });
  const script = [TORCH_SCRIPT, input, output, "--to", to, "--threads", String(threads)];
  const r = HAS_TIME
    ? timed("/usr/bin/time", ["-v", PYTHON, ...script], PY_ENV)
    : timed(PYTHON, script, PY_ENV);
  const res = lastJson(r.stdout) as { max_rss_bytes: number };
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  const rss = m ? Number(m[1]) * 1024 : res.max_rss_bytes;
  const bytes = dirSize(input) + dirSize(output);
  if (!keep) rmSync(output, { recursive: true, force: true });
  return { s: r.s, rss, bytes };
}

/** fp8kit's output against the torch script's, tensor by tensor: a line saying whether they are identical. */
function compareWithTorch(
  input: string,
  fp8kitArgs: string[],
  to: "bf16" | "fp8",
): { ok: boolean; line: string } {
  const a = join(WORK, "check-fp8kit");
  const b = join(WORK, "check-torch");
  timeConvert(input, a, fp8kitArgs, true);
  timeTorch(input, b, to, 2, true);
  const r = spawnSync(PYTHON, [COMPARE_SCRIPT, a, b], { encoding: "utf8", env: PY_ENV });
  rmSync(a, { recursive: true, force: true });
  rmSync(b, { recursive: true, force: true });
  const verdict = r.stdout.trim().split("\n").pop() ?? "";
  const label = `fp8kit convert ${fp8kitArgs.join(" ")} vs torch_convert.py --to ${to}`;
  if (r.status === 0) {
    const n = (JSON.parse(verdict) as { tensors: number }).tensors;
    return { ok: true, line: `check: ${label}: ${n} tensors, all bit-identical` };
  }
  return { ok: false, line: `check: ${label}: NOT IDENTICAL ${verdict} ${r.stderr.trim().slice(-500)}` };
}

// ---- the run ------------------------------------------------------------------------------------

function machine(torch: { version: string } | { skipped: string }): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const py = "version" in torch ? `torch ${torch.version} (${PYTHON})` : "torch: none";
  return `machine: ${cpu}, ${CORES} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, ${py}`;
}

interface Case {
  name: string;
  input: string;
  args: string[];
  /** Issue 13's target for bytes/s against `cp -r` (0: none). */
  cpTarget: number;
  /** Also time `--workers 1` and `--workers 2`. */
  workers?: boolean;
  /** The torch script's counterpart, and issue 13's target for fp8kit's speed against it on 2 threads. */
  torch?: { to: "bf16" | "fp8"; target: number };
}

interface Variant {
  label: string;
  trials: Timing[];
  run: () => Timing;
}

function row(label: string, trials: Timing[], extra = ""): string {
  const s = median(trials.map((t) => t.s));
  const rate = median(trials.map((t) => t.bytes / t.s));
  const rss = Math.max(...trials.map((t) => t.rss));
  return `  ${label.padEnd(28)} ${s.toFixed(2).padStart(7)} s ${(rate / 1e6).toFixed(0).padStart(6)} MB/s  peak RSS ${mib(rss).padStart(9)}${extra}`;
}

const targetText = (t: number) => (t > 0 ? `(target >= ${t})` : "(no target)");

function runCase(c: Case, torchOk: boolean): string[] {
  const out = join(WORK, "out");
  const inBytes = dirSize(c.input);
  const cp: Timing[] = [];
  const variants: Variant[] = [
    {
      label: `fp8kit (default: ${CORES} workers)`,
      trials: [],
      run: () => timeConvert(c.input, out, c.args),
    },
  ];
  const byWorkers = new Map<number, Variant>([[CORES, variants[0]]]);
  if (c.workers)
    for (const n of [1, 2]) {
      if (byWorkers.has(n)) continue;
      const v: Variant = {
        label: `fp8kit --workers ${n}`,
        trials: [],
        run: () => timeConvert(c.input, out, [...c.args, "--workers", String(n)]),
      };
      variants.push(v);
      byWorkers.set(n, v);
    }
  const torchByThreads = new Map<number, Variant>();
  if (c.torch && torchOk) {
    const to = c.torch.to;
    for (const n of [1, 2]) {
      const v: Variant = {
        label: `torch script, ${n} thread${n > 1 ? "s" : ""}`,
        trials: [],
        run: () => timeTorch(c.input, join(WORK, "torch-out"), to, n),
      };
      variants.push(v);
      torchByThreads.set(n, v);
    }
  }
  // Interleaved: one trial of every contender per round, so drift on a noisy machine hits all alike.
  for (let i = 0; i < TRIALS; i++) {
    const s = timeCp(c.input);
    cp.push({ s, rss: 0, bytes: 2 * inBytes });
    for (const v of variants) v.trials.push(v.run());
  }
  const lines = [`${c.name}: ${(inBytes / 1e9).toFixed(2)} GB in`];
  lines.push(row("cp -r + sync", cp).replace(/\s*peak RSS.*/, ""));
  for (const v of variants) lines.push(row(v.label, v.trials));
  const rate = (t: Timing[]) => median(t.map((x) => x.bytes / x.s));
  const time = (t: Timing[]) => median(t.map((x) => x.s));
  const verdicts = [
    `fp8kit/cp ${(rate(variants[0].trials) / rate(cp)).toFixed(2)}x ${targetText(c.cpTarget)}`,
  ];
  const t2 = torchByThreads.get(2);
  if (c.torch && t2)
    verdicts.push(
      `fp8kit vs torch 2 threads ${(time(t2.trials) / time(variants[0].trials)).toFixed(2)}x faster ${targetText(c.torch.target)}`,
    );
  const w1 = byWorkers.get(1);
  const w2 = byWorkers.get(2);
  if (c.workers && w1 && w2)
    verdicts.push(`workers 2 vs 1 ${(time(w1.trials) / time(w2.trials)).toFixed(2)}x (target >= 1.7)`);
  lines.push(`  => ${verdicts.join("; ")}`);
  return lines;
}

async function main(): Promise<void> {
  rmSync(WORK, { recursive: true, force: true });
  const torch = probeTorch();
  const head = [machine(torch)];
  if ("skipped" in torch) head.push(`torch comparison skipped: ${torch.skipped}`);
  else
    head.push(
      `torch peak RSS from ${HAS_TIME ? "/usr/bin/time -v" : "the script's ru_maxrss"}; its times include importing torch`,
    );
  process.stdout.write(`${head.join("\n")}\n`);
  const fp8In = join(WORK, "in-fp8");
  const bf16In = join(WORK, "in-bf16");
  let t0 = performance.now();
  await makeDeepseekCheckpoint(fp8In, { dims: DIMS, fast: true, maxShardSize: quick ? "100MB" : "500MB" });
  const size = dirSize(fp8In);
  head.push(
    `input: generated ${(size / 1e9).toFixed(2)} GB DeepSeek-layout FP8 checkpoint in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  process.stdout.write(`${head[head.length - 1]}\n`);
  t0 = performance.now();
  timeConvert(fp8In, bf16In, ["--to", "bf16"], true);
  process.stdout.write(
    `made the BF16 input (${(dirSize(bf16In) / 1e9).toFixed(2)} GB) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  const wanted = (name: string) => ONLY === null || ONLY.some((w) => name.toLowerCase().includes(w));
  // A DeepSeek-V3.1-style input (UE8M0 scales as F8_E8M0): the source of the MXFP8 relabel.
  const ue8m0In = join(WORK, "in-ue8m0");
  if (wanted("UE8M0 -> MXFP8 relabel"))
    timeConvert(fp8In, ue8m0In, ["--to", "fp8", "--scale-dtype", "e8m0"], true);
  // Issue 13's targets first; the layout cases (issues 11, 12) have none.
  const all: Case[] = [
    {
      name: "FP8 -> BF16",
      input: fp8In,
      args: ["--to", "bf16"],
      cpTarget: 0.9,
      workers: true,
      torch: { to: "bf16", target: 3 },
    },
    {
      name: "BF16 -> FP8 ue8m0",
      input: bf16In,
      args: ["--to", "fp8"],
      cpTarget: 0.8,
      workers: true,
      torch: { to: "fp8", target: 0 },
    },
    { name: "FP8 float -> FP8 ue8m0", input: fp8In, args: ["--to", "fp8"], cpTarget: 0.8 },
    { name: "UE8M0 -> MXFP8 relabel", input: ue8m0In, args: ["--to", "mxfp8"], cpTarget: 0 },
    { name: "FP8 -> CT FP8 relabel", input: fp8In, args: ["--layout", "compressed-tensors"], cpTarget: 0 },
    { name: "BF16 -> MXFP8 (ct rule)", input: bf16In, args: ["--to", "mxfp8"], cpTarget: 0, workers: true },
    { name: "BF16 -> NVFP4 (CT)", input: bf16In, args: ["--to", "nvfp4"], cpTarget: 0, workers: true },
    // Issue 12: Ascend INT8 straight from the FP8 files (compare with FP8 -> BF16).
    { name: "FP8 -> W8A8 (Ascend)", input: fp8In, args: ["--to", "w8a8"], cpTarget: 0, workers: true },
    { name: "FP8 -> W4A8 (Ascend)", input: fp8In, args: ["--to", "w4a8"], cpTarget: 0, workers: true },
  ];
  const cases = all.filter((c) => wanted(c.name));
  // Bit-identity against the torch script before any timing.
  const identical = new Set<string>();
  if ("version" in torch)
    for (const c of cases) {
      if (!c.torch) continue;
      const check = compareWithTorch(c.input, c.args, c.torch.to);
      head.push(check.line);
      process.stdout.write(`${check.line}\n`);
      if (check.ok) identical.add(c.name);
      else process.exitCode = 1;
    }
  const blocks: string[] = [];
  for (const c of cases) {
    const lines = runCase(c, identical.has(c.name));
    blocks.push(lines.join("\n"));
    process.stdout.write(`${blocks[blocks.length - 1]}\n`);
  }
  process.stdout.write(
    `\n${head.join("\n")}\nmedians of ${TRIALS} trials (wall clock, sync included), ${quick ? "--quick" : "full"} size; MB/s = bytes read + written per second:\n${blocks.join("\n")}\n`,
  );
  rmSync(WORK, { recursive: true, force: true });
}

main().catch((e) => {
  rmSync(WORK, { recursive: true, force: true });
  process.stderr.write(`${e instanceof Error ? e.message : e}\n`);
  process.exitCode = 1;
});
