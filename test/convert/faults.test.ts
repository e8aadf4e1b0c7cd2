/**
 * Every write of a conversion failing with ENOSPC, EIO or EROFS (issue 10, "every write is atomic
 * and named" and the fault tests): the shard body, its fsync and rename, the completion marker,
 * the job journal, config.json, a copied side file, the output marker and the index. Each failure
 * is a ConvertError (exit 2) naming the file with the advice for its code; nothing is marked
 * complete and no temporary file is left; running the same job again then gives output
 * byte-identical to a clean conversion.
 */
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { exitCodeOf, reportFailure } from "../../src/cli/failure.js";
import { ConvertError } from "../../src/convert/errors.js";
import { convertCheckpoint, type RunOptions } from "../../src/convert/node.js";
import { formatBytes } from "../../src/safetensors/index.js";
import { type Fault, type FaultCode, installFault, LOCK_FILE, listTree, TEMP_FILE } from "./faulty-fs.js";
import { exists, hashTree, SAMPLE, tempDir } from "./helpers.js";

/** 3MB shards give the sample five; in-process, so the order of calls is fixed. */
const OPTIONS = { target: "bf16", maxShardSize: "3MB", workers: 0 } as const;
const SHARD = (k: number) => `model-0000${k}-of-00005.safetensors`;
const INDEX = "model.safetensors.index.json";
const OUTPUT_MARKER = ".fp8kit-output.json";

let work: string;
let reference: Record<string, string>;
let restore: (() => void) | null = null;

beforeAll(async () => {
  work = await tempDir("fp8kit-faults-");
  const r = await convertCheckpoint({ input: SAMPLE, output: join(work, "ref"), ...OPTIONS });
  expect(r.status).toBe("complete");
  reference = await hashTree(join(work, "ref"));
  expect(Object.keys(reference)).toContain(SHARD(5));
});

afterAll(() => rm(work, { recursive: true, force: true }));

afterEach(() => {
  restore?.();
  restore = null;
});

/** What the message must say for each code (fs-node.ts's advice, and the space needed for ENOSPC). */
const ADVICE: Record<FaultCode, RegExp[]> = {
  ENOSPC: [/disk is full/, /needs about [\d.]+ [kMG]?i?B more/],
  EROFS: [/read-only/],
  EIO: [/I\/O error/],
};

interface Step {
  step: string;
  /** The file the message must name. */
  names: string;
  fault: Omit<Fault, "code">;
  codes: FaultCode[];
  /** Whether the output marker was already written when the fault hit (only the index comes after it). */
  markerWritten?: boolean;
}

const shardTemp = (k: number) => new RegExp(`/\\.${SHARD(k).replace(/\./g, "\\.")}\\.tmp-`);
const temp = (name: string) => new RegExp(`/\\.${name.replace(/\./g, "\\.")}\\.tmp-`);
const final = (name: string) => new RegExp(`/${name.replace(/\./g, "\\.")}$`);

const STEPS: Step[] = [
  {
    step: "the output directory",
    names: "",
    fault: { op: "mkdir", path: /\/the-output-directory-[A-Z]+$/ },
    codes: ["EROFS", "ENOSPC"],
  },
  {
    step: "a shard's body",
    names: SHARD(2),
    fault: { op: "write", path: shardTemp(2), nth: 3 },
    codes: ["ENOSPC", "EIO", "EROFS"],
  },
  { step: "creating a shard", names: SHARD(1), fault: { op: "open", path: shardTemp(1) }, codes: ["EROFS"] },
  {
    step: "a shard's fsync",
    names: SHARD(3),
    fault: { op: "sync", path: shardTemp(3) },
    codes: ["EIO", "ENOSPC"],
  },
  { step: "a shard's close", names: SHARD(3), fault: { op: "close", path: shardTemp(3) }, codes: ["EIO"] },
  {
    step: "a shard's rename",
    names: SHARD(4),
    fault: { op: "rename", path: final(SHARD(4)) },
    codes: ["EROFS"],
  },
  {
    step: "a completion marker's body",
    names: `.fp8kit-done/${SHARD(2)}.json`,
    fault: { op: "write", path: /\/\.fp8kit-done\/\.model-00002-of-00005\.safetensors\.json\.tmp-/ },
    codes: ["ENOSPC", "EIO", "EROFS"],
  },
  {
    step: "the markers' directory",
    names: ".fp8kit-done",
    fault: { op: "mkdir", path: /\/\.fp8kit-done$/ },
    codes: ["EROFS"],
  },
  {
    step: "the job journal",
    names: ".fp8kit-job.json",
    fault: { op: "write", path: temp(".fp8kit-job.json") },
    codes: ["ENOSPC", "EIO", "EROFS"],
  },
  {
    step: "config.json",
    names: "config.json",
    fault: { op: "write", path: temp("config.json") },
    codes: ["ENOSPC", "EIO", "EROFS"],
  },
  {
    step: "config.json's rename",
    names: "config.json",
    fault: { op: "rename", path: final("config.json") },
    codes: ["EIO"],
  },
  {
    step: "copying README.md",
    names: "README.md",
    fault: { op: "write", path: temp("README.md") },
    codes: ["EIO"],
  },
  {
    step: "copying tokenizer_config.json",
    names: "tokenizer_config.json",
    fault: { op: "open", path: temp("tokenizer_config.json") },
    codes: ["ENOSPC"],
  },
  {
    step: "the output marker",
    names: OUTPUT_MARKER,
    fault: { op: "write", path: temp(OUTPUT_MARKER) },
    codes: ["EROFS", "ENOSPC"],
  },
  {
    step: "the index",
    names: INDEX,
    fault: { op: "write", path: temp(INDEX) },
    codes: ["ENOSPC", "EIO"],
    markerWritten: true,
  },
  {
    step: "the index's fsync",
    names: INDEX,
    fault: { op: "sync", path: temp(INDEX) },
    codes: ["EROFS"],
    markerWritten: true,
  },
];

