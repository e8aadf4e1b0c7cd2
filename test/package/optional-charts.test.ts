/**
 * d3 and Observable Plot are optional dependencies, read only when an HTML report is written. The
 * built package runs from a copy with no node_modules at all: the codecs, the reader and the CLI work,
 * and `report` / `convert --report` stop with exit 2 and the package to install.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const SAMPLE = join(root, "sample", "deepseek-v3-tiny");
const CHART_PACKAGES = /["'](d3|@observablehq\/plot)["']/;

/** The one built module allowed to name the chart packages (it resolves them when a report is written). */
const LOADER = join("report", "chart-libraries-node.js");

function builtFiles(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? builtFiles(join(dir, e.name), base)
      : e.name.endsWith(".js")
        ? [join(dir, e.name).slice(base.length + 1)]
        : [],
  );
}

const bare = mkdtempSync(join(tmpdir(), "fp8kit-no-charts-"));
afterAll(() => rmSync(bare, { recursive: true, force: true }));
cpSync(join(root, "dist"), join(bare, "dist"), { recursive: true });
cpSync(join(root, "package.json"), join(bare, "package.json"));

const run = (args: string[]) =>
  spawnSync(process.execPath, [join(bare, "dist", "cli", "main.js"), ...args], {
    cwd: bare,
    encoding: "utf8",
  });

describe("chart libraries are optional", () => {
  it("package.json lists them as optional dependencies, and the core has no other dependency", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(Object.keys(pkg.optionalDependencies).sort()).toEqual(["@observablehq/plot", "d3"]);
  });

  it("no built module but the report's loader names d3 or Plot", () => {
    const naming = builtFiles(join(root, "dist")).filter((f) =>
      CHART_PACKAGES.test(readFileSync(join(root, "dist", f), "utf8")),
    );
    expect(naming).toEqual([LOADER]);
    // ...and it resolves them at call time, never with a static or top-level import.
    const loader = readFileSync(join(root, "dist", LOADER), "utf8");
    expect(loader).not.toMatch(/^\s*import[^;]*["'](d3|@observablehq\/plot)["']/m);
  });

  it("fp8kit and fp8kit/node import and work without them installed", () => {
    expect(existsSync(join(bare, "node_modules"))).toBe(false);
    const r = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        "const a = await import('fp8kit'); const b = await import('fp8kit/node'); console.log(JSON.stringify([Array.from(a.encode('float8_e4m3fn', [448])), typeof b.openCheckpoint]));",
      ],
      { cwd: bare, encoding: "utf8" },
    );
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual([[0x7e], "function"]);
  });

  it("the CLI runs; report and convert --report exit 2 naming the package to install", () => {
    const formats = run(["formats"]);
    expect(formats.status).toBe(0);
    expect(formats.stdout).toMatch(/^format\s+bits/);
    const inspect = run(["inspect", SAMPLE, "--json"]);
    expect(inspect.status).toBe(0);

    const report = run(["report", SAMPLE, "--out", join(bare, "r.html")]);
    expect(report.status).toBe(2);
    expect(report.stderr).toMatch(/^fp8kit: error: the HTML report needs the optional package .*npm install/);
    expect(existsSync(join(bare, "r.html"))).toBe(false);

    const out = join(bare, "converted");
    const convert = run(["convert", SAMPLE, out, "--to", "bf16", "--report", join(bare, "c.html")]);
    expect(convert.status).toBe(2);
    expect(convert.stderr).toMatch(/npm install (d3|@observablehq\/plot)/);
    expect(existsSync(out)).toBe(false);
  });
});
