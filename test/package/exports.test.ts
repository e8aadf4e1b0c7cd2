import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { VERSION } from "../../src/cli/version.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

// These run the built package (npm test builds before vitest) the way a user imports it.
describe("package exports", () => {
  it("import { encode, decode, formatInfo } from 'fp8kit' works after the build", () => {
    const out = execFileSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        "import { encode, decode, formatInfo } from 'fp8kit'; const c = encode('float8_e4m3fn', new Float32Array([448, 0.1])); console.log(JSON.stringify([Array.from(c), Array.from(decode('float8_e4m3fn', c)), formatInfo('float4_e2m1fn').max]));",
      ],
      { cwd: root, encoding: "utf8" },
    );
    expect(JSON.parse(out)).toEqual([[0x7e, 0x1d], [448, 0.1015625], 6]);
  });

  it("README's library examples run against the built fp8kit and fp8kit/node", () => {
    const script = `
      import { quantize, dequantize, errorMetrics, SafetensorsFile, BufferSource } from "fp8kit";
      import { openCheckpoint, writeSafetensorsFile } from "fp8kit/node";
      import { readFileSync } from "node:fs";
      const bf16 = new Uint16Array(576 * 7168).map((_, i) => 0x3f80 + (i % 97));
      const q = quantize({ dtype: "bfloat16", codes: bf16 }, [576, 7168], "deepseek-v3.1");
      const back = dequantize(q, { to: "float32" });
      const original = new Float32Array(new Uint32Array(Array.from(bf16, (c) => c << 16)).buffer);
      const m = errorMetrics(original, back);
      const ckpt = await openCheckpoint("sample/deepseek-v3-tiny");
      const { info, data } = await ckpt.readTyped("model.layers.0.mlp.down_proj.weight");
      await ckpt.close();
      const bytes = readFileSync("sample/deepseek-v3-tiny/" + ckpt.shards[0]);
      const f = await SafetensorsFile.open(new BufferSource(bytes, "x.safetensors"));
      console.log(JSON.stringify([q.scaleShape, m.relativeFrobenius < 0.05, info.dtype, data.length > 0,
        f.tensors.length > 0, typeof writeSafetensorsFile]));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: root,
      encoding: "utf8",
    });
    expect(JSON.parse(out)).toEqual([[5, 56], true, "F8_E4M3", true, true, "function"]);
  });

  it("the package version and the CLI's agree", () => {
    const pkg = JSON.parse(readFileSync(`${root}/package.json`, "utf8")) as { version: string };
    expect(VERSION).toBe(pkg.version);
    const out = execFileSync(process.execPath, ["dist/cli/main.js", "--version"], {
      cwd: root,
      encoding: "utf8",
    });
    expect(out.trim()).toBe(pkg.version);
  });

  it("the CLI prints a clear error for an unknown command, without a stack trace", () => {
    let stderr = "";
    let status = 0;
    try {
      execFileSync(process.execPath, ["dist/cli/main.js", "frobnicate"], {
        cwd: root,
        encoding: "utf8",
        stdio: "pipe",
      });
    } catch (e) {
      const err = e as { stderr: string; status: number };
      stderr = err.stderr;
      status = err.status;
    }
    expect(status).toBe(2);
    expect(stderr).toMatch(/unknown command "frobnicate"/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
