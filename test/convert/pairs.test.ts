/**
 * Every source layout x every target layout (issue 11's table of truth), through the built CLI:
 * `fp8kit convert SRC OUT --layout L [--to T] --workers 0 --verify --json` on a small checkpoint per
 * source layout (layout-fixtures.ts: partial 128x128 blocks, stacked experts `[E, r, c]`), then
 *   - the run exits 0 and --verify finds nothing;
 *   - the output is detected as the target's layout (what `fp8kit inspect --json` reports as
 *     layout.kind, computed in-process by the same `inspectPath` to keep the run short);
 *   - each quantized weight's action (the `--json` "tensor" events) is the one in `EXPECTED`;
 *   - the output holds exactly the target's tensors, and plain tensors byte for byte;
 *   - values, decoded by layout-fixtures.ts (not the library) and compared with each element's
 *     independently computed float32 value: relabels bit for bit (and the code bytes unchanged),
 *     dequantizations equal to the BF16 rounding, (re)quantizations within the target element's
 *     rounding bound (half an ulp, half a subnormal step, or saturated at the largest code), and
 *     the error the CLI reports equal to the one computed here.
 * Ascend targets (W8A8_DYNAMIC / W4A8_DYNAMIC) are checked against msModelSlim's steps transcribed in
 * test/convert/ascend-reference.ts (codes, scales, scale_bias equal; values within the double-rounding
 * bound of `checkAscendWeight`), their description file and config, and vllm-ascend's loading rules
 * (test/convert/ascend-loader.ts); Ascend sources (INT8, and INT4 experts beside INT8 attention) go
 * to every target; into the same integers (INT8 -> INT8, INT4 -> INT4) they relabel.
 * Relabels whose scales the target's default storage cannot hold (float F32 scales into
 * compressed-tensors' BF16, an NVFP4 scalar with no exact reciprocal) exit 2 with code
 * "lossy-relabel" naming the tensor, and go through with --allow-lossy (reported error > 0); for
 * fp8 the refusal needs --scale-dtype bf16 asked for, since by default the source's F32 storage is
 * kept (lossless).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../../src/convert/node.js";
import { decode, encode } from "../../src/formats/index.js";
import { inspectPath } from "../../src/report/node.js";
import { ascendLoadFailures } from "./ascend-loader.js";
import { bf16, refBand, refScaleBias } from "./ascend-reference.js";
import {
  ASCEND_DESCRIPTION,
  ASCEND_INT4,
  type DecodedWeight,
  decodeWeight,
  denseOf,
  outputNames,
  PAIR_SOURCES,
  PAIR_TARGETS,
  type PairSource,
  type PairTarget,
  pairArgs,
  readTensors,
  type T,
  transposed,
  type Weight,
  writeCase,
} from "./layout-fixtures.js";

const CLI = process.env.FP8KIT_TEST_CLI ?? join(import.meta.dirname, "..", "..", "dist", "cli", "main.js");
const tmp = mkdtempSync(join(tmpdir(), "fp8kit-pairs-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Action = "relabel" | "requantize" | "dequantize" | "quantize" | "copy" | "lossy";
const R = "relabel";
const Q = "requantize";
const D = "dequantize";
const N = "quantize";
/** A relabel whose scales the target storage does not hold exactly (fp8: BF16, asked for): refused, see the file header. */
const X = "lossy";

/**
 * What happens to every quantized weight of each source, per target in `PAIR_TARGETS` order:
 * deepseek fp8, compressed-tensors fp8 / mxfp8 / mxfp4 / nvfp4, modelopt mxfp8 / nvfp4, gpt-oss,
 * ascend w8a8 / w4a8, dense.
 * Relabels need the same element codes, target blocks inside source blocks, and scales the target
 * stores exactly (power-of-two targets take float scales only when the source declares UE8M0).
 * Ascend's integers relabel into the same integers (INT8 -> INT8, INT4 -> INT4: codes and row
 * scales copied); between widths (`weightAction`) they are requantized from the BF16 values.
 */
