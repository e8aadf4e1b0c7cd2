/**
 * Resume after `kill -9` at 20 seeded random points (issue 10, fault tests): kill-after.mjs converts
 * the sample and SIGKILLs itself after N tensors of its run; the next point kills the next run in
 * the same output (a chain of crashes, each leaving its temporary shard and its lock behind), and a
 * run that reaches the end finishes the output, which must then equal an uninterrupted conversion
 * byte for byte with nothing of the runs left (markers, journal, lock, temporary files).
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seededUniform } from "../../src/formats/prng.js";
import { LOCK_FILE, listTree, TEMP_FILE } from "./faulty-fs.js";
import { hashTree, KILL_AFTER, runCli, runNode, SAMPLE, tempDir } from "./helpers.js";

/** kill-after.mjs's options. */
const ARGS = ["--to", "bf16", "--max-shard-size", "3MB", "--workers", "1"];
const SEED = 20_251_210;
const KILLS = 20;
const TENSORS = 73;
const INDEX = "model.safetensors.index.json";

let work: string;
let reference: Record<string, string>;

beforeAll(async () => {
  work = await tempDir("fp8kit-kills-");
  const r = await runCli(["convert", SAMPLE, join(work, "ref"), ...ARGS]);
  expect(r.code).toBe(0);
  reference = await hashTree(join(work, "ref"));
});

afterAll(() => rm(work, { recursive: true, force: true }));

async function expectFinished(out: string): Promise<void> {
  const files = await listTree(out);
  expect(files.filter((f) => f.startsWith(".fp8kit-done") || f === ".fp8kit-job.json")).toEqual([]);
  expect(files.filter((f) => LOCK_FILE.test(f) || TEMP_FILE.test(f) || /\.tmp-/.test(f))).toEqual([]);
  expect(await hashTree(out)).toEqual(reference);
}

describe("kill -9 at random points, resumed each time", () => {
  it(`${KILLS} seeded kill points (seed ${SEED}) give byte-identical outputs`, async () => {
    const rand = seededUniform(SEED);
    const points = Array.from({ length: KILLS }, () => 1 + Math.floor(rand() * TENSORS));
    let chain = 0;
    let out = join(work, `chain-${chain}`);
    let killed = 0;
    let unfinished = false;
    for (const [i, n] of points.entries()) {
      const r = await runNode([KILL_AFTER, SAMPLE, out, String(n)]);
      const at = `point ${i + 1} (after ${n} tensors) in ${out}: ${r.stderr}`;
      if (r.signal === "SIGKILL") {
        killed++;
        unfinished = true;
        expect((await listTree(out)).includes(INDEX), at).toBe(false);
        continue;
      }
      // Fewer than n tensors were left to convert: this run finished the output.
      expect(r.code, at).toBe(0);
      await expectFinished(out);
      unfinished = false;
      out = join(work, `chain-${++chain}`);
    }
    if (unfinished) {
      const r = await runCli(["convert", SAMPLE, out, ...ARGS, "--resume"]);
      expect(r.code, r.stderr).toBe(0);
      await expectFinished(out);
    }
    // Most points must be real crashes for the test to mean anything.
    expect(killed).toBeGreaterThanOrEqual(KILLS / 2);
  });
});
