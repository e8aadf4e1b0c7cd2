/**
 * Issue 10, case 3: one verdict on bad scales for `lint`, `audit` and `convert`. Real checkpoints
 * (written with the safetensors writer) hold one zero, negative, NaN, infinite, too large (3e38 on
 * E4M3: 3e38 x 448 overflows float32) or subnormal scale, in F32 block scales, MX E8M0 bytes and
 * per-tensor scalars. For each: lint's finding, audit's finding and convert's refusal (exit 2,
 * shard, tensor and block named, nothing written, input unchanged) agree; `--bad-scales keep`
 * converts and the output equals the closed form fl32(decode(code) x stored scale), rounded to
 * BF16 with the codec, computed here from the input bytes.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exitCodeOf } from "../../src/cli/failure.js";
import { makeJournal } from "../../src/convert/journal.js";
import { ConvertError, convertCheckpoint } from "../../src/convert/node.js";
import { decode, encode } from "../../src/formats/index.js";
import { auditCheckpoint, type Finding, lintCheckpoint } from "../../src/report/index.js";
import { NodeCheckpointDir } from "../../src/report/node.js";
import type { TensorDescriptor } from "../../src/safetensors/index.js";
import { writeSafetensorsFile } from "../../src/safetensors/node.js";
import { type GenTensor, writeDeepSeekCheckpoint } from "../report/helpers.js";
import { exists, hashTree, runCli, tempDir } from "./helpers.js";

let tmp: string;
beforeAll(async () => {
  tmp = await tempDir("fp8kit-bad-scales-");
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const O_PROJ = "model.layers.0.self_attn.o_proj.weight";
const O_SCALE = `${O_PROJ}_scale_inv`;
/** o_proj is 256 x 384 in 128 x 128 blocks: scale grid [2, 3]; flat index 4 is block [1, 1]. */
const BAD_AT = 4;

/** A DeepSeek block-FP8 checkpoint (3 shards) whose o_proj scale at `BAD_AT` is `bad(stored)`. */
async function deepseek(
  name: string,
  bad: (v: number) => number,
): Promise<{ dir: string; tensors: GenTensor[] }> {
  const dir = join(tmp, name);
  const tensors = await writeDeepSeekCheckpoint(dir, {
    layers: 1,
    mutate: (ts) => {
      const s = ts.find((t) => t.name === O_SCALE)!;
      const v = new Float32Array(s.data.slice().buffer);
      v[BAD_AT] = bad(v[BAD_AT]);
      s.data = new Uint8Array(v.buffer);
    },
  });
  return { dir, tensors };
}

const scaleFindingsOf = (fs: readonly Finding[], tensor: string) =>
  fs.filter((f) => f.tensor === tensor && f.code.startsWith("scale-"));

