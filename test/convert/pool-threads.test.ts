/**
 * The conversion pool's worker threads (src/convert/pool.ts, worker.ts: bands read into and
 * converted into shared-memory slots, reused band after band) against the in-process run, which
 * calls the same kernels on plain arrays: for every kind of band kernel (dequantization to 2- and
 * 4-byte outputs, block requantization, MX and NVFP4 packing with their scales, the Ascend kernel
 * with its `scale_bias` arrays, a lossless relabel, quantization of a BF16 input), the built CLI
 * with 2 workers must write the same bytes as `convertCheckpoint` with none. Under vitest the pool
 * always runs in-process (the compiled worker is only in dist/), so the CLI is the threaded side.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../../src/convert/node.js";
import { hashTree, runCli, SAMPLE, tempDir } from "./helpers.js";

let work: string;
let bf16Input: string;

beforeAll(async () => {
  work = await tempDir("fp8kit-pool-");
  bf16Input = join(work, "bf16-input");
  await convertCheckpoint({ input: SAMPLE, output: bf16Input, target: "bf16", workers: 0 });
});

afterAll(async () => {
  const { rm } = await import("node:fs/promises");
  await rm(work, { recursive: true, force: true });
});

const CASES: { name: string; input: () => string; args: string[] }[] = [
  { name: "FP8 -> BF16", input: () => SAMPLE, args: ["--to", "bf16"] },
  { name: "FP8 -> FP32 (outputs 4x the input)", input: () => SAMPLE, args: ["--to", "fp32"] },
  {
    name: "FP8 -> FP8 UE8M0 (requantization)",
    input: () => SAMPLE,
    args: ["--to", "fp8", "--scale-dtype", "e8m0"],
  },
  { name: "FP8 -> MXFP4", input: () => SAMPLE, args: ["--to", "mxfp4"] },
  { name: "FP8 -> NVFP4", input: () => SAMPLE, args: ["--to", "nvfp4"] },
  { name: "FP8 -> W4A8 (scale_bias arrays)", input: () => SAMPLE, args: ["--to", "w4a8"] },
  {
    name: "FP8 -> compressed-tensors FP8 (relabel)",
    input: () => SAMPLE,
    args: ["--layout", "compressed-tensors"],
  },
  { name: "BF16 -> FP8 UE8M0", input: () => bf16Input, args: ["--to", "fp8", "--scale-dtype", "e8m0"] },
  { name: "BF16 -> MXFP8", input: () => bf16Input, args: ["--to", "mxfp8"] },
];

describe("worker threads on shared memory give the in-process bytes", () => {
  it.each(CASES)("$name", async ({ name, input, args }) => {
    const slug = name.replace(/\W+/g, "-");
    const cli = await runCli(["convert", input(), join(work, `${slug}-threads`), ...args, "--workers", "2"]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stderr).not.toMatch(/in-process/);
    const ref = await runCli(["convert", input(), join(work, `${slug}-inproc`), ...args, "--workers", "0"]);
    expect(ref.code, ref.stderr).toBe(0);
    const threaded = await hashTree(join(work, `${slug}-threads`));
    expect(Object.keys(threaded).length).toBeGreaterThan(2);
    expect(threaded).toEqual(await hashTree(join(work, `${slug}-inproc`)));
  });
});
