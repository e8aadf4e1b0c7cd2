/**
 * `fp8kit convert <input> <output> --to <target> [options]`: argument parsing and printing only;
 * the work is `convertCheckpoint` (src/convert/run-node.ts). See docs/CONVERT.md.
 */
import { SELECTION_PRESETS } from "../checkpoint/index.js";
import { convertCheckpoint, LAYOUT_NAMES, type MxRule, TARGET_NAMES } from "../convert/node.js";
import { loadChartLibraries, writeReport } from "../report/node.js";
import { isRemoteAddress } from "../safetensors/index.js";
import { ConvertProgress, planJson, printPlan, printResult, resultJson } from "./convert-output.js";
import { EXIT_FINDINGS, EXIT_OK } from "./failure.js";
import { interruptible } from "./interrupt.js";
import { count, defineCommand, flag, list, oneOf, size, text, usageError, value } from "./options.js";

const MX_RULES: readonly MxRule[] = ["floor", "ceil", "even", "rceil", "ct", "modelopt", "triton"];

/** `128x128` or `128` (square) as [rows, cols]. */
function parseBlock(raw: string, flag: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(raw);
  if (!m) throw new Error(`${flag} must look like 128x128, got ${JSON.stringify(raw)}`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

/** `i/n`: part i of n. */
function parsePart(raw: string, flag: string): [number, number] {
  const m = /^(\d+)\/(\d+)$/.exec(raw);
  if (!m) throw new Error(`${flag} must look like 1/4, got ${JSON.stringify(raw)}`);
  return [Number(m[1]), Number(m[2])];
}

/**
 * Options naming a step that a run mode skips, and why: given together they are an error, never
 * silently ignored. Tuning options (--workers, --allow-nonfinite) stay accepted with --dry-run and
 * --finalize, so a job's command line can be reused with either. (The options a target does not
 * use are refused by the convert layer.)
 */
const SKIPPED_BY = [
  { mode: "dry-run", skipped: ["finalize", "verify", "report"], why: "a dry run only prints the plan" },
  {
    mode: "part",
    skipped: ["verify", "report"],
    why: "the output is complete only after --finalize: give it there",
  },
] as const;

function refuseSkippedSteps(v: Record<string, unknown>): void {
  const given = (name: string) => v[name] !== undefined && v[name] !== false;
  for (const { mode, skipped, why } of SKIPPED_BY) {
    const idle = skipped.filter(given);
    if (!given(mode) || idle.length === 0) continue;
    const names = idle.map((n) => `--${n}`).join(", ");
    throw usageError(
      "convert",
      `${names} ${idle.length > 1 ? "do" : "does"} not apply with --${mode} (${why})`,
    );
  }
}

export const command = defineCommand(
  {
    name: "convert",
    summary: "convert a checkpoint (FP8 <-> BF16, UE8M0 requantization, MXFP8/MXFP4), streaming",
    args: ["input", "output"],
    usage: "<input> <output> --to <target> [options]",
    about: `<input> is a checkpoint directory (config.json, shards, index, tokenizer files) or a .safetensors file.

targets:
  bf16 | fp16 | fp32   dequantize every quantized weight (DeepSeek FP8 -> BF16 is bit-identical to fp8_cast_bf16.py)
  fp8                  DeepSeek/HF fine-grained block FP8 (quantize, or requantize float scales to UE8M0)
  mxfp8 | mxfp4        compressed-tensors MX layouts (U8 E8M0 scales, groups of 32)
  nvfp4                NVFP4 (compressed-tensors, or ModelOpt with --layout modelopt)
  w8a8 | w4a8          Ascend INT8 per channel (W8A8_DYNAMIC; w4a8: INT4 routed experts) for 910B/910C`,
    options: {
      to: oneOf(TARGET_NAMES, "element format (default: the input's, when --layout writes it)", {
        arg: "<target>",
      }),
      layout: oneOf(
        LAYOUT_NAMES,
        "output dialect: deepseek, compressed-tensors, modelopt, gpt-oss, ascend, dense",
        {
          arg: "<layout>",
        },
      ),
      block: value("<R>x<C>", "fp8 block size (default 128x128)", parseBlock),
      "scale-fmt": oneOf(["ue8m0", "float"], "fp8 scale format (default ue8m0, the DeepSeek-V3.1 format)"),
      "scale-dtype": oneOf(
        ["f32", "e8m0", "bf16"],
        "fp8 scale storage: deepseek f32 (default) or e8m0; compressed-tensors bf16 (default) or f32",
      ),
      requant: oneOf(
        ["vllm", "sglang"],
        "fp8 requantization of quantized input: vllm (default, float32) or sglang (through BF16)",
        { arg: "<stack>" },
      ),
      requantize: flag("requantize even where the target can hold the input's codes as they are"),
      "allow-lossy": flag("relabel even when scales must be rounded to the target's storage"),
      "scale-rule": oneOf<MxRule>(
        MX_RULES,
        "MX scale rule: ct, modelopt, triton (each layout's default), floor (OCP), ceil, even, rceil",
        { arg: "<rule>" },
      ),
      mtp: oneOf(
        ["float", "drop"],
        "w8a8/w4a8: the MTP layer written unquantized (float, the default) or left out (drop)",
        { arg: "<policy>" },
      ),
      preset: oneOf(
        ["auto", ...SELECTION_PRESETS],
        "tensor selection: auto (default), deepseek-v3, generic",
        { arg: "<name>" },
      ),
      include: list("<glob>", "also quantize matching tensors (repeatable; * stops at dots, ** does not)"),
      exclude: list("<glob>", "never quantize matching tensors (repeatable)"),
      "max-shard-size": size("<size>", "largest output shard (default 5GB)"),
      workers: count("<n>", "worker threads (default: number of cores; 0 = in-process)"),
      "dry-run": flag("print the plan (every tensor, what happens to it, bytes in/out) and stop"),
      resume: flag("continue an unfinished conversion of the same job (implied when found)"),
      force: flag("replace an existing output directory"),
      part: value(
        "<i>/<n>",
        "convert only part i of n (disjoint groups of shards), for job arrays",
        parsePart,
      ),
      finalize: flag("after all --part runs: check every shard and write config + index"),
      verify: flag("re-read the output and compare every tensor with the input"),
      report: text("<file.html>", "write the HTML report of the conversion (output against input)"),
      "allow-nonfinite": flag("convert tensors holding NaN/Inf instead of failing"),
      "bad-scales": oneOf(
        ["refuse", "keep"],
        "NaN/Inf/zero/negative/overflowing input scales: refuse (default) or keep (convert as stored)",
        { arg: "<policy>" },
      ),
      json: flag("machine-readable progress and result, one JSON object per line on stdout"),
    },
  },
  async ([input, output], v) => {
    for (const p of [input, output])
      if (isRemoteAddress(p))
        throw usageError(
          "convert",
          `${p}: convert reads and writes local files only; download the checkpoint first (inspect, lint, audit --sample and report --sample read remote addresses)`,
        );
    const target = v.to;
    const layout = v.layout;
    if (target === undefined && layout === undefined) {
      throw usageError("convert", "--to <target> or --layout <layout> is required");
    }
    refuseSkippedSteps(v);
    // Fail before converting when the HTML report cannot be written (its chart packages are optional).
    if (v.report !== undefined) loadChartLibraries();
    const progress = new ConvertProgress(v.json);
    const stopped = "stopped; completed shards are kept: run the same command again to resume";
    return interruptible(stopped, async (signal) => {
      const res = await convertCheckpoint({
        input,
        output,
        target,
        layout,
        requant: v.requant,
        requantize: v.requantize,
        allowLossy: v["allow-lossy"],
        block: v.block,
        scaleFmt: v["scale-fmt"],
        scaleDtype: v["scale-dtype"],
        scaleRule: v["scale-rule"],
        preset: v.preset,
        include: v.include,
        exclude: v.exclude,
        maxShardSize: v["max-shard-size"],
        workers: v.workers,
        dryRun: v["dry-run"],
        force: v.force,
        resume: v.resume,
        part: v.part ?? null,
        finalize: v.finalize,
        verify: v.verify,
        allowNonfinite: v["allow-nonfinite"],
        badScales: v["bad-scales"],
        mtp: v.mtp as "float" | "drop" | undefined,
        onEvent: (e) => progress.on(e),
        signal,
      });
      const status = (res.verify?.mismatches.length ?? 0) > 0 ? EXIT_FINDINGS : EXIT_OK;
      // The HTML report of the conversion: the output checkpoint against its input (per-layer error,
      // scale exponents, code use). Written only once the output is complete.
      let reportPath: string | null = null;
      if (v.report !== undefined && res.status === "complete") {
        reportPath = (await writeReport(output, v.report, { against: input })).out;
        if (!v.json) process.stderr.write(`wrote report ${reportPath}\n`);
      } else if (v.report !== undefined && !v.json) {
        process.stderr.write(`report not written: the conversion is not complete (${res.status})\n`);
      }
      if (v.json) {
        if (res.status === "dry-run") process.stdout.write(`${JSON.stringify(planJson(res))}\n`);
        process.stdout.write(`${JSON.stringify(resultJson(res, reportPath))}\n`);
        return status;
      }
      if (res.status === "dry-run") {
        process.stdout.write(`${printPlan(res)}\n`);
        return EXIT_OK;
      }
      const part = v.part ? v.part.join("/") : undefined;
      process.stdout.write(`${printResult(res, part, v.finalize)}\n`);
      return status;
    });
  },
);
