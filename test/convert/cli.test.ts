/**
 * The built CLI (`node dist/cli/main.js convert`, run `npm run build` first): resume after a kill,
 * --part/--finalize, refusal of existing outputs, bad inputs, NaN handling, --dry-run and --json.
 */
import { cp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeSafetensorsFile } from "../../src/safetensors/node.js";
import { exists, hashTree, KILL_AFTER, runCli, runNode, SAMPLE, tempDir } from "./helpers.js";

let work: string;
let reference: Record<string, string>;
const ARGS = ["--to", "bf16", "--max-shard-size", "3MB", "--workers", "1"];

beforeAll(async () => {
  work = await tempDir();
  const r = await runCli(["convert", SAMPLE, join(work, "ref"), ...ARGS, "--json"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  reference = await hashTree(join(work, "ref"));
});

describe("fp8kit convert (CLI)", () => {
  it("writes several shards and machine-readable progress", async () => {
    expect(Object.keys(reference).filter((n) => n.endsWith(".safetensors")).length).toBeGreaterThanOrEqual(4);
    // The only hidden file of a finished output is its marker (what made it; lets --force replace it).
    expect(Object.keys(reference).filter((n) => n.startsWith("."))).toEqual([".fp8kit-output.json"]);
    const r = await runCli(["convert", SAMPLE, join(work, "json"), ...ARGS, "--json"]);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(events[0].event).toBe("start");
    expect(events.filter((e) => e.event === "shard-done").length).toBeGreaterThanOrEqual(4);
    const last = events[events.length - 1];
    expect(last).toMatchObject({ event: "result", status: "complete", converted: 48, copied: 25 });
    expect(last.peakRssBytes).toBeGreaterThan(0);
    expect(await hashTree(join(work, "json"))).toEqual(reference);
  });

  it("gives the same bytes in-process and with 2 worker threads", async () => {
    for (const w of ["0", "2"]) {
      const out = join(work, `workers-${w}`);
      const r = await runCli([
        "convert",
        SAMPLE,
        out,
        "--to",
        "bf16",
        "--max-shard-size",
        "3MB",
        "--workers",
        w,
      ]);
      expect(r.code).toBe(0);
      expect(await hashTree(out)).toEqual(reference);
    }
  });

  it("resumes a run killed mid-shard to byte-identical output", async () => {
    const out = join(work, "killed");
    const r1 = await runNode([KILL_AFTER, SAMPLE, out, "30"]);
    expect(r1.signal).toBe("SIGKILL");
    expect(await exists(join(out, "model.safetensors.index.json"))).toBe(false);
    expect(await exists(join(out, ".fp8kit-job.json"))).toBe(true);
    const r2 = await runCli(["convert", SAMPLE, out, ...ARGS, "--resume"]);
    expect(r2.stderr).toContain("skipped");
    expect(r2.code).toBe(0);
    expect(await hashTree(out)).toEqual(reference);
  });

  it("--part 1/2 + --part 2/2 + --finalize equals a single run", async () => {
    const out = join(work, "parts");
    const p1 = await runCli(["convert", SAMPLE, out, ...ARGS, "--part", "1/2"]);
    expect(p1.code).toBe(0);
    const early = await runCli(["convert", SAMPLE, out, ...ARGS, "--finalize"]);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/shards are not complete/);
    const p2 = await runCli(["convert", SAMPLE, out, ...ARGS, "--part", "2/2"]);
    expect(p2.code).toBe(0);
    expect(await exists(join(out, "model.safetensors.index.json"))).toBe(false);
    const fin = await runCli(["convert", SAMPLE, out, ...ARGS, "--finalize"]);
    expect(fin.code).toBe(0);
    expect(await hashTree(out)).toEqual(reference);
  });

  it("--report writes the HTML report of the conversion (output against input)", async () => {
    const html = join(work, "conversion.html");
    const r = await runCli(["convert", SAMPLE, join(work, "rep"), ...ARGS, "--json", "--report", html]);
    expect(r.code).toBe(0);
    const last = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(last).toMatchObject({ event: "result", status: "complete", report: html });
    const text = await readFile(html, "utf8");
    expect(text).toMatch(/^<!doctype html>/i);
    expect(text).toContain("fp8kit report");
    // the conversion's own per-tensor comparison is embedded: one entry per converted weight at least
    expect((text.match(/self_attn\.q_b_proj\.weight/g) ?? []).length).toBeGreaterThanOrEqual(3);
  });

  it("refuses an existing output unless --force, and verifies", async () => {
    const out = join(work, "ref2");
    await cp(join(work, "ref"), out, { recursive: true });
    const r = await runCli(["convert", SAMPLE, out, ...ARGS]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^fp8kit: error: .*ref2: holds an earlier fp8kit conversion; use --force to replace it/,
    );
    const f = await runCli(["convert", SAMPLE, out, ...ARGS, "--force", "--verify"]);
    expect(f.code).toBe(0);
    expect(f.stdout).toMatch(
      /verify: 73 tensors: 25 copied byte-identical, 48 converted within the reported error .* 0 mismatches/,
    );
  });

  it("--dry-run prints every tensor and writes nothing", async () => {
    const out = join(work, "dry");
    const r = await runCli(["convert", SAMPLE, out, "--to", "fp8", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "input layout: DeepSeek/HF block FP8 (128x128 blocks, float scales, 48 quantized weights)",
    );
    expect(r.stdout).toMatch(/model\.layers\.0\.self_attn\.kv_a_proj_with_mqa\.weight\s+requantize/);
    expect(r.stdout).toMatch(/lm_head\.weight\s+copy/);
    expect(r.stdout).toMatch(/73 tensors \(25 copy, 48 requantize\)/);
    expect(await exists(out)).toBe(false);
    const j = await runCli(["convert", SAMPLE, out, "--to", "mxfp4", "--dry-run", "--json"]);
    const plan = j.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .find((e) => e.event === "plan");
    expect(plan.ops.length).toBe(73);
    expect(plan.config.quantization_config.format).toBe("mxfp4-pack-quantized");
  });
});

describe("bad input: clear error, non-zero exit, nothing written, input unchanged", () => {
  async function expectRefused(
    input: string,
    args: string[],
    pattern: RegExp,
    out = join(work, "never"),
  ): Promise<void> {
    const before = await hashTree(input);
    const r = await runCli(["convert", input, out, ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^fp8kit: error: /);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await exists(out)).toBe(false);
    expect(await hashTree(input)).toEqual(before);
  }

  async function fp8Dir(name: string, scaleShape: number[] | null): Promise<string> {
    const dir = join(work, name);
    await rm(dir, { recursive: true, force: true });
    await cp(SAMPLE, dir, {
      recursive: true,
      filter: (s) => !s.endsWith(".safetensors") && !s.endsWith(".index.json"),
    });
    const descs: { name: string; dtype: "F8_E4M3" | "F32"; shape: number[] }[] = [
      { name: "model.layers.0.self_attn.o_proj.weight", dtype: "F8_E4M3", shape: [256, 256] },
    ];
    if (scaleShape)
      descs.push({
        name: "model.layers.0.self_attn.o_proj.weight_scale_inv",
        dtype: "F32",
        shape: scaleShape,
      });
    await writeSafetensorsFile(
      join(dir, "model.safetensors"),
      descs,
      (info) => new Uint8Array(info.byteLength),
    );
    return dir;
  }

  it("a quantized weight without its scale", async () => {
    await expectRefused(
      await fp8Dir("noscale", null),
      ["--to", "bf16"],
      /model\.safetensors: .*"model\.layers\.0\.self_attn\.o_proj\.weight" has no scale tensor/,
    );
  });

  it("a scale grid that does not match the weight and block", async () => {
    await expectRefused(
      await fp8Dir("badgrid", [2, 3]),
      ["--to", "bf16"],
      /o_proj\.weight_scale_inv" has shape \[2,3\] .* needs \[2,2\]/,
    );
  });

  it("an index naming a missing shard", async () => {
    const dir = join(work, "missing-shard");
    await cp(SAMPLE, dir, { recursive: true });
    await unlink(join(dir, "model-00002-of-00003.safetensors"));
    await expectRefused(dir, ["--to", "bf16"], /model-00002-of-00003\.safetensors/);
  });

  it("an invalid config.json", async () => {
    const dir = join(work, "bad-config");
    await cp(SAMPLE, dir, { recursive: true });
    await writeFile(join(dir, "config.json"), "{ not json");
    await expectRefused(dir, ["--to", "bf16"], /config\.json: invalid JSON/);
  });

  it("an output inside the input", async () => {
    const dir = join(work, "self");
    await cp(SAMPLE, dir, { recursive: true });
    await expectRefused(dir, ["--to", "bf16"], /must not be inside the input/, join(dir, "out"));
  });

  it("bad options", async () => {
    await expectRefused(SAMPLE, ["--to", "int3"], /--to must be one of/);
    await expectRefused(
      SAMPLE,
      ["--to", "fp8", "--scale-fmt", "float", "--scale-dtype", "e8m0"],
      /--scale-dtype e8m0 needs --scale-fmt ue8m0/,
    );
  });

  it("NaN/Inf in a weight: an error naming the tensor unless --allow-nonfinite", async () => {
    const dir = join(work, "nan");
    await rm(dir, { recursive: true, force: true });
    await cp(SAMPLE, dir, {
      recursive: true,
      filter: (s) => !s.endsWith(".safetensors") && !s.endsWith(".index.json") && !s.endsWith("config.json"),
    });
    const x = new Uint16Array(64 * 64).fill(0x3c00);
    x[100] = 0x7fc0; // NaN
    x[7] = 0x7f80; // +Inf
    await writeSafetensorsFile(
      join(dir, "model.safetensors"),
      [{ name: "blocks.0.proj.weight", dtype: "BF16", shape: [64, 64] }],
      () => new Uint8Array(x.buffer),
    );
    const out = join(work, "nan-out");
    const r = await runCli(["convert", dir, out, "--to", "fp8", "--workers", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model\.safetensors: tensor "blocks\.0\.proj\.weight" holds 2 NaN\/Inf values/);
    expect(await exists(join(out, "model.safetensors.index.json"))).toBe(false);
    const ok = await runCli(["convert", dir, out, "--to", "fp8", "--allow-nonfinite", "--json"]);
    expect(ok.code).toBe(0);
    const tensor = ok.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((e) => e.event === "tensor");
    expect(tensor.nonfinite).toBe(2);
    const index = JSON.parse(await readFile(join(out, "model.safetensors.index.json"), "utf8"));
    expect(Object.keys(index.weight_map)).toEqual(["blocks.0.proj.weight", "blocks.0.proj.weight_scale_inv"]);
  });
});