const EXPECTED: Readonly<Record<string, readonly Action[]>> = {
  "deepseek-fp8": [R, X, Q, Q, Q, Q, Q, Q, Q, Q, D],
  "deepseek-ue8m0-f32": [R, R, R, Q, Q, R, Q, Q, Q, Q, D],
  "deepseek-ue8m0-e8m0": [R, R, R, Q, Q, R, Q, Q, Q, Q, D],
  "ct-fp8-bf16": [R, R, Q, Q, Q, Q, Q, Q, Q, Q, D],
  "ct-fp8-f32": [R, X, Q, Q, Q, Q, Q, Q, Q, Q, D],
  "ct-mxfp8": [Q, Q, R, Q, Q, R, Q, Q, Q, Q, D],
  "ct-mxfp4": [Q, Q, Q, R, Q, Q, Q, R, Q, Q, D],
  "ct-nvfp4": [Q, Q, Q, Q, R, Q, X, Q, Q, Q, D],
  "modelopt-mxfp8": [Q, Q, R, Q, Q, R, Q, Q, Q, Q, D],
  "modelopt-nvfp4": [Q, Q, Q, Q, R, Q, R, Q, Q, Q, D],
  "gpt-oss-mxfp4": [Q, Q, Q, R, Q, Q, Q, R, Q, Q, D],
  dense: [N, N, N, N, N, N, N, N, N, N, "copy"],
  "ascend-w8a8": [Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, D],
  "ascend-w4a8": [Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, D],
};

/**
 * gpt-oss holds only its MoE experts' stacked parameters quantized (transformers
 * `integrations/mxfp4.py` swaps in `Mxfp4GptOssExperts` for `experts.gate_up_proj` / `down_proj`);
 * every other weight is written BF16: dequantized from a quantized source, kept from a dense one.
 */
const GPT_OSS_HOLDS = /\.experts\.(gate_up_proj|down_proj)(\.weight)?$/;

/**
 * Ascend quantizes what msModelSlim's DeepSeek recipes quantize: the linears under `self_attn` and
 * `mlp`, except `kv_b_proj` (vllm-ascend's MLA asserts it is unquantized) and the router `mlp.gate`
 * (ASCEND.md §2.3); every other weight is written BF16 and described FLOAT. From a dense source
 * stacked experts `[E, out, in]` are quantized too (as their FP8 version would be).
 */
const ASCEND_HOLDS = (name: string) =>
  /\.(self_attn|mlp)\./.test(name) && !/\.kv_b_proj\./.test(name) && !/\.mlp\.gate\.weight$/.test(name);

/**
 * Tensor selection (src/checkpoint/select.ts) quantizes only 2-D weights: stacks store stacked
 * experts input-major (`[E, in, out]`), so their groups would run along the wrong dimension. A dense
 * source's stacked experts are therefore kept BF16 by every quantized target except gpt-oss, which
 * quantizes its experts as transformers' `quantize_to_mxfp4` does: each `[in, out]` matrix read
 * transposed into the output-major blocks (`stackedIntoGptOss`).
 */
const STACKED_SELECTION_PENDING = true;

/** A dense stacked expert the gpt-oss layout quantizes (read transposed). */
const stackedIntoGptOss = (s: PairSource, t: PairTarget, w: Weight) =>
  s.format === null && t.layout === "gpt-oss" && w.shape.length > 2 && GPT_OSS_HOLDS.test(w.out);

