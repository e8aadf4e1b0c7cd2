/**
 * Every layout the detector knows, end to end as a user meets it: write a small checkpoint in that
 * layout, run `fp8kit inspect --json`, run every `fp8kit convert` command it suggests, and check
 * the output against an independent computation: codes decoded with the format codec, scales
 * combined and multiplied in float32 (`Math.fround`), rounded to BF16 with the codec. Layouts
 * `convert` cannot handle must not be suggested, and `convert` must refuse them by name (exit 2).
 *
 * The safetensors files here are written and read by a few lines of the test (layout-fixtures.ts),
 * not by the library's reader and writer, so the test does not lean on the code it checks.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decode, encode } from "../../src/formats/index.js";
import { bytes, CASES, type Case, ct, denseOf, L, readTensors, writeCase } from "./layout-fixtures.js";

const CLI = process.env.FP8KIT_TEST_CLI ?? join(import.meta.dirname, "..", "..", "dist", "cli", "main.js");
const tmp = mkdtempSync(join(tmpdir(), "fp8kit-layouts-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });

interface Compat {
  target: string;
  status: string;
  command: string | null;
}
function suggested(dir: string): { kind: string; commands: string[] } {
  const r = cli("inspect", dir, "--json");
  expect(r.status, r.stderr).toBe(0);
  const j = JSON.parse(r.stdout) as { layout: { kind: string }; compatibility: Compat[] };
  const commands = [
    ...new Set(
      j.compatibility
        .map((c) => c.command)
        .filter((c): c is string => c?.startsWith("fp8kit convert ") ?? false),
    ),
  ];
  return { kind: j.layout.kind, commands };
}

/** Runs a suggested command with `<out>` made concrete; returns the output directory. */
function runSuggested(command: string, out: string) {
  const args = command.split(" ").slice(1);
  args[2] = out;
  return cli(...args, "--workers", "0", "--verify");
}

describe("every layout: inspect, then the command inspect suggests", () => {
  CASES.forEach((c, i) => {
    it(`${c.layout} #${i}: the suggested conversion succeeds with the independently computed values`, () => {
      const dir = join(tmp, `case-${i}`);
      writeCase(dir, c);
      const { kind, commands } = suggested(dir);
      expect(kind).toBe(c.layout);
      expect(commands.length).toBeGreaterThan(0);
      for (const [k, command] of commands.entries()) {
        expect(command).toMatch(/--to (bf16|fp16|fp32)$/);
        const out = join(tmp, `case-${i}-out-${k}`);
        const r = runSuggested(command, out);
        expect(r.status, r.stderr).toBe(0);
        const got = readTensors(out);
        for (const w0 of c.weights) {
          // gpt-oss experts come out input-major, as transformers' GptOssExperts holds them.
          const w = denseOf(c.layout, w0);
          const t = got.get(w.out);
          expect(t, `${w.out} in the output`).toBeDefined();
          expect(t!.dtype).toBe("BF16");
          expect(t!.shape).toEqual(w.shape);
          const want = encode("bfloat16", w.expected) as Uint16Array;
          const have = new Uint16Array(t!.data.buffer, t!.data.byteOffset, t!.data.length / 2);
          let diff = 0;
          for (let j = 0; j < want.length; j++) if (want[j] !== have[j]) diff++;
          expect(diff, `${w.out}: elements differing from the reference`).toBe(0);
        }
        // Nothing quantized, no scale and no activation scale survives under the dense label.
        for (const t of got.values()) {
          expect(["BF16", "F32"], `${t.name} is ${t.dtype}`).toContain(t.dtype);
          expect(t.name).not.toMatch(/_scale(_inv|_2)?$|_global_scale$|_scales$|_blocks$|_packed$/);
        }
        const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
        expect(config.quantization_config).toBeUndefined();
        expect(existsSync(join(out, "hf_quant_config.json"))).toBe(false);
        expect(cli("lint", out).status).toBe(0);
      }
    });
  });
});

describe("layouts convert cannot write are refused by name and never suggested", () => {
  it("NVFP4 and per-tensor FP8 (once dense-only) requantize to fp8 / mxfp8 from their own decoded values", () => {
    for (const i of [5, 6, 9]) {
      const dir = join(tmp, `case-${i}`);
      if (!existsSync(dir)) writeCase(dir, CASES[i]);
      for (const to of ["fp8", "mxfp8"]) {
        const out = join(tmp, `requant-${i}-${to}`);
        const r = cli("convert", dir, out, "--to", to, "--workers", "0", "--verify");
        expect(r.status, r.stderr).toBe(0);
        // Back to BF16: each weight is within the target's rounding of the independently computed values.
        const dense = join(tmp, `requant-${i}-${to}-bf16`);
        const back = cli("convert", out, dense, "--to", "bf16", "--workers", "0");
        expect(back.status, back.stderr).toBe(0);
        const got = readTensors(dense);
        for (const w of CASES[i].weights) {
          const y = decode("bfloat16", new Uint16Array(got.get(w.out)!.data.slice().buffer));
          let ee = 0;
          let xx = 0;
          for (let j = 0; j < y.length; j++) {
            ee += (y[j] - w.expected[j]) ** 2;
            xx += w.expected[j] ** 2;
          }
          // E4M3 keeps 4 significant bits: a relative error well under 2^-4 over the tensor.
          expect(Math.sqrt(ee / xx), `${w.out} via --to ${to}`).toBeLessThan(0.05);
        }
      }
    }
  });
  it("declared quantization with no recognised tensors, and an INT8 weight no layout knows: no command, exit 2", () => {
    const unknown: Case = {
      layout: "unknown",
      config: { quantization_config: ct("int-quantized", { num_bits: 8 }) },
      weights: [],
    };
    const int8: Case = {
      layout: "unquantized",
      config: {},
      weights: [],
      extra: [
        { name: `${L}.mlp.up_proj.weight`, dtype: "I8", shape: [16, 32], data: new Uint8Array(512).fill(3) },
        // Per-group scales (two per row): not Ascend's per-row `[out, 1]`, which fp8kit reads.
        {
          name: `${L}.mlp.up_proj.weight_scale`,
          dtype: "F32",
          shape: [16, 2],
          data: bytes(new Float32Array(32).fill(0.01)),
        },
      ],
    };
    for (const [k, c] of [unknown, int8].entries()) {
      const dir = join(tmp, `stray-${k}`);
      writeCase(dir, c);
      const s = suggested(dir);
      expect(s.kind).toBe(c.layout);
      expect(s.commands).toEqual([]);
      const r = cli("convert", dir, join(tmp, `stray-${k}-out`), "--to", "bf16");
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(
        k === 0 ? /no tensor matches a layout fp8kit knows/ : /up_proj\.weight" \(I8\) holds quantized codes/,
      );
    }
  });
});
