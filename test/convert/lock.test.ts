/**
 * One run at a time per output directory (issue 10, case 7), through the built CLI: a live holder
 * of the lock refuses a second run at once, naming its pid, start time and the lock file; a lock
 * left by a dead process is taken over; two runs of the same job started together give one
 * success, one clean refusal and a finished output equal to a single run's.
 */
import { spawn } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIG_ARGS, makeBigInput } from "./big-input.js";
import { LOCK_FILE, listTree, TEMP_FILE } from "./faulty-fs.js";
import { hashTree, KILL_AFTER, runCli, runNode, SAMPLE, tempDir } from "./helpers.js";

/** The options of kill-after.mjs, so a resumed run is the same job. */
const ARGS = ["--to", "bf16", "--max-shard-size", "3MB", "--workers", "1"];

let work: string;
let reference: Record<string, string>;
let big: string;
let bigReference: Record<string, string>;

beforeAll(async () => {
  work = await tempDir("fp8kit-lock-");
  const r = await runCli(["convert", SAMPLE, join(work, "ref"), ...ARGS]);
  expect(r.code).toBe(0);
  reference = await hashTree(join(work, "ref"));
  big = await makeBigInput(work);
  const b = await runCli(["convert", big, join(work, "big-ref"), ...BIG_ARGS]);
  expect(b.code).toBe(0);
  bigReference = await hashTree(join(work, "big-ref"));
});

// Hundreds of MB for the larger inputs: never left behind.
afterAll(() => rm(work, { recursive: true, force: true }));

/** An unfinished output of the sample's job: a run SIGKILLed after 30 tensors (its lock and temp file left). */
async function killedRun(name: string): Promise<string> {
  const out = join(work, name);
  const r = await runNode([KILL_AFTER, SAMPLE, out, "30"]);
  expect(r.signal).toBe("SIGKILL");
  return out;
}

/** The pid of a process that has exited. */
function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["-e", "0"]);
    p.on("error", reject);
    p.on("exit", () => resolve(p.pid!));
  });
}

const holder = (pid: number, started: string) => JSON.stringify({ pid, host: hostname(), started });

/** Nothing of a run is left in a finished output: no markers, journal, lock or temporary file. */
function expectClean(files: string[]): void {
  expect(files.filter((f) => f.startsWith(".fp8kit-done") || f === ".fp8kit-job.json")).toEqual([]);
  expect(files.filter((f) => LOCK_FILE.test(f) || TEMP_FILE.test(f) || /\.tmp-/.test(f))).toEqual([]);
}

describe("the lock of an output directory", () => {
  it("a live holder: the second run is refused at once, naming the holder and the lock file", async () => {
    const out = await killedRun("live");
    const started = "2026-01-02T03:04:05.678Z";
    const lock = join(out, ".fp8kit-lock");
    await writeFile(lock, holder(process.pid, started));
    const before = await hashTree(out);
    const r = await runCli(["convert", SAMPLE, out, ...ARGS]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^fp8kit: error: /);
    expect(r.stderr).toContain(`pid ${process.pid} on ${hostname()}, started ${started}`);
    expect(r.stderr).toContain(lock);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // Refused before touching anything: the holder's files (its temporary shard too) are intact.
    expect(await hashTree(out)).toEqual(before);
  });

  it("a live --part run holds the directory against a whole run", async () => {
    const out = await killedRun("live-part");
    const lock = join(out, ".fp8kit-lock-part-1-of-2");
    await writeFile(lock, holder(process.pid, "2026-01-02T03:04:05.678Z"));
    const r = await runCli(["convert", SAMPLE, out, ...ARGS]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`pid ${process.pid}`);
    expect(r.stderr).toContain(lock);
  });

  it("a stale lock (its holder dead) is taken over and the run completes", async () => {
    const out = await killedRun("stale");
    await writeFile(join(out, ".fp8kit-lock"), holder(await deadPid(), "2026-01-02T03:04:05.678Z"));
    const r = await runCli(["convert", SAMPLE, out, ...ARGS]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expectClean(await listTree(out));
    expect(await hashTree(out)).toEqual(reference);
  });

  it("a lock file left empty (its holder killed while writing it) is taken over", async () => {
    const out = await killedRun("torn");
    await writeFile(join(out, ".fp8kit-lock"), "");
    const r = await runCli(["convert", SAMPLE, out, ...ARGS]);
    expect(r.code).toBe(0);
    expect(await hashTree(out)).toEqual(reference);
  });

  it("two runs of the same job started together: one converts, the other is refused (3 trials)", async () => {
    for (let trial = 0; trial < 3; trial++) {
      const out = join(work, `race-${trial}`);
      await rm(out, { recursive: true, force: true });
      const runs = await Promise.all([
        runCli(["convert", big, out, ...BIG_ARGS]),
        runCli(["convert", big, out, ...BIG_ARGS]),
      ]);
      const codes = runs.map((r) => r.code).sort();
      expect(codes, runs.map((r) => r.stderr).join("\n")).toEqual([0, 2]);
      const loser = runs.find((r) => r.code === 2)!;
      expect(loser.stderr).toMatch(
        /another fp8kit run is writing this directory \(pid \d+ on .+, started \d{4}-\d\d-\d\dT[\d:.]+Z\)/,
      );
      expect(loser.stderr).toContain(join(out, ".fp8kit-lock"));
      expect(loser.stderr).not.toMatch(/ENOENT|\n\s+at /);
      expectClean(await listTree(out));
      expect(await hashTree(out)).toEqual(bigReference);
    }
  });
});
