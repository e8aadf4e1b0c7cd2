/**
 * The CLI speaks precisely (issue 10, case 9), with the built CLI (`npm run build` first):
 * `--json` on every command, `demo` included; `formats` summarises long code lists; options that do
 * not apply to the target or the run mode are an error naming them; the progress ends at N/N;
 * `--finalize` says what it did.
 */
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConvertError, resolveConvertOptions } from "../../src/convert/index.js";
import { exists, runCli, SAMPLE, tempDir } from "../convert/helpers.js";

let work: string;

beforeAll(async () => {
  work = await tempDir("fp8kit-words-");
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("--json on every command", () => {
  it("every command listed by fp8kit --help takes --json", async () => {
    const help = await runCli(["--help"]);
    const names = [...help.stdout.matchAll(/^ {2}(\w+) /gm)].map((m) => m[1]);
    expect(names).toContain("demo");
    for (const name of names) {
      const r = await runCli([name, "--help"]);
      expect(r.stdout, name).toMatch(/^ +--json /m);
    }
  });

  it("demo --json prints one JSON object and nothing else on stdout", async () => {
    const tmp = join(work, "demo-json");
    await mkdir(tmp);
    const r = await runCli(["demo", "--json"], { TMPDIR: tmp });
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.workDir.startsWith(join(tmp, "fp8kit-demo-"))).toBe(true);
    expect(r.stderr).toContain(`writing to ${result.workDir}`);
    expect(result.kept).toBe(false);
    // The sample: 48 FP8 weights (each converted), 25 plain tensors (copied), 73 in all.
    expect(result.conversions.map((c: { name: string }) => c.name)).toEqual(["fp8-ue8m0", "bf16"]);
    for (const c of result.conversions) {
      expect(c).toMatchObject({ converted: 48, copied: 25 });
      expect(c.tensors).toHaveLength(48);
      expect(c.verify).toMatchObject({ tensors: 73, identical: 25, withinError: 48, mismatches: [] });
      expect(c.worstRelFrob).toBe(Math.max(...c.tensors.map((t: { relFrob: number }) => t.relFrob)));
    }
    expect(await readdir(tmp)).toEqual([]);
  });
});

describe("fp8kit formats", () => {
  /** The codes a NaN column lists: `0x7f 0xff`, or ranges `0x7c01-0x7fff` with a count. */
  function expand(column: string): number[] {
    if (column === "none") return [];
    const codes: number[] = [];
    for (const word of column.replace(/ \(\d+ codes\)$/, "").split(" ")) {
      const [a, b] = word.split("-").map((h) => Number.parseInt(h, 16));
      for (let c = a; c <= (b ?? a); c++) codes.push(c);
    }
    return codes;
  }

  it("summarises long NaN code lists as ranges; short lines; the same codes as --json", async () => {
    const text = (await runCli(["formats"])).stdout.trimEnd().split("\n");
    const json = JSON.parse((await runCli(["formats", "--json"])).stdout);
    for (const line of text) expect(line.length).toBeLessThan(160);
    const row = (name: string) => text.find((l) => l.startsWith(`${name} `)) ?? "";
    // IEEE NaNs: exponent all ones, mantissa not zero, either sign (2 x (2^10 - 1), 2 x (2^7 - 1)).
    expect(row("float16").endsWith("  0x7c01-0x7fff 0xfc01-0xffff (2046 codes)")).toBe(true);
    expect(row("bfloat16").endsWith("  0x7f81-0x7fff 0xff81-0xffff (254 codes)")).toBe(true);
    expect(row("float8_e4m3fn").endsWith("  0x7f 0xff")).toBe(true);
    for (const f of json) {
      const column = row(f.name).split(/ {2,}/).at(-1) ?? "";
      expect(expand(column), f.name).toEqual(f.nanCodes);
    }
  });
});

describe("convert: options that do not apply are errors naming them (exit 2)", () => {
  const refused: [string, string[], string[]][] = [
    [
      "fp8 options for bf16",
      ["--to", "bf16", "--block", "64", "--scale-fmt", "float", "--scale-dtype", "f32"],
      ["--block", "--scale-fmt", "--scale-dtype", "--to bf16"],
    ],
    ["the MX rule for fp16", ["--to", "fp16", "--scale-rule", "even"], ["--scale-rule", "--to fp16"]],
    [
      "a selection for fp32",
      ["--to", "fp32", "--preset", "generic", "--include", "a.*", "--exclude", "b.*"],
      ["--preset", "--include", "--exclude", "--to fp32"],
    ],
    ["the MX rule for fp8", ["--to", "fp8", "--scale-rule", "ceil"], ["--scale-rule", "--to fp8"]],
    ["fp8 blocks for mxfp8", ["--to", "mxfp8", "--block", "32"], ["--block", "--to mxfp8"]],
    ["fp8 scale format for mxfp4", ["--to", "mxfp4", "--scale-fmt", "ue8m0"], ["--scale-fmt", "--to mxfp4"]],
    [
      "--finalize, --verify with --dry-run",
      ["--to", "bf16", "--dry-run", "--finalize", "--verify"],
      ["--finalize", "--verify", "--dry-run"],
    ],
    [
      "--verify, --report with --part",
      ["--to", "bf16", "--part", "1/2", "--verify", "--report", "r.html"],
      ["--verify", "--report", "--part"],
    ],
  ];
  for (const [name, args, named] of refused) {
    it(name, async () => {
      const out = join(work, `refused-${name.replace(/\W+/g, "-")}`);
      const r = await runCli(["convert", SAMPLE, out, ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
      for (const n of named) expect(r.stderr).toContain(n);
      expect(await exists(out)).toBe(false);
    });
  }

  const accepted: [string, string[]][] = [
    [
      "fp8 with its options",
      ["--to", "fp8", "--block", "64", "--scale-fmt", "float", "--include", "**.weight"],
    ],
    ["mxfp4 with its rule", ["--to", "mxfp4", "--scale-rule", "even", "--exclude", "lm_head.*"]],
    ["a dry run of one part", ["--to", "bf16", "--part", "1/2", "--workers", "2"]],
  ];
  for (const [name, args] of accepted) {
    it(`accepts ${name}`, async () => {
      const r = await runCli(["convert", SAMPLE, join(work, "accepted"), ...args, "--dry-run"]);
      expect(r.stderr).not.toMatch(/error/);
      expect(r.code).toBe(0);
    });
  }

  it("library callers get the same refusal from the convert layer", () => {
    const e = (() => {
      try {
        resolveConvertOptions({ target: "bf16", scaleRule: "even", include: [] });
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(ConvertError);
    expect(e).toMatchObject({ code: "invalid-option" });
    expect((e as Error).message).toMatch(/^--scale-rule does not apply to --to bf16/);
    expect(resolveConvertOptions({ target: "bf16", include: [] }).target).toBe("bf16");
  });
});

describe("convert: progress and finalize say what happened", () => {
  it("the last progress event reads N/N tensors and all bytes", async () => {
    const out = join(work, "progress");
    const r = await runCli(["convert", SAMPLE, out, "--to", "bf16", "--max-shard-size", "3MB", "--json"]);
    expect(r.code).toBe(0);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const tensors = events.filter((e) => e.event === "tensor").length;
    const progress = events.filter((e) => e.event === "progress");
    const last = progress.at(-1);
    // The sample's 73 tensors (48 FP8 weights + 25 plain), one "tensor" event each.
    expect(tensors).toBe(73);
    expect(last).toMatchObject({ tensorsDone: 73, tensorsTotal: 73 });
    expect(last.bytesDone).toBe(last.bytesTotal);
  });

  it("--finalize says how many shards it checked and which files it wrote", async () => {
    const out = join(work, "finalize");
    const args = ["--to", "bf16", "--max-shard-size", "3MB"];
    for (const part of ["1/2", "2/2"])
      expect((await runCli(["convert", SAMPLE, out, ...args, "--part", part])).code).toBe(0);
    const shards = (await readdir(out)).filter((n) => n.endsWith(".safetensors")).length;
    expect(shards).toBeGreaterThanOrEqual(4);
    const r = await runCli(["convert", SAMPLE, out, ...args, "--finalize"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `finalized: checked the ${shards} shard(s) written by the --part runs (all complete), wrote config.json and model.safetensors.index.json`,
    );
    expect(r.stdout).not.toMatch(/0 shard\(s\) written/);
  });
});
