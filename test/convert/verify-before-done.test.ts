/**
 * `--verify` runs before the output is marked complete (issue 10, case 5, second half): a shard
 * corrupted on disk between its writing and `--finalize --verify` fails verification; the output
 * is left unfinished (no index, no config.json, journal kept), the mismatch names the tensor and
 * says by how much, and running the job again rewrites that shard and completes.
 */
import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../../src/convert/node.js";
import { listTree } from "./faulty-fs.js";
import { exists, hashTree, runCli, SAMPLE, tempDir } from "./helpers.js";

const OPTIONS = { target: "bf16", maxShardSize: "3MB", workers: 0 } as const;
const ARGS = ["--to", "bf16", "--max-shard-size", "3MB", "--workers", "1"];
const SHARD = "model-00002-of-00005.safetensors";
const INDEX = "model.safetensors.index.json";

let work: string;
let reference: Record<string, string>;

beforeAll(async () => {
  work = await tempDir("fp8kit-verify-");
  await convertCheckpoint({ input: SAMPLE, output: join(work, "ref"), ...OPTIONS });
  reference = await hashTree(join(work, "ref"));
});

afterAll(() => rm(work, { recursive: true, force: true }));

/** The value of BF16 bits `h`. */
const bf16 = (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0];

/**
 * Corrupt one element of a converted (BF16) weight in `file`, read straight from the safetensors
 * header: set the top exponent bit of an element where it is clear, multiplying it by 2^128.
 * Returns the tensor's name and the element's new value.
 */
async function corruptWeight(file: string): Promise<{ tensor: string; value: number }> {
  const bytes = await readFile(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const [tensor, info] = Object.entries(header).find(
    // A projection of attention or MLP: FP8 in the input, so converted (eh_proj is copied).
    ([name, t]) => /\.(self_attn|mlp)\..*_proj(_with_mqa)?\.weight$/.test(name) && t.dtype === "BF16",
  )!;
  const [begin, end] = info.data_offsets;
  for (let at = 8 + n + begin + (((end - begin) >> 2) & ~1); at < 8 + n + end; at += 2) {
    const h = bytes.readUInt16LE(at);
    if ((h & 0x7f80) === 0 || (h & 0x4000) !== 0) continue; // zero/subnormal, or already huge
    const flipped = h | 0x4000;
    const f = await open(file, "r+");
    await f.write(new Uint8Array([flipped >> 8]), 0, 1, at + 1);
    await f.close();
    return { tensor, value: bf16(flipped) };
  }
  throw new Error(`no element to corrupt in ${tensor}`);
}

describe("verification before the output is marked complete", () => {
  it("a corrupted shard: verify-failed, nothing marked complete, the next run rewrites it", async () => {
    const out = join(work, "lib");
    const part = await convertCheckpoint({ input: SAMPLE, output: out, ...OPTIONS, part: [1, 1] });
    expect(part.status).toBe("part-done");
    const { tensor, value } = await corruptWeight(join(out, SHARD));

    const fin = await convertCheckpoint({
      input: SAMPLE,
      output: out,
      ...OPTIONS,
      finalize: true,
      verify: true,
    });
    expect(fin.status).toBe("verify-failed");
    expect(fin.verify!.mismatches.map((m) => m.tensor)).toEqual([tensor]);
    // The squared error of the corrupted element dominates the sum: its new value squared
    // (the rest of the tensor adds about 1e-6 relative to it).
    const reason = fin.verify!.mismatches[0].reason;
    const ee = /ee ([-+.\de]+) measured, ([-+.\de]+) reported/.exec(reason);
    expect(ee).not.toBeNull();
    expect(Number(ee![1]) / value ** 2).toBeCloseTo(1, 5);
    expect(Number(ee![2])).toBeLessThan(1);
    // Nine significant digits: enough to see the difference.
    expect(ee![1]).toMatch(/^\d\.\d{8}e[+-]\d+$/);

    const left = await listTree(out);
    expect(left).not.toContain(INDEX);
    expect(left).not.toContain("config.json");
    expect(left).not.toContain(".fp8kit-output.json");
    expect(left).toContain(".fp8kit-job.json");
    expect(left).not.toContain(`.fp8kit-done/${SHARD}.json`);
    expect(left.filter((f) => /^\.fp8kit-done\/.+\.json$/.test(f)).length).toBe(4);
    expect(left.filter((f) => /\.tmp-|\.fp8kit-lock/.test(f))).toEqual([]);

    const again = await convertCheckpoint({ input: SAMPLE, output: out, ...OPTIONS, verify: true });
    expect(again.status).toBe("complete");
    expect(again.shardsWritten).toEqual([SHARD]);
    expect(again.verify!.mismatches).toEqual([]);
    expect(await hashTree(out)).toEqual(reference);
  });

  it("through the CLI: exit 1, the mismatch printed, no index", async () => {
    const out = join(work, "cli");
    const p = await runCli(["convert", SAMPLE, out, ...ARGS, "--part", "1/1"]);
    expect(p.code).toBe(0);
    const { tensor } = await corruptWeight(join(out, SHARD));
    const r = await runCli(["convert", SAMPLE, out, ...ARGS, "--finalize", "--verify"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`MISMATCH ${tensor}: `);
    expect(r.stdout).toMatch(/1 mismatches/);
    // It must not claim to have written what it did not write.
    expect(r.stdout).not.toMatch(/wrote .*model\.safetensors\.index\.json/);
    expect(await exists(join(out, INDEX))).toBe(false);
    expect(await exists(join(out, "config.json"))).toBe(false);
    const again = await runCli(["convert", SAMPLE, out, ...ARGS, "--verify"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/ 0 mismatches/);
    expect(await hashTree(out)).toEqual(reference);
  });
});