/** The action of weight `w` of source `s` in target `t`, whose pair action (`EXPECTED`) is `a`. */
function weightAction(s: PairSource, t: PairTarget, a: Action, w: Weight): Action {
  if (a === "copy") return a;
  const quantizedSource = s.format !== null;
  if (t.layout === "gpt-oss" && !GPT_OSS_HOLDS.test(w.out)) return quantizedSource ? D : "copy";
  if (t.layout === "ascend") {
    if (!ASCEND_HOLDS(w.out)) return quantizedSource ? D : "copy";
    if (!s.kind.startsWith("ascend-")) return a;
    // Ascend into Ascend: the same integer width relabels, another is requantized.
    const int4 = (w4a8: boolean) => w4a8 && ASCEND_INT4.test(w.out);
    return int4(s.kind === "ascend-w4a8") === int4(t.to === "w4a8") ? R : Q;
  }
  if (stackedIntoGptOss(s, t, w)) return a;
  if (STACKED_SELECTION_PENDING && !quantizedSource && w.shape.length > 2) return "copy";
  return a;
}

/** Pairs with no weight converted to the target (see `STACKED_SELECTION_PENDING`). */
const pending = (s: PairSource, t: PairTarget, a: Action) =>
  s.case.weights.every((w) => weightAction(s, t, a, w) === "copy") && a !== "copy";

/** Element formats' rounding: significand bits after the point, largest finite, smallest subnormal. */
const ELEMENT = {
  float8_e4m3fn: { m: 3, max: 448, sub: 2 ** -9 },
  float4_e2m1fn: { m: 1, max: 6, sub: 0.5 },
} as const;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  out: string;
}

/** Runs the CLI without blocking, so a few conversions share the cores. */
function cli(args: string[], out: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("error", reject);
    p.on("close", (status) => resolve({ status, stdout, stderr, out }));
  });
}

/** A queue of CLI runs, `limit` at a time; each caller awaits its own. */
function pool(limit: number) {
  const waiting: (() => void)[] = [];
  let running = 0;
  const next = () => {
    if (running >= limit || waiting.length === 0) return;
    running++;
    waiting.shift()!();
  };
  return (args: string[], out: string): Promise<Run> =>
    new Promise<void>((go) => {
      waiting.push(go);
      next();
    }).then(() =>
      cli(args, out).finally(() => {
        running--;
        next();
      }),
    );
}

const srcDir = (s: PairSource) => join(tmp, s.id);
const slug = (s: PairSource, t: PairTarget, variant = "") =>
  join(tmp, `${s.id}--${t.id.replace(/ /g, "-")}${variant}`);
const runs = new Map<string, Promise<Run>>();

beforeAll(() => {
  for (const s of PAIR_SOURCES) writeCase(srcDir(s), s.case);
  const run = pool(Math.min(3, availableParallelism()));
  const convert = (s: PairSource, t: PairTarget, variant: string, extra: string[]) => {
    const out = slug(s, t, variant);
    const args = ["convert", srcDir(s), out, ...pairArgs(s, t), ...extra, "--workers", "0", "--json"];
    runs.set(`${s.id} ${t.id}${variant}`, run(args, out));
  };
  for (const s of PAIR_SOURCES) {
    PAIR_TARGETS.forEach((t, k) => {
      const a = EXPECTED[s.id][k];
      if (pending(s, t, a)) return;
      if (a !== X) {
        convert(s, t, "", ["--verify"]);
        return;
      }
      // fp8: the default keeps the source's F32 scale storage, so BF16 storage is asked for.
      const bf16 = t.to === "fp8" ? ["--scale-dtype", "bf16"] : [];
      convert(s, t, "", bf16);
      convert(s, t, " --allow-lossy", [...bf16, "--allow-lossy", "--verify"]);
      if (t.to === "fp8") convert(s, t, " default", ["--verify"]);
    });
  }
});

interface Events {
  /** Action of every output tensor the run converted or copied. */
  action: Map<string, string>;
  /** Relative Frobenius error the CLI reports per converted tensor. */
  relFrob: Map<string, number>;
  result: { status: string; verify: { mismatches: unknown[] } | null };
}