/** lint's and audit's scale findings for `tensor` (they must be the same), and convert's outcome. */
async function verdicts(dir: string, tensor: string, extra: Record<string, unknown> = {}) {
  const lint = await lintCheckpoint(await NodeCheckpointDir.open(dir));
  const audit = await auditCheckpoint(await NodeCheckpointDir.open(dir));
  const auditFindings = audit.tensors.flatMap((t) => t.findings);
  const before = await hashTree(dir);
  const out = join(`${dir}-out`, String(Math.random()).slice(2));
  const err = await convertCheckpoint({ input: dir, output: out, target: "bf16", workers: 0, ...extra }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(await hashTree(dir), "the input is unchanged").toEqual(before);
  return {
    lint: scaleFindingsOf(lint.findings, tensor),
    audit: scaleFindingsOf(auditFindings, tensor),
    lintOk: lint.ok,
    auditSummary: audit.summary.scaleFindings,
    err,
    out,
  };
}

/** The refusal of convert: a ConvertError (exit 2) naming the shard, the tensor and the block. */
async function expectRefused(
  v: Awaited<ReturnType<typeof verdicts>>,
  shard: string,
  tensor: string,
  at: RegExp,
) {
  expect(v.err).toBeInstanceOf(ConvertError);
  const e = v.err as ConvertError;
  expect(e.code).toBe("invalid-scales");
  expect(exitCodeOf(e)).toBe(2);
  expect(e.message.startsWith(`${shard}: tensor "${tensor}": `), e.message).toBe(true);
  expect(e.message).toMatch(at);
  // Nothing was written: not even the output directory.
  expect(await exists(v.out)).toBe(false);
}

/** The shard file holding `tensor` in `dir` (read from the index with plain JSON). */
function shardOf(dir: string, tensor: string): string {
  const ix = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8"));
  return ix.weight_map[tensor];
}

const F32_ERRORS: [string, (v: number) => number, string, RegExp][] = [
  ["zero", () => 0, "scale-zero", /block \[1, 1\] has scale 0 \(zero: the block would dequantize to 0\)/],
  ["negative", (v) => -v, "scale-negative", /block \[1, 1\] has scale -[\d.e-]+ \(negative: /],
  ["nan", () => Number.NaN, "scale-nan", /block \[1, 1\] has scale NaN \(nan: /],
  ["inf", () => Number.POSITIVE_INFINITY, "scale-inf", /block \[1, 1\] has scale Infinity \(inf: /],
  ["overflow", () => 3e38, "scale-overflow", /block \[1, 1\] has scale 3e\+38 \(overflow: /],
];

describe("F32 block scales: lint, audit and convert give one verdict", () => {
  for (const [name, bad, code, at] of F32_ERRORS) {
    it(`${name}: an error for lint and audit; convert refuses (exit 2), names shard, tensor and block, writes nothing`, async () => {
      const { dir } = await deepseek(name, bad);
      const v = await verdicts(dir, O_SCALE);
      expect(v.lint.map((f) => [f.code, f.severity])).toEqual([[code, "error"]]);
      expect(v.lint[0].message).toMatch(/^1 of 6 scales are .*\(first at block \[1, 1\], flat index 4: /);
      expect(v.audit).toEqual(v.lint);
      expect(v.lintOk).toBe(false);
      expect(v.auditSummary.errors).toBe(1);
      await expectRefused(v, shardOf(dir, O_SCALE), O_SCALE, at);
      expect((v.err as Error).message).toMatch(/1 of 6 scales are unusable .*--bad-scales keep/);
    });
  }

  it("subnormal: a warning for lint and audit; convert converts (exit 0)", async () => {
    const { dir } = await deepseek("subnormal", () => 1e-40);
    const v = await verdicts(dir, O_SCALE);
    expect(v.lint.map((f) => [f.code, f.severity])).toEqual([["scale-subnormal", "warning"]]);
    expect(v.audit).toEqual(v.lint);
    expect(v.lintOk).toBe(true);
    expect(v.auditSummary).toEqual({ errors: 0, warnings: 1 });
    expect(v.err).toBeNull();
    expect(await exists(join(v.out, "model.safetensors.index.json"))).toBe(true);
  });

  it("the largest scale that does not overflow E4M3 (F32_MAX / 448, rounded down) passes all three", async () => {
    // 448 = 7 * 2^6 and F32_MAX = (2^24 - 1) * 2^104: fl32(s * 448) is finite iff s * 448 < 2^128 - 2^103.
    const limit = (2 ** 128 - 2 ** 103) / 448;
    let s = Math.fround(limit);
    if (s >= limit) s = nextDown(s);
    expect(Math.fround(s * 448)).toBeLessThan(Number.POSITIVE_INFINITY);
    expect(Math.fround(nextUp(s) * 448)).toBe(Number.POSITIVE_INFINITY);
    const { dir } = await deepseek("limit", () => s);
    // Finite scales, but the block's large codes give values beyond BF16's range (Inf once converted).
    const v = await verdicts(dir, O_SCALE, { allowNonfinite: true });
    expect(v.lint).toEqual([]);
    expect(v.audit).toEqual([]);
    expect(v.err).toBeNull();
    const up = await deepseek("limit-up", () => nextUp(s));
    const w = await verdicts(up.dir, O_SCALE);
    expect(w.lint.map((f) => f.code)).toEqual(["scale-overflow"]);
    await expectRefused(w, shardOf(up.dir, O_SCALE), O_SCALE, /block \[1, 1\] has scale .* \(overflow: /);
  });

  it("the CLI exits 2 with the message, and writes nothing", async () => {
    const { dir } = await deepseek("cli-zero", () => 0);
    const out = join(tmp, "cli-zero-out");
    const before = await hashTree(dir);
    const r = await runCli(["convert", dir, out, "--to", "bf16", "--workers", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(
        `^fp8kit: error: ${shardOf(dir, O_SCALE)}: tensor "${O_SCALE}": block \\[1, 1\\] has scale 0 \\(zero`,
      ),
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await exists(out)).toBe(false);
    expect(await hashTree(dir)).toEqual(before);
    const lint = await runCli(["lint", dir]);
    expect(lint.code).toBe(1);
    expect(lint.stdout).toMatch(/\[scale-zero\]/);
  });
});

/** The next float32 above / below a positive float32 `x`. */
function nextUp(x: number): number {
  const b = new Float32Array([x]);
  new Uint32Array(b.buffer)[0]++;
  return b[0];
}
function nextDown(x: number): number {
  const b = new Float32Array([x]);
  new Uint32Array(b.buffer)[0]--;
  return b[0];
}

/** Every tensor of every .safetensors file in `dir`, read with plain fs (not the library's reader). */
function readOutput(dir: string): Map<string, { dtype: string; shape: number[]; data: Uint8Array }> {
  const out = new Map<string, { dtype: string; shape: number[]; data: Uint8Array }>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".safetensors"))) {
    const b = readFileSync(join(dir, f));
    const n = Number(b.readBigUInt64LE(0));
    const header = JSON.parse(b.subarray(8, 8 + n).toString("utf8"));
    for (const [name, h] of Object.entries<{ dtype: string; shape: number[]; data_offsets: number[] }>(
      header,
    )) {
      if (name === "__metadata__") continue;
      const data = new Uint8Array(b.subarray(8 + n + h.data_offsets[0], 8 + n + h.data_offsets[1]));
      out.set(name, { dtype: h.dtype, shape: h.shape, data });
    }
  }
  return out;
}

/** The closed form of o_proj in BF16: fl32(E4M3 value of the code x its stored block scale), rounded by the codec. */
function expectedOProj(tensors: GenTensor[]): Uint16Array {
  const codes = tensors.find((t) => t.name === O_PROJ)!;
  const scales = new Float32Array(tensors.find((t) => t.name === O_SCALE)!.data.slice().buffer);
  const vals = decode("float8_e4m3fn", codes.data);
  const [rows, cols] = codes.shape;
  const x = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++)
      x[r * cols + c] = Math.fround(
        vals[r * cols + c] * scales[Math.floor(r / 128) * 3 + Math.floor(c / 128)],
      );
  return encode("bfloat16", x) as Uint16Array;
}

describe("--bad-scales keep: convert the stored values as they are", () => {
  const cases: [string, (v: number) => number, boolean, (h: number, ref: number) => boolean][] = [
    // Zero scale: the block is zeros (+0 or -0 by the code's sign).
    ["zero", () => 0, false, (h) => (h & 0x7fff) === 0],
    // Negative scale: every element of the block is the negation of what the positive scale gives.
    ["negative", (v) => -v, false, (h, ref) => h === (ref ^ 0x8000)],
    // NaN: the whole block NaN (needs --allow-nonfinite).
    ["nan", () => Number.NaN, true, (h) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0],
    // 3e38: the block's values beyond float32 are Inf (needs --allow-nonfinite).
    ["overflow", () => 3e38, true, () => true],
  ];
  for (const [name, bad, nonfinite, inBlock] of cases) {
    it(`${name}: converts; the output equals the closed form${nonfinite ? " (with --allow-nonfinite)" : ""}`, async () => {
      const { dir, tensors } = await deepseek(`keep-${name}`, bad);
      const before = await hashTree(dir);
      const out = join(tmp, `keep-${name}-out`);
      if (nonfinite) {
        const e = await convertCheckpoint({
          input: dir,
          output: out,
          target: "bf16",
          workers: 0,
          badScales: "keep",
        }).catch((x) => x);
        expect(e).toBeInstanceOf(ConvertError);
        expect(e.code).toBe("nonfinite");
        rmSync(out, { recursive: true, force: true });
      }
      const r = await convertCheckpoint({
        input: dir,
        output: out,
        target: "bf16",
        workers: 0,
        badScales: "keep",
        allowNonfinite: nonfinite,
      });
      expect(r.status).toBe("complete");
      expect(r.plan.options.badScales).toBe("keep");
      expect(await hashTree(dir)).toEqual(before);
      const t = readOutput(out).get(O_PROJ)!;
      expect(t.dtype).toBe("BF16");
      const have = new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.length / 2);
      const want = expectedOProj(tensors);
      // The clean scale of the block, to check the negative case against the unmodified values.
      const clean = (await writeDeepSeekCheckpoint(join(tmp, `clean-${name}`), { layers: 1 })).find(
        (x) => x.name === O_SCALE,
      )!;
      const ref = expectedOProj(tensors.map((x) => (x.name === O_SCALE ? { ...x, data: clean.data } : x)));
      let diff = 0;
      let wrongInBlock = 0;
      for (let r0 = 0; r0 < 256; r0++)
        for (let c = 0; c < 384; c++) {
          const i = r0 * 384 + c;
          if (
            have[i] !== want[i] &&
            !(
              Number.isNaN(decode("bfloat16", [have[i]])[0]) && Number.isNaN(decode("bfloat16", [want[i]])[0])
            )
          )
            diff++;
          if (r0 >= 128 && c >= 128 && c < 256 && !inBlock(have[i], ref[i])) wrongInBlock++;
        }
      expect(diff, "elements differing from the closed form").toBe(0);
      expect(wrongInBlock, "elements of block [1, 1] not as the stored scale makes them").toBe(0);
      if (name === "overflow") {
        let inf = 0;
        for (let r0 = 128; r0 < 256; r0++)
          for (let c = 128; c < 256; c++) if ((have[r0 * 384 + c] & 0x7fff) === 0x7f80) inf++;
        expect(inf).toBeGreaterThan(0);
      }
    });
  }

  it("is part of the job: a refused run and a kept run are different jobs", async () => {
    const { dir } = await deepseek("keep-job", () => 0);
    const out = join(tmp, "keep-job-out");
    await expect(convertCheckpoint({ input: dir, output: out, target: "bf16", workers: 0 })).rejects.toThrow(
      /--bad-scales keep/,
    );
    // Refused before the output existed, so the kept run starts fresh (no --force needed).
    const r = await convertCheckpoint({
      input: dir,
      output: out,
      target: "bf16",
      workers: 0,
      badScales: "keep",
    });
    expect(r.status).toBe("complete");
    // The job id hashes the resolved options: the policy is one of them.
    const plans = await Promise.all(
      (["refuse", "keep"] as const).map(async (badScales) => {
        const o = { input: dir, output: join(tmp, `keep-job-${badScales}`), target: "bf16" as const };
        return (await convertCheckpoint({ ...o, badScales, dryRun: true })).plan;
      }),
    );
    expect(plans.map((p) => p.options.badScales)).toEqual(["refuse", "keep"]);
    expect(makeJournal(plans[0], []).jobId).not.toBe(makeJournal(plans[1], []).jobId);
  });

  it("an unknown policy is refused", async () => {
    const { dir } = await deepseek("policy", (v) => v);
    await expect(
      convertCheckpoint({
        input: dir,
        output: join(tmp, "policy-out"),
        target: "bf16",
        badScales: "drop" as never,
      }),
    ).rejects.toThrow(/--bad-scales must be one of refuse, keep, got "drop"/);
  });
});

/** A one-shard checkpoint of `tensors` (descriptor + bytes) with config.json and hf_quant_config.json. */
async function writeCheckpoint(
  name: string,
  tensors: (TensorDescriptor & { data: Uint8Array })[],
  config: Record<string, unknown>,
  hfQuantConfig?: Record<string, unknown>,
): Promise<string> {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ architectures: ["TestForCausalLM"], ...config }));
  if (hfQuantConfig) writeFileSync(join(dir, "hf_quant_config.json"), JSON.stringify(hfQuantConfig));
  const byName = new Map(tensors.map((t) => [t.name, t.data]));
  await writeSafetensorsFile(join(dir, "model.safetensors"), tensors, (info) => byName.get(info.name)!);
  return dir;
}

