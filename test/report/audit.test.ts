import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dequantize } from "../../src/quant/dequantize.js";
import { measureBands } from "../../src/quant/kernels/requant-measure.js";
import { quantize } from "../../src/quant/quantize.js";
import { auditCheckpoint, bootstrapRelError, lintCheckpoint, measureTensor } from "../../src/report/index.js";
import { auditPath, createAuditPool, NodeCheckpointDir } from "../../src/report/node.js";
import { SafetensorsError } from "../../src/safetensors/errors.js";
import { type GenTensor, writeDeepSeekCheckpoint } from "./helpers.js";

/** Bytes before the first tensor of `file` in `dir`: the 8-byte length and the JSON header. */
const headerBytes = (dir: string, file: string) =>
  8 + Number(readFileSync(join(dir, file)).readBigUInt64LE(0));

const tmp = mkdtempSync(join(tmpdir(), "fp8kit-audit-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const CLI = join(import.meta.dirname, "..", "..", "dist", "cli", "main.js");
const V3 = join(tmp, "v3");
const V31 = join(tmp, "v31");
const V31_OPROJ = join(tmp, "v31-oproj");
let v3Tensors: GenTensor[] = [];

beforeAll(async () => {
  v3Tensors = await writeDeepSeekCheckpoint(V3, { layers: 2 });
  await writeDeepSeekCheckpoint(V31, { layers: 2, ue8m0: true });
  await writeDeepSeekCheckpoint(V31_OPROJ, { layers: 2, ue8m0: true, oProjScaleFactor: 1.32288 });
});

const audit = async (p: string, o = {}) => auditCheckpoint(await NodeCheckpointDir.open(p), o);

/**
 * Reference: the straightforward element-wise path through src/quant (dequantize the stored tensor
 * to float32, quantize it again with the deepseek-v3.1 preset, dequantize), independent of the
 * audit's per-block code histograms.
 */
function referenceRequantError(w: GenTensor, s: GenTensor) {
  const shape = w.shape as number[];
  const scales = new Float32Array(s.data.slice().buffer);
  const scheme = { element: "float8_e4m3fn", block: [128, 128], scale: "f32", rule: "amax" } as const;
  const x = dequantize({
    data: w.data,
    shape,
    scales,
    scaleShape: s.shape as number[],
    scheme,
  }) as Float32Array;
  const y = dequantize(quantize(x, shape, "deepseek-v3.1")) as Float32Array;
  let e2 = 0;
  let r2 = 0;
  let max = 0;
  for (let i = 0; i < x.length; i++) {
    e2 += (y[i] - x[i]) ** 2;
    r2 += x[i] ** 2;
    max = Math.max(max, Math.abs(y[i] - x[i]));
  }
  return { rel: Math.sqrt(e2 / r2), max, e2, r2 };
}

describe("audit", () => {
  it("V3.1-style power-of-two scales: all exact, requantization adds nothing", async () => {
    const r = await audit(V31);
    expect(r.schema).toBe("fp8kit.audit/1");
    expect(r.layout).toMatchObject({ kind: "fp8-block", scaleFmt: "ue8m0" });
    expect(r.summary).toMatchObject({
      scaleTensors: 8,
      scales: 48,
      nonPowerOfTwoScales: 0,
      allPowerOfTwo: true,
    });
    expect(r.summary.requant).toMatchObject({ relFrobenius: 0, sqnrDb: null, maxAbsError: 0, blocks: 48 });
    // A block whose amax rounded down to exactly 448 * 2^(k-1) gets a scale one binade lower on
    // requantization; every code then doubles exactly, so the error stays zero.
    expect(r.summary.requant!.changedBlocks).toBeLessThan(48);
  });

  it("lists the o_proj scales that are not powers of two (by mantissa), like DeepSeek-V3.1 #961", async () => {
    const r = await audit(V31_OPROJ);
    const bad = r.tensors.filter((t) => t.scales.nonPowerOfTwo > 0);
    expect(bad.map((t) => t.scale).sort()).toEqual([
      "model.layers.0.self_attn.o_proj.weight_scale_inv",
      "model.layers.1.self_attn.o_proj.weight_scale_inv",
    ]);
    for (const t of bad) {
      expect(t.scales.nonPowerOfTwo).toBe(6);
      for (const e of t.scales.exceptions) expect(e.mantissa).toBeCloseTo(1.32288, 5);
    }
    expect(r.summary.allPowerOfTwo).toBe(false);
    const cli = spawnSync(process.execPath, [CLI, "audit", V31_OPROJ], { encoding: "utf8" });
    expect(cli.status).toBe(1); // declared ue8m0, yet not all powers of two
    expect(cli.stdout).toMatch(/o_proj\.weight_scale_inv: 6 of 6; e\.g\. #0 .*mantissa 1\.3228/);
  });

  it("reports unusable scales with the same findings as lint", async () => {
    const dir = join(tmp, "bad-scales");
    await writeDeepSeekCheckpoint(dir, {
      layers: 2,
      mutate: (ts) => {
        const s = ts.find((x) => x.name === "model.layers.1.mlp.gate_proj.weight_scale_inv")!;
        const v = new Float32Array(s.data.slice().buffer);
        v[2] = 0;
        v[3] = -v[3];
        v[4] = 1e-39;
        s.data = new Uint8Array(v.buffer);
      },
    });
    const r = await audit(dir);
    const lint = await lintCheckpoint(await NodeCheckpointDir.open(dir));
    const findings = r.tensors.flatMap((t) => t.findings);
    expect(findings.map((f) => [f.code, f.severity])).toEqual([
      ["scale-negative", "error"],
      ["scale-zero", "error"],
      ["scale-subnormal", "warning"],
    ]);
    expect(findings).toEqual(lint.findings.filter((f) => f.code.startsWith("scale-")));
    expect(r.summary.scaleFindings).toEqual({ errors: 2, warnings: 1 });
    expect((await audit(V3)).summary.scaleFindings).toEqual({ errors: 0, warnings: 0 });
  });

  it("V3 float scales: the requantization error equals an element-wise reference", async () => {
    const r = await audit(V3);
    expect(r.summary.nonPowerOfTwoScales).toBeGreaterThan(40);
    let e2 = 0;
    let r2 = 0;
    for (const t of r.tensors) {
      const w = v3Tensors.find((x) => x.name === t.data)!;
      const s = v3Tensors.find((x) => x.name === t.scale)!;
      const ref = referenceRequantError(w, s);
      expect(t.requant!.relFrobenius).toBeCloseTo(ref.rel, 12);
      expect(t.requant!.maxAbsError).toBe(ref.max);
      e2 += ref.e2;
      r2 += ref.r2;
    }
    const overall = r.summary.requant!;
    expect(overall.relFrobenius).toBeCloseTo(Math.sqrt(e2 / r2), 12);
    // A second E4M3 rounding: a few percent, as vLLM PR #58157 reports (2.6%).
    expect(overall.relFrobenius).toBeGreaterThan(0.005);
    expect(overall.relFrobenius).toBeLessThan(0.05);
    expect(overall.sqnrDb).toBeCloseTo(-20 * Math.log10(overall.relFrobenius), 9);
  });

  it("--sample: every block sampled equals the full audit; fewer give a seeded interval", async () => {
    const full = await audit(V3);
    const all = await audit(V3, { sample: 1000 });
    expect(all.mode).toBe("sample");
    expect(all.summary.requant!.relFrobenius).toBeCloseTo(full.summary.requant!.relFrobenius, 12);
    const a = await audit(V3, { sample: 3, seed: 7 });
    const b = await audit(V3, { sample: 3, seed: 7 });
    expect(a).toEqual(b);
    const iv = a.summary.requant!.interval!;
    expect(iv.level).toBe(0.95);
    expect(iv.low).toBeLessThanOrEqual(iv.estimate);
    expect(iv.high).toBeGreaterThanOrEqual(iv.estimate);
    expect(a.summary.requant!.blocks).toBe(8 * 3);
  });

  it("--filter limits the audit; --json prints the documented shape", async () => {
    const r = await audit(V3, { filter: ["**.o_proj.*"] });
    expect(r.tensors.map((t) => t.weight)).toEqual(
      [0, 1].map((l) => `model.layers.${l}.self_attn.o_proj.weight`),
    );
    const cli = spawnSync(process.execPath, [CLI, "audit", V3, "--json", "--sample", "2"], {
      encoding: "utf8",
    });
    expect(cli.status).toBe(0);
    const j = JSON.parse(cli.stdout);
    expect(Object.keys(j).sort()).toEqual([
      "layout",
      "mode",
      "path",
      "rule",
      "sample",
      "schema",
      "summary",
      "tensors",
    ]);
  });

  it("worker threads give the same result as the in-thread kernel", async () => {
    const one = await audit(V3);
    const pooled = await auditPath(V3, { workers: 2 });
    expect(pooled.tensors).toEqual(one.tensors);
    expect(pooled.summary).toEqual(one.summary);
  });

  it("the WebAssembly and plain TypeScript histogram paths agree (also on widths that are not x4)", () => {
    for (const [rows, cols] of [
      [256, 384],
      [130, 258],
      [3, 7],
    ]) {
      const codes = new Uint8Array(rows * cols);
      for (let i = 0; i < codes.length; i++) codes[i] = (i * 2654435761) >>> 24;
      const scales = new Float32Array(Math.ceil(rows / 128) * Math.ceil(cols / 128)).map(
        (_, i) => 0.0003 * (1 + i / 7),
      );
      const job = {
        codes,
        scales,
        shape: [rows, cols],
        block: [128, 128] as [number, number],
        wantCodes: true,
      };
      expect(measureTensor(job, "auto")).toEqual(measureTensor(job, "js"));
    }
  });

  it("band-by-band filling (what pool workers do from files) equals the whole tensor in memory", () => {
    // Stacked matrices, partial block rows and columns, widths that are and are not multiples of 4.
    for (const shape of [
      [2, 256, 384],
      [3, 130, 260],
      [2, 130, 258],
    ]) {
      const [mats, rows, cols] = shape;
      const codes = new Uint8Array(mats * rows * cols);
      for (let i = 0; i < codes.length; i++) codes[i] = ((i * 2654435761) >>> 24) & 0xf7;
      const grid = mats * Math.ceil(rows / 128) * Math.ceil(cols / 128);
      const scales = new Float32Array(grid).map((_, i) => 0.0002 * (1 + i / 5));
      const job = { scales, shape, block: [128, 128] as [number, number], wantCodes: true };
      const expected = measureTensor({ ...job, codes }, "js");
      for (const kernel of ["auto", "js"] as const) {
        const seen: number[] = [];
        const fill = (dst: Uint8Array, at: number) => {
          seen.push(at);
          dst.set(codes.subarray(at, at + dst.length));
        };
        expect(measureBands(job, fill, kernel)).toEqual(expected);
        // One call per block row of each matrix, in order, covering the tensor once.
        expect(seen).toEqual(
          Array.from({ length: mats * Math.ceil(rows / 128) }, (_, k) => {
            const m = Math.floor(k / Math.ceil(rows / 128));
            return (m * rows + (k % Math.ceil(rows / 128)) * 128) * cols;
          }),
        );
      }
    }
  });

  it("a shard that shrank under a pool worker is a read-failed error naming the file and tensor", async () => {
    const dir = await NodeCheckpointDir.open(V3);
    const shard = (await dir.list()).find((f) => f.endsWith(".safetensors"))!;
    const short = join(tmp, "short.safetensors");
    copyFileSync(join(V3, shard), short);
    truncateSync(short, headerBytes(V3, shard) + 1000);
    // The directory as read, but the workers open the truncated copy (a file cut after its header was read).
    const shrunk = Object.assign(Object.create(dir) as NodeCheckpointDir, {
      localPath: (f: string) => (f === shard ? short : join(V3, f)),
    });
    const pool = createAuditPool(2);
    try {
      const run = auditCheckpoint(shrunk, { fileKernel: pool.fileKernel, concurrency: pool.concurrency });
      const e = await run.then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(SafetensorsError);
      expect((e as SafetensorsError).code).toBe("read-failed");
      expect((e as Error).message).toMatch(new RegExp(`^${shard}: file ended after \\d+ of \\d+ bytes`));
      expect((e as Error).message).toMatch(/\(tensor model\.layers\.\d+\.[a-z_.]+\.weight\)$/);
    } finally {
      await pool.close();
    }
  });

  it("bootstrap interval of a constant ratio collapses to the ratio", () => {
    const iv = bootstrapRelError([1, 1, 1, 1], [4, 4, 4, 4], 1);
    expect(iv).toMatchObject({ estimate: 0.5, low: 0.5, high: 0.5 });
  });
});