function eventsOf(r: Run): Events {
  const lines = r.stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const action = new Map<string, string>();
  const relFrob = new Map<string, number>();
  for (const e of lines.filter((l) => l.event === "tensor")) {
    action.set(e.tensor as string, e.action as string);
    if (typeof e.relFrob === "number") relFrob.set(e.tensor as string, e.relFrob);
  }
  const result = lines.find((l) => l.event === "result") as unknown as Events["result"];
  return { action, relFrob, result };
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Indexes where `a` and `b` differ bit for bit (at most 3), and how many. */
function bitDiff(a: Float32Array, b: Float32Array): { count: number; first: number[] } {
  const x = bits(a);
  const y = bits(b);
  const first: number[] = [];
  let count = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i] && count++ < 3) first.push(i);
  return { count, first };
}

/**
 * Elements of `d` outside the target's rounding of `x`: |y - x| above half an ulp of x (relative
 * 2^-(m+1)) or half the smallest subnormal step, both times the block's multiplier, with 2^-8 slack
 * for the float32 arithmetic; or, for a value beyond the largest code, anything but that code.
 */
function outsideRounding(x: Float32Array, d: DecodedWeight): number {
  if (d.element !== "float8_e4m3fn" && d.element !== "float4_e2m1fn")
    throw new Error(`no floating-point rounding bound for ${d.element}`);
  const { m, max, sub } = ELEMENT[d.element];
  let bad = 0;
  for (let i = 0; i < x.length; i++) {
    const y = d.values[i];
    const s = d.scale[i];
    const bound = Math.max(Math.abs(x[i]) * 2 ** -(m + 1), (s * sub) / 2) * (1 + 2 ** -8);
    if (Math.abs(y - x[i]) <= bound) continue;
    const saturated =
      Math.abs(y) === Math.fround(max * s) &&
      Math.sign(y) === Math.sign(x[i]) &&
      Math.abs(x[i]) >= Math.abs(y);
    if (!saturated) bad++;
  }
  return bad;
}

/** sqrt(sum (y - x)^2 / sum x^2) in float64. */
function relFrob(x: Float32Array, y: Float32Array): number {
  let ee = 0;
  let xx = 0;
  for (let i = 0; i < x.length; i++) {
    ee += (y[i] - x[i]) ** 2;
    xx += x[i] ** 2;
  }
  return Math.sqrt(ee / xx);
}

/** Tensors every output must hold: each weight's in the target layout, and the source's plain tensors. */
function expectedNames(s: PairSource, t: PairTarget, a: Action): string[] {
  const names = ["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight"];
  names.push(...(s.case.extra ?? []).map((x) => x.name));
  for (const w of s.case.weights) {
    const wa = weightAction(s, t, a, w);
    if (wa === "copy" || wa === D) names.push(w.out);
    else {
      const n = outputNames(t.kind, w.out);
      names.push(...[n.data, n.scale, n.global].filter((x): x is string => x !== null), ...(n.aux ?? []));
      const act = activationScaleOf(s, t, wa, w);
      if (act) names.push(act.out);
    }
  }
  return names;
}

/** NVFP4 activation-scale suffix of each NVFP4 layout (ModelOpt `input_scale`, CT its reciprocal `input_global_scale`). */
const ACTIVATION_SUFFIX: Readonly<Record<string, string>> = {
  "modelopt-nvfp4": ".input_scale",
  "ct-nvfp4": ".input_global_scale",
};

/**
 * The activation scale an NVFP4 relabel carries over (so the output stays W4A4): the input's tensor
 * and the output's name, and whether the value becomes its float32 reciprocal (across dialects).
 */
function activationScaleOf(s: PairSource, t: PairTarget, wa: Action, w: Weight) {
  const from = ACTIVATION_SUFFIX[s.kind];
  const to = ACTIVATION_SUFFIX[t.kind];
  if (!from || !to || (wa !== R && wa !== X)) return null;
  const base = w.out.replace(/\.weight$/, "");
  const input = w.tensors.find((x) => x.name === `${base}${from}`);
  return input ? { input, out: `${base}${to}`, reciprocal: from !== to } : null;
}