const P = "model.layers.0.mlp.up_proj";
const e4m3Codes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37) % 0x7e);
const f32 = (v: number) => new Uint8Array(new Float32Array([v]).buffer);

/** compressed-tensors MXFP8: E4M3 [64, 128] with U8 E8M0 scales [64, 4]; byte `at` set to `byte`. */
function mxfp8(name: string, byte: number, at: number) {
  const scales = Uint8Array.from({ length: 64 * 4 }, (_, i) => 118 + (i % 7));
  scales[at] = byte;
  const config = {
    quantization_config: {
      quant_method: "compressed-tensors",
      format: "mxfp8-quantized",
      config_groups: { group_0: { targets: ["Linear"], weights: { group_size: 32 } } },
    },
  };
  return writeCheckpoint(
    name,
    [
      { name: `${P}.weight`, dtype: "F8_E4M3", shape: [64, 128], data: e4m3Codes(64 * 128) },
      { name: `${P}.weight_scale`, dtype: "U8", shape: [64, 4], data: scales },
    ],
    config,
  );
}

describe("MX E8M0 scales and per-tensor scales: the same verdicts", () => {
  it("E8M0 0xFF (NaN): an error for lint and audit; convert refuses naming block [r, c]", async () => {
    const dir = await mxfp8("mx-nan", 0xff, 4 * 9 + 2);
    const v = await verdicts(dir, `${P}.weight_scale`);
    expect(v.lint.map((f) => [f.code, f.severity])).toEqual([["scale-nan", "error"]]);
    expect(v.audit).toEqual(v.lint);
    await expectRefused(v, "model.safetensors", `${P}.weight_scale`, /block \[9, 2\] has scale NaN \(nan: /);
  });

  it("E8M0 byte 0 (2^-127, a float32 subnormal): a warning; convert converts", async () => {
    const dir = await mxfp8("mx-sub", 0, 7);
    const v = await verdicts(dir, `${P}.weight_scale`);
    expect(v.lint.map((f) => [f.code, f.severity])).toEqual([["scale-subnormal", "warning"]]);
    expect(v.lint[0].message).toMatch(/first at block \[1, 3\], flat index 7: 5\.877472e-39/);
    expect(v.audit).toEqual(v.lint);
    expect(v.err).toBeNull();
  });

  it("E8M0 byte 247 (2^120: 2^120 x 448 overflows float32) is an error; 246 is not", async () => {
    const dir = await mxfp8("mx-big", 247, 0);
    const v = await verdicts(dir, `${P}.weight_scale`);
    expect(v.lint.map((f) => f.code)).toEqual(["scale-overflow"]);
    expect(v.audit).toEqual(v.lint);
    await expectRefused(
      v,
      "model.safetensors",
      `${P}.weight_scale`,
      /block \[0, 0\] has scale 1\.329228e\+36 \(overflow/,
    );
    const ok = await verdicts(await mxfp8("mx-246", 246, 0), `${P}.weight_scale`, { allowNonfinite: true });
    expect(ok.lint).toEqual([]);
    expect(ok.err).toBeNull();
  });

  it("per-tensor FP8 scale 0: an error everywhere, refused even with --bad-scales keep", async () => {
    const dir = await writeCheckpoint(
      "fp8-tensor-zero",
      [
        { name: `${P}.weight`, dtype: "F8_E4M3", shape: [32, 64], data: e4m3Codes(32 * 64) },
        { name: `${P}.weight_scale`, dtype: "F32", shape: [], data: f32(0) },
        { name: `${P}.input_scale`, dtype: "F32", shape: [], data: f32(0.5) },
      ],
      {},
    );
    const v = await verdicts(dir, `${P}.weight_scale`);
    expect(v.lint.map((f) => [f.code, f.severity])).toEqual([["scale-zero", "error"]]);
    expect(v.audit).toEqual(v.lint);
    await expectRefused(
      v,
      "model.safetensors",
      `${P}.weight_scale`,
      /the per-tensor scale is 0 \(zero: the tensor would/,
    );
    const k = await verdicts(dir, `${P}.weight_scale`, { badScales: "keep" });
    await expectRefused(k, "model.safetensors", `${P}.weight_scale`, /does not apply to a per-tensor scale/);
  });

  it("NVFP4 weight_scale_2 negative: lint and audit check it too; convert refuses naming it", async () => {
    const codes = Uint8Array.from({ length: 32 * 32 }, (_, i) => (i * 7) & 0x77);
    const scales = Uint8Array.from({ length: 32 * 4 }, (_, i) => 0x30 + (i % 9));
    const dir = await writeCheckpoint(
      "nvfp4-neg",
      [
        { name: `${P}.weight`, dtype: "U8", shape: [32, 32], data: codes },
        { name: `${P}.weight_scale`, dtype: "F8_E4M3", shape: [32, 4], data: scales },
        { name: `${P}.weight_scale_2`, dtype: "F32", shape: [], data: f32(-2e-3) },
        { name: `${P}.input_scale`, dtype: "F32", shape: [], data: f32(0.5) },
      ],
      {},
      { producer: { name: "modelopt" }, quantization: { quant_algo: "NVFP4", group_size: 16 } },
    );
    const v = await verdicts(dir, `${P}.weight_scale_2`);
    expect(v.lint.map((f) => [f.code, f.severity])).toEqual([["scale-negative", "error"]]);
    expect(v.audit).toEqual(v.lint);
    await expectRefused(
      v,
      "model.safetensors",
      `${P}.weight_scale_2`,
      /the per-tensor scale is -0\.002 \(negative/,
    );
  });
});
