/**
 * `fp8kit demo` (what `npm start` runs): converts the bundled DeepSeek-V3-layout sample
 * (sample/deepseek-v3-tiny, FP8 with float scales) to V3.1 UE8M0 FP8 and to BF16 under a temporary
 * directory, and prints the per-tensor error each conversion adds. It says where it writes, and the
 * directory goes however the demo ends (success, error, Ctrl-C, SIGTERM) unless --keep is given
 * and it succeeded.
 */
import { existsSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { constants, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type ConvertResult,
  convertCheckpoint,
  type RunOptions,
  summarizeErrorStats as summarize,
} from "../convert/node.js";
import { errorRow, errorTable } from "./convert-output.js";
import { CliError } from "./errors.js";
import { EXIT_OK } from "./failure.js";
import { defineCommand, flag } from "./options.js";

function sampleDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ["../..", ".."]) {
    const d = resolve(here, up, "sample", "deepseek-v3-tiny");
    if (existsSync(join(d, "config.json"))) return d;
  }
  throw new CliError(
    "sample-missing",
    "sample/deepseek-v3-tiny not found (run `npx tsx scripts/make-sample.ts`)",
  );
}

/**
 * Removes `dir` if the process ends while the demo runs: on SIGINT or SIGTERM (one line on stderr,
 * then exit 128 + the signal's number, 130 or 143, as a shell reports it) or on any `process.exit`.
 * Errors and returns are the caller's `finally`. Returns the function that uninstalls the handlers.
 */
function removeOnExit(dir: string): () => void {
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const onSignal = (signal: "SIGINT" | "SIGTERM") => {
    remove();
    process.stderr.write(`fp8kit demo: stopped by ${signal}; removed ${dir}\n`);
    process.exit(128 + constants.signals[signal]);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("exit", remove);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("exit", remove);
  };
}

/** The two conversions the demo runs: output folder name, headline, target options. */
const CONVERSIONS = [
  {
    name: "fp8-ue8m0",
    title: "FP8 (float scales, DeepSeek-V3) -> FP8 UE8M0 (V3.1 / Blackwell DeepGEMM requantization)",
    options: { target: "fp8", scaleFmt: "ue8m0" },
  },
  {
    name: "bf16",
    title: "FP8 -> BF16 (bit-identical to DeepSeek's fp8_cast_bf16.py)",
    options: { target: "bf16" },
  },
] as const satisfies readonly { name: string; title: string; options: Partial<RunOptions> }[];

/** One conversion's summary: tensors converted and copied, the worst relative error. */
function summary(r: ConvertResult) {
  const conv = r.tensors.filter((t) => t.stats);
  return {
    converted: conv.length,
    copied: r.tensors.length - conv.length,
    worstRelFrob: Math.max(...conv.map((t) => summarize(t.stats!).relFrob)),
  };
}

export const command = defineCommand(
  {
    name: "demo",
    summary: "convert the bundled DeepSeek-V3 sample to UE8M0 FP8 and BF16, print the errors",
    args: [],
    about: `Writes under a new fp8kit-demo-* directory in the system's temporary directory (printed
first) and removes it however the demo ends, unless --keep is given and it succeeded.`,
    options: {
      keep: flag("leave the converted checkpoints in the temporary directory (after a successful run)"),
      json: flag("print the result as one JSON object on stdout (the temporary path goes to stderr)"),
    },
  },
  async (_args, v) => {
    const input = sampleDir();
    const work = await mkdtemp(join(tmpdir(), "fp8kit-demo-"));
    const uninstall = removeOnExit(work);
    // With --json, stdout holds only the JSON object; the narration goes to stderr.
    const say = (s: string) => (v.json ? process.stderr : process.stdout).write(s);
    let succeeded = false;
    try {
      say(`writing to ${work} (${v.keep ? "kept" : "removed"} at the end)\n`);
      say(`sample: ${input}\n`);
      const results: { name: string; title: string; target: string; res: ConvertResult }[] = [];
      for (const [i, c] of CONVERSIONS.entries()) {
        const res = await convertCheckpoint({
          input,
          output: join(work, c.name),
          verify: true,
          ...c.options,
        });
        results.push({ name: c.name, title: c.title, target: c.options.target, res });
        if (!v.json) {
          const layout = i === 0 ? `input layout: ${res.plan.layout.label}\n\n` : "\n";
          say(`\n== ${c.title}\n${layout}${errorTable(res.tensors)}\n`);
        }
      }
      if (v.json) {
        const conversions = results.map(({ name, title, target, res }) => ({
          name,
          title,
          target,
          inputLayout: res.plan.layout.label,
          ...summary(res),
          verify: res.verify,
          tensors: res.tensors.filter((t) => t.stats).map(errorRow),
        }));
        process.stdout.write(
          `${JSON.stringify({ sample: input, workDir: work, kept: v.keep, conversions }, null, 2)}\n`,
        );
      } else {
        say("\n");
        for (const { name, res } of results) {
          const s = summary(res);
          say(
            `${name}: ${s.converted} tensors converted, ${s.copied} copied, worst relative error ${s.worstRelFrob.toExponential(2)}, verify: ${res.verify?.mismatches.length ?? "?"} mismatches\n`,
          );
        }
        if (v.keep) say(`\noutputs kept under ${work}\n`);
      }
      succeeded = true;
    } finally {
      // The handlers stay until the directory is gone: a signal during `rm` still removes it.
      if (!(v.keep && succeeded)) await rm(work, { recursive: true, force: true });
      uninstall();
    }
    return EXIT_OK;
  },
);