/**
 * An Ascend output's files: config.json without `quantization_config`; the description names every
 * written tensor, W8A8_DYNAMIC / W4A8_DYNAMIC for an I8 weight (W4A8 when it has a `scale_bias`) and
 * its scale, offset and scale_bias, FLOAT for the rest; and vllm-ascend's loading rules
 * (test/convert/ascend-loader.ts) find nothing.
 */
async function checkAscendFiles(label: string, dir: string, got: ReadonlyMap<string, T>) {
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  expect(config.quantization_config, `${label}: config.json`).toBeUndefined();
  const desc = JSON.parse(readFileSync(join(dir, ASCEND_DESCRIPTION), "utf8")) as Record<string, unknown>;
  const want: Record<string, string> = {};
  for (const [name, x] of got) {
    if (x.dtype !== "I8") {
      want[name] ??= "FLOAT";
      continue;
    }
    const base = name.replace(/\.weight$/, "");
    const type = got.has(`${base}.scale_bias`) ? "W4A8_DYNAMIC" : "W8A8_DYNAMIC";
    for (const suffix of [".weight", ".weight_scale", ".weight_offset", ".scale_bias"])
      if (got.has(`${base}${suffix}`)) want[`${base}${suffix}`] = type;
  }
  const { version, model_quant_type, group_size, metadata, optional, ...entries } = desc;
  expect(entries, `${label}: ${ASCEND_DESCRIPTION} entries`).toEqual(want);
  // msModelSlim's model_quant_type: W4A8_DYNAMIC is hidden from it (save/ascendv1.py:164-181).
  const w8a8 = Object.values(want).includes("W8A8_DYNAMIC");
  expect({ version, model_quant_type, group_size, metadata, optional }, `${label}: globals`).toEqual({
    version: "1.0.0",
    model_quant_type: w8a8 ? "W8A8_DYNAMIC" : "FLOAT",
    group_size: 0,
    metadata: {},
    optional: {},
  });
  expect(await ascendLoadFailures(dir), `${label}: as vllm-ascend loads it`).toEqual([]);
}

/**
 * An Ascend weight against msModelSlim's steps on the BF16 rounding xb of the input's values
 * (test/convert/ascend-reference.ts, written apart from the library): every code and scale equal;
 * every value within the rounding bound |y - xb| <= s · (1/2 + h), h half a BF16 ulp of xb / s
 * (the quotient is rounded to BF16 before the integer: a double rounding, so up to 3/4 · s for
 * INT8, not s/2); `weight_offset` zeros `[.., out, 1]`; W4A8's `scale_bias` = 8 · Σ q · s.
 */
function checkAscendWeight(
  what: string,
  got: ReadonlyMap<string, T>,
  names: ReturnType<typeof outputNames>,
  w: Weight,
  d: DecodedWeight,
) {
  const cols = w.shape[w.shape.length - 1];
  const bits = d.element === "int4" ? 4 : 8;
  const ref = refBand(w.expected, w.expected.length / cols, cols, bits);
  let codes = 0;
  for (let i = 0; i < ref.codes.length; i++) if (ref.codes[i] !== d.ints![i]) codes++;
  expect(codes, `${what}: codes differing from msModelSlim's steps`).toBe(0);
  const scales = d.scale.filter((_, i) => i % cols === 0);
  expect(bitDiff(scales, ref.scales).count, `${what}: scales differing from msModelSlim's steps`).toBe(0);
  let beyond = 0;
  for (let i = 0; i < w.expected.length; i++) {
    const xb = bf16(w.expected[i]);
    const s = d.scale[i];
    const v = Math.abs(xb / s);
    const h = v === 0 ? 0 : 2 ** (Math.floor(Math.log2(v)) - 8);
    if (Math.abs(d.values[i] - xb) > s * (0.5 + h) * (1 + 2 ** -8)) beyond++;
  }
  expect(beyond, `${what}: elements beyond the rounding bound`).toBe(0);
  const offset = got.get(names.aux![0])!;
  expect([offset.dtype, offset.shape], `${what}: weight_offset`).toEqual([
    "F32",
    [...w.shape.slice(0, -1), 1],
  ]);
  expect(
    offset.data.every((b) => b === 0),
    `${what}: weight_offset zeros`,
  ).toBe(true);
  if (bits === 4) {
    const bias = got.get(names.aux![1])!;
    const chunks = bias.shape[bias.shape.length - 1] as 1 | 16;
    expect(chunks, `${what}: scale_bias columns`).toBe(/down_proj/.test(w.out) ? 16 : 1);
    const want = refScaleBias(ref.codes, ref.scales, w.expected.length / cols, cols, chunks);
    expect(bitDiff(new Float32Array(bias.data.slice().buffer), want).count, `${what}: scale_bias`).toBe(0);
  }
}

