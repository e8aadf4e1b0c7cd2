/**
 * Where convert may write (issue 10, cases 1 and 2), through the built CLI: an output that overlaps
 * the input in either direction, reached through symbolic links, is refused (exit 2) without
 * touching a byte of the input, --force included; --force replaces only a directory fp8kit wrote.
 */
import { cp, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConvertError } from "../../src/convert/errors.js";
import { convertCheckpoint } from "../../src/convert/node.js";
import { listTree } from "./faulty-fs.js";
import { exists, hashTree, runCli, SAMPLE, tempDir } from "./helpers.js";

const ARGS = ["--to", "bf16", "--max-shard-size", "3MB", "--workers", "1"];
const SHARDS = [
  "model-00001-of-00003.safetensors",
  "model-00002-of-00003.safetensors",
  "model-00003-of-00003.safetensors",
];

let work: string;
let reference: Record<string, string>;

beforeAll(async () => {
  work = await tempDir("fp8kit-paths-");
  const r = await runCli(["convert", SAMPLE, join(work, "ref"), ...ARGS]);
  expect(r.code).toBe(0);
  reference = await hashTree(join(work, "ref"));
});

afterAll(() => rm(work, { recursive: true, force: true }));

/** A fresh copy of the sample at `dir`. */
async function copySample(dir: string): Promise<void> {
  await cp(SAMPLE, dir, { recursive: true });
}

/**
 * `convert input output` (with and without --force) is refused as an overlap: exit 2, a one-line
 * message matching `pattern`, and the real input directory `realInput` unchanged (bytes and listing).
 */
async function expectOverlapRefused(
  input: string,
  output: string,
  realInput: string,
  pattern: RegExp,
): Promise<void> {
  const bytes = await hashTree(realInput);
  const listing = await listTree(realInput);
  for (const force of [[], ["--force"]]) {
    const r = await runCli(["convert", input, output, ...ARGS, ...force]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^fp8kit: error: /);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await listTree(realInput)).toEqual(listing);
    expect(await hashTree(realInput)).toEqual(bytes);
  }
  // The library refuses with the overlap's own code.
  const err = await convertCheckpoint({ input, output, target: "bf16", force: true }).catch((e) => e);
  expect(err).toBeInstanceOf(ConvertError);
  expect((err as ConvertError).code).toBe("output-in-input");
  expect(await hashTree(realInput)).toEqual(bytes);
}

describe("convert refuses an output overlapping the input, links followed (case 1)", () => {
  it("the input through a link, the output its real directory (--force used to delete the input)", async () => {
    const x = join(work, "same-a");
    await copySample(join(x, "model"));
    await symlink("model", join(x, "model-link"));
    await expectOverlapRefused(
      join(x, "model-link"),
      join(x, "model"),
      join(x, "model"),
      /must not be the input's own directory/,
    );
  });

  it("the output a link to the input directory", async () => {
    const x = join(work, "same-b");
    await copySample(join(x, "model"));
    await symlink("model", join(x, "model-link"));
    await expectOverlapRefused(
      join(x, "model"),
      join(x, "model-link"),
      join(x, "model"),
      /must not be the input's own directory/,
    );
  });

  it("the output inside the input, through a link", async () => {
    const x = join(work, "inside");
    await copySample(join(x, "model"));
    await symlink("model", join(x, "model-link"));
    await expectOverlapRefused(
      join(x, "model"),
      join(x, "model-link", "out"),
      join(x, "model"),
      /must not be inside the input/,
    );
    expect(await exists(join(x, "model", "out"))).toBe(false);
  });

  it("the input inside the output, the output reached through a link", async () => {
    const x = join(work, "parent");
    await copySample(join(x, "outer", "model"));
    await symlink("outer", join(x, "outer-link"));
    await expectOverlapRefused(
      join(x, "outer", "model"),
      join(x, "outer-link"),
      join(x, "outer"),
      /must not contain the input/,
    );
  });

  it("an input shard linked from inside the output directory (a Hugging Face cache snapshot)", async () => {
    const x = join(work, "blobs");
    const snap = join(x, "snapshot");
    const out = join(x, "out");
    await mkdir(snap, { recursive: true });
    await mkdir(out, { recursive: true });
    for (const f of ["config.json", "model.safetensors.index.json", "README.md"])
      await cp(join(SAMPLE, f), join(snap, f));
    for (const f of SHARDS) {
      await cp(join(SAMPLE, f), join(out, `blob-${f}`));
      await symlink(join("..", "out", `blob-${f}`), join(snap, f));
    }
    // The output even looks like fp8kit's own, so --force alone would replace it.
    await writeFile(join(out, ".fp8kit-output.json"), "{}\n");
    await expectOverlapRefused(
      snap,
      out,
      out,
      /must not contain the input file model-0000\d-of-00003\.safetensors/,
    );
    // The snapshot still reads as the sample: the linked shards' bytes and its own files.
    const sample = await hashTree(SAMPLE);
    const files = [...SHARDS, "config.json", "model.safetensors.index.json", "README.md"];
    expect(await hashTree(snap)).toEqual(Object.fromEntries(files.map((f) => [f, sample[f]])));
  });
});

describe("--force replaces only what fp8kit wrote (case 2)", () => {
  it("refuses a non-empty directory of other files, and leaves them", async () => {
    const docs = join(work, "docs");
    await mkdir(docs, { recursive: true });
    await writeFile(join(docs, "thesis.txt"), "chapter 1\n");
    await writeFile(join(docs, "notes.md"), "# notes\n");
    const before = await hashTree(docs);
    const r = await runCli(["convert", SAMPLE, docs, ...ARGS, "--force"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^fp8kit: error: .*docs: exists and was not written by fp8kit \(it holds .*thesis\.txt/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await hashTree(docs)).toEqual(before);
    expect(await readFile(join(docs, "thesis.txt"), "utf8")).toBe("chapter 1\n");
  });

  it("replaces an earlier fp8kit output (another target) with this job's", async () => {
    const out = join(work, "earlier");
    const first = await runCli(["convert", SAMPLE, out, "--to", "fp16", "--max-shard-size", "3MB"]);
    expect(first.code).toBe(0);
    const refused = await runCli(["convert", SAMPLE, out, ...ARGS]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--force/);
    const r = await runCli(["convert", SAMPLE, out, ...ARGS, "--force"]);
    expect(r.code).toBe(0);
    expect(await hashTree(out)).toEqual(reference);
  });
});
