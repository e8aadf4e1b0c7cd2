/**
 * `fp8kit demo` (what `npm start` runs): converts the bundled DeepSeek-V3-layout sample
 * (sample/deepseek-v3-tiny, FP8 with float scales) to V3.1 UE8M0 FP8 and to BF16 under a temporary
 * directory, and prints the per-tensor error each conversion adds.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { convertCheckpoint, summarizeErrorStats as summarize } from "../convert/node.js";
import { errorTable } from "./convert-output.js";
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

export const command = defineCommand(
  {
    name: "demo",
    summary: "convert the bundled DeepSeek-V3 sample to UE8M0 FP8 and BF16, print the errors",
    args: [],
    options: { keep: flag("leave the converted checkpoints in the temporary directory") },
  },
  async (_args, v) => {
    const input = sampleDir();
    const work = await mkdtemp(join(tmpdir(), "fp8kit-demo-"));
    const out = process.stdout;
    try {
      out.write(`sample: ${input}\n\n`);
      const fp8 = await convertCheckpoint({
        input,
        output: join(work, "fp8-ue8m0"),
        target: "fp8",
        scaleFmt: "ue8m0",
        verify: true,
      });
      out.write(
        `== FP8 (float scales, DeepSeek-V3) -> FP8 UE8M0 (V3.1 / Blackwell DeepGEMM requantization)\n`,
      );
      out.write(`input layout: ${fp8.plan.layout.label}\n\n${errorTable(fp8.tensors)}\n`);
      const bf16 = await convertCheckpoint({
        input,
        output: join(work, "bf16"),
        target: "bf16",
        verify: true,
      });
      out.write(
        `\n== FP8 -> BF16 (bit-identical to DeepSeek's fp8_cast_bf16.py)\n\n${errorTable(bf16.tensors)}\n\n`,
      );
      for (const [name, r] of [
        ["fp8-ue8m0", fp8],
        ["bf16", bf16],
      ] as const) {
        const conv = r.tensors.filter((t) => t.stats);
        const worst = Math.max(...conv.map((t) => summarize(t.stats!).relFrob));
        out.write(
          `${name}: ${conv.length} tensors converted, ${r.tensors.length - conv.length} copied, worst relative error ${worst.toExponential(2)}, verify: ${r.verify?.mismatches.length ?? "?"} mismatches\n`,
        );
      }
      if (v.keep) out.write(`\noutputs kept under ${work}\n`);
    } finally {
      if (!v.keep) await rm(work, { recursive: true, force: true });
    }
    return EXIT_OK;
  },
);