/** The checks every successful pair passes (see the file header); returns the reported error per weight. */
async function checkPair(s: PairSource, t: PairTarget, action: Action, r: Run): Promise<number[]> {
  const label = `${s.id} -> ${t.id}`;
  expect(r.status, `${label}: ${r.stderr}`).toBe(0);
  const ev = eventsOf(r);
  expect(ev.result.status).toBe("complete");
  expect(ev.result.verify?.mismatches ?? [], label).toEqual([]);
  const inspected = await inspectPath(r.out);
  expect(inspected.layout.kind, label).toBe(t.kind);

  const got = readTensors(r.out);
  expect([...got.keys()].sort(), `${label}: output tensors`).toEqual(expectedNames(s, t, action).sort());
  // Only an Ascend output has a description; its tensors' types are what was written.
  expect(existsSync(join(r.out, ASCEND_DESCRIPTION)), `${label}: ${ASCEND_DESCRIPTION}`).toBe(
    t.layout === "ascend",
  );
  if (t.layout === "ascend") await checkAscendFiles(label, r.out, got);
  const input = new Map<string, T>(
    [...s.case.weights.flatMap((w) => w.tensors), ...(s.case.extra ?? [])].map((x) => [x.name, x]),
  );
  for (const name of (s.case.extra ?? []).map((x) => x.name)) {
    expect(ev.action.get(name), `${label}: ${name}`).toBe("copy");
    expect(Buffer.from(got.get(name)!.data).equals(Buffer.from(input.get(name)!.data))).toBe(true);
  }

  const errors: number[] = [];
  for (const w of s.case.weights) {
    const what = `${label}: ${w.out}`;
    const wa = weightAction(s, t, action, w);
    const kind = wa === "copy" || wa === D ? "unquantized" : t.kind;
    const outName = outputNames(kind, w.out).data;
    expect(ev.action.get(outName), what).toBe(wa === X ? R : wa);
    if (wa === "copy") {
      expect(Buffer.from(got.get(w.out)!.data).equals(Buffer.from(w.tensors[0].data)), what).toBe(true);
      continue;
    }
    const act = activationScaleOf(s, t, wa, w);
    if (act) {
      const x = new Float32Array(act.input.data.slice().buffer)[0];
      const y = new Float32Array(got.get(act.out)!.data.slice().buffer)[0];
      expect(y, `${what}: activation scale`).toBe(act.reciprocal ? Math.fround(1 / x) : x);
    }
    // A dense output holds gpt-oss experts transposed (`denseOf`).
    const wd = wa === D ? denseOf(s.kind, w) : stackedIntoGptOss(s, t, w) ? transposed(w) : w;
    const d = decodeWeight(got, kind, wd.out, wd.shape);
    const reported = ev.relFrob.get(outName)!;
    expect(reported, what).toBeCloseTo(relFrob(wd.expected, d.values), 6);
    errors.push(reported);
    if (wa === R) {
      const diff = bitDiff(d.values, w.expected);
      expect(diff, `${what}: elements differing from the input's values`).toEqual({ count: 0, first: [] });
      expect(Buffer.from(d.codes).equals(Buffer.from(w.tensors[0].data)), `${what}: code bytes`).toBe(true);
    } else if (wa === D) {
      expect(got.get(outName)!.shape, `${what}: shape`).toEqual(wd.shape);
      const want = encode("bfloat16", wd.expected) as Uint16Array;
      const have = new Uint16Array(got.get(outName)!.data.slice().buffer);
      let diff = 0;
      for (let j = 0; j < want.length; j++) if (want[j] !== have[j]) diff++;
      expect(diff, `${what}: elements differing from the BF16 rounding`).toBe(0);
    } else if ((wa === Q || wa === N) && t.layout === "ascend") {
      checkAscendWeight(what, got, outputNames(t.kind, wd.out), wd, d);
    } else if (wa === Q || wa === N) {
      // compressed-tensors' rules run on BF16 weights: a quantized source reaches them through BF16.
      const viaBf16 = t.layout === "compressed-tensors" && t.to !== "fp8" && s.format !== null;
      const x = viaBf16 ? decode("bfloat16", encode("bfloat16", wd.expected) as Uint16Array) : wd.expected;
      expect(outsideRounding(x, d), `${what}: elements beyond the rounding bound`).toBe(0);
    } else {
      // --allow-lossy: the codes as they were, each value within a rounded scale (BF16: 2^-9, or one ulp).
      expect(Buffer.from(d.codes).equals(Buffer.from(w.tensors[0].data)), `${what}: code bytes`).toBe(true);
      let beyond = 0;
      for (let j = 0; j < d.values.length; j++)
        if (Math.abs(d.values[j] - w.expected[j]) > Math.abs(w.expected[j]) * 2 ** -8) beyond++;
      expect(beyond, `${what}: values moved more than a rounded scale allows`).toBe(0);
    }
  }
  return errors;
}

