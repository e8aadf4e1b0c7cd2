/**
 * Ctrl-C and SIGTERM during `fp8kit convert` (issue 10, case 8), through the built CLI: the run
 * stops with 128 + the signal's number, says once that running the command again resumes, leaves
 * no temporary file and no lock; running it again completes byte-identical to an uninterrupted run.
 */
import { spawn } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../../src/convert/node.js";
import { BIG_ARGS, makeBigInput } from "./big-input.js";
import { LOCK_FILE, listTree, TEMP_FILE } from "./faulty-fs.js";
import { CLI, hashTree, runCli, SAMPLE, tempDir } from "./helpers.js";

let work: string;
let big: string;
let reference: Record<string, string>;

beforeAll(async () => {
  work = await tempDir("fp8kit-signals-");
  big = await makeBigInput(work);
  const r = await runCli(["convert", big, join(work, "ref"), ...BIG_ARGS]);
  expect(r.code).toBe(0);
  reference = await hashTree(join(work, "ref"));
});

// Hundreds of MB for the larger inputs: never left behind.
afterAll(() => rm(work, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Start `convert big out`, send `signal` once a shard's temporary file exists (so the CLI is set up
 * and mid-shard; given up after 10 s on a loaded machine), and return the exit code and stderr.
 */
async function interrupted(
  out: string,
  signal: "SIGINT" | "SIGTERM",
): Promise<{ code: number | null; by: string | null; stderr: string; sentMidShard: boolean }> {
  const child = spawn(process.execPath, [CLI, "convert", big, out, ...BIG_ARGS], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<[number | null, string | null]>((res) =>
    child.on("close", (code, by) => res([code, by])),
  );
  let sentMidShard = false;
  for (const start = Date.now(); Date.now() - start < 10_000; await sleep(10)) {
    const entries = await readdir(out).catch(() => [] as string[]);
    if (entries.some((e) => /^\.model.*\.tmp-/.test(e))) {
      sentMidShard = true;
      break;
    }
  }
  child.kill(signal);
  const [code, by] = await exited; // "close": stderr is read to its end
  return { code, by, stderr, sentMidShard };
}

describe("convertCheckpoint stopped through its AbortSignal (the library side of a signal)", () => {
  const OPTIONS = { target: "bf16", maxShardSize: "3MB", workers: 0 } as const;

  it("stops after any tensor with the signal's reason, deletes its temporary file, releases the lock; resumes", async () => {
    const sampleRef = join(work, "sample-ref");
    await convertCheckpoint({ input: SAMPLE, output: sampleRef, ...OPTIONS });
    const expected = await hashTree(sampleRef);
    const out = join(work, "aborted");
    let complete = false;
    // Counts of tensors of each run (a resumed run counts only its own).
    for (const [i, after] of [1, 20, 13, 40].entries()) {
      const controller = new AbortController();
      const reason = new Error(`stopped after ${after}`);
      const err = await convertCheckpoint({
        input: SAMPLE,
        output: out,
        ...OPTIONS,
        signal: controller.signal,
        afterTensor: (done) => {
          if (done === after) controller.abort(reason);
        },
      }).then(
        (r) => r.status,
        (e) => e,
      );
      // The last tensor's abort may come too late to stop anything: then the run is complete.
      complete = err === "complete";
      if (complete && i === 3) break;
      expect(err).toBe(reason);
      const left = await listTree(out);
      expect(left.filter((f) => /\.tmp-/.test(f) || LOCK_FILE.test(f))).toEqual([]);
      expect(left).not.toContain("model.safetensors.index.json");
    }
    if (!complete) await convertCheckpoint({ input: SAMPLE, output: out, ...OPTIONS });
    expect(await hashTree(out)).toEqual(expected);
  });
});

describe("convert stopped by a signal (CLI)", () => {
  for (const [signal, exit] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    it(`${signal}: exit ${exit}, one line saying it resumes, nothing half-written; then resumes`, async () => {
      const out = join(work, signal);
      const r = await interrupted(out, signal);
      expect(r.sentMidShard).toBe(true);
      expect(r.by, r.stderr).toBeNull(); // it exited by itself, not killed by the signal
      expect(r.code, r.stderr).toBe(exit);
      const lines = r.stderr.split("\n").filter((l) => /resume/.test(l));
      expect(lines.length, r.stderr).toBe(1);
      expect(lines[0]).toMatch(/again/);
      expect(r.stderr).not.toMatch(/\n\s+at |internal error/);
      const left = await listTree(out);
      expect(left.filter((f) => TEMP_FILE.test(f) || /\.tmp-/.test(f))).toEqual([]);
      expect(left.filter((f) => LOCK_FILE.test(f))).toEqual([]);
      expect(left).not.toContain("model.safetensors.index.json");

      const again = await runCli(["convert", big, out, ...BIG_ARGS]);
      expect(again.code, again.stderr).toBe(0);
      expect(await hashTree(out)).toEqual(reference);
    });
  }
});