const CASES = STEPS.flatMap((s) => s.codes.map((code) => ({ ...s, code })));

describe("a write failing at every step of a conversion", () => {
  it.each(CASES)("$step: $code", async ({ step, names, fault, code, markerWritten }) => {
    const out = join(work, `${step.replace(/\W+/g, "-")}-${code}`);
    const run = (extra: Partial<RunOptions> = {}) =>
      convertCheckpoint({ input: SAMPLE, output: out, ...OPTIONS, ...extra });

    const f = installFault({ ...fault, code });
    restore = f.restore;
    const err = await run().then(
      () => null,
      (e: unknown) => e,
    );
    f.restore();
    restore = null;
    expect(f.fired()).toBe(true);

    expect(err).toBeInstanceOf(ConvertError);
    const e = err as ConvertError;
    expect(e.code).toBe("write-failed");
    expect(e.message).toContain(join(out, names));
    for (const advice of ADVICE[code]) expect(e.message).toMatch(advice);
    expect(exitCodeOf(e)).toBe(2);
    const printed: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((s) => {
      printed.push(String(s));
      return true;
    });
    try {
      expect(reportFailure(e)).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(printed.join("")).toMatch(/^fp8kit: error: .+\n$/);

    // Nothing marked complete, nothing half-written, no lock.
    const left = await listTree(out);
    expect(left).not.toContain(INDEX);
    if (markerWritten) expect(left).toContain(".fp8kit-job.json");
    else expect(left).not.toContain(OUTPUT_MARKER);
    expect(left.filter((p) => TEMP_FILE.test(p))).toEqual([]);
    expect(left.filter((p) => LOCK_FILE.test(p))).toEqual([]);

    // The same job again, on a healthy disk: the same bytes as a clean conversion.
    const again = await run({ resume: true });
    expect(again.status).toBe("complete");
    expect(await hashTree(out)).toEqual(reference);
  });

  it("ENOSPC says how much more the output needs: the shards not yet written, in full", async () => {
    const out = join(work, "space-needed");
    const f = installFault({ op: "sync", path: shardTemp(3), code: "ENOSPC" });
    restore = f.restore;
    const err = (await convertCheckpoint({ input: SAMPLE, output: out, ...OPTIONS }).catch(
      (e) => e,
    )) as Error;
    f.restore();
    restore = null;
    // Shards 1 and 2 are in place; 3 (failed), 4 and 5 are missing: their sizes in a clean output.
    let missing = 0;
    for (const k of [3, 4, 5]) missing += (await stat(join(work, "ref", SHARD(k)))).size;
    expect(err.message).toContain(`the output needs about ${formatBytes(missing)} more`);
    expect(err.message).toMatch(/, [\d.]+ [kMGT]?i?B free\)$/);
  });

  it("removing the completion markers fails after the index: the next run cleans them up", async () => {
    const out = join(work, "markers-left");
    const f = installFault({ op: "rm", path: /\/\.fp8kit-done$/, code: "EIO" });
    restore = f.restore;
    const err = (await convertCheckpoint({ input: SAMPLE, output: out, ...OPTIONS }).catch(
      (e) => e,
    )) as Error;
    f.restore();
    restore = null;
    expect(err).toBeInstanceOf(ConvertError);
    expect(err.message).toContain(join(out, ".fp8kit-done"));
    expect(err.message).toMatch(/I\/O error/);
    const again = await convertCheckpoint({ input: SAMPLE, output: out, ...OPTIONS });
    expect(again.status).toBe("complete");
    expect(again.shardsWritten).toEqual([]);
    expect(await hashTree(out)).toEqual(reference);
  });

  it("ENOSPC writing config.json, then --resume: no temporary file carried into the finished output (case 6)", async () => {
    const out = join(work, "case6");
    const f = installFault({ op: "write", path: temp("config.json"), code: "ENOSPC" });
    restore = f.restore;
    await expect(convertCheckpoint({ input: SAMPLE, output: out, ...OPTIONS })).rejects.toThrow(
      /config\.json: .*disk is full/,
    );
    f.restore();
    restore = null;
    await convertCheckpoint({ input: SAMPLE, output: out, ...OPTIONS, resume: true });
    const files = await listTree(out);
    expect(files.filter((p) => /\.tmp-/.test(p))).toEqual([]);
    expect(files.filter((p) => p.startsWith(".fp8kit-done") || LOCK_FILE.test(p))).toEqual([]);
    expect(await exists(join(out, INDEX))).toBe(true);
    expect(await hashTree(out)).toEqual(reference);
  });
});