describe("every source layout x every target layout, through the CLI", () => {
  for (const s of PAIR_SOURCES) {
    describe(`${s.title} (${s.id})`, () => {
      PAIR_TARGETS.forEach((t, k) => {
        const action = EXPECTED[s.id][k];
        const name = `-> ${t.id}: ${action === X ? "relabel refused (scales would round), then --allow-lossy" : action}`;
        if (pending(s, t, action)) {
          // Nothing of the source is selected for this target yet (see STACKED_SELECTION_PENDING).
          it.todo(name);
          return;
        }
        it(name, async () => {
          const r = await runs.get(`${s.id} ${t.id}`)!;
          if (action !== X) {
            await checkPair(s, t, action, r);
            return;
          }
          // Refused before anything is written, naming the tensor, as the lossy-relabel error.
          expect(r.status, r.stderr).toBe(2);
          expect(r.stderr).toMatch(/--allow-lossy/);
          expect(r.stderr).not.toMatch(/\n\s+at /);
          const named = s.case.weights.some((w) => w.tensors.some((x) => r.stderr.includes(`"${x.name}"`)));
          expect(named, r.stderr).toBe(true);
          expect(existsSync(join(r.out, "model.safetensors"))).toBe(false);
          expect(existsSync(join(r.out, "config.json"))).toBe(false);
          const lib = convertCheckpoint({
            input: srcDir(s),
            output: `${r.out}-lib`,
            layout: t.layout,
            ...(s.format === t.to ? {} : { target: t.to }),
            ...(t.to === "fp8" ? { scaleDtype: "bf16" as const } : {}),
            workers: 0,
          });
          await expect(lib).rejects.toMatchObject({ code: "lossy-relabel" });

          const lossy = await checkPair(s, t, X, await runs.get(`${s.id} ${t.id} --allow-lossy`)!);
          expect(Math.max(...lossy), "the error --allow-lossy reports").toBeGreaterThan(0);
          if (t.to === "fp8") {
            // Without --scale-dtype the source's F32 storage is kept: a lossless relabel.
            const exact = await runs.get(`${s.id} ${t.id} default`)!;
            await checkPair(s, t, R, exact);
            for (const w of s.case.weights) {
              const scale = readTensors(exact.out).get(outputNames(t.kind, w.out).scale!)!;
              expect(scale.dtype).toBe("F32");
            }
          }
        });
      });
    });
  }
});
