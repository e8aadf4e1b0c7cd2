/**
 * The chart libraries of the HTML report, read from node_modules only when a report is written.
 * d3 and Observable Plot are optional dependencies: the codecs, the reader, the converter and the
 * other commands never load them, and a missing one is a `ReportError` naming the package to install.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { ReportError } from "./errors.js";
import type { ChartLibraries } from "./html.js";

/** Each package, and where its UMD bundle lies relative to the entry point `require.resolve` finds. */
const PACKAGES = {
  d3: { name: "d3", bundle: ["d3.min.js"] }, // entry .../d3/dist/d3.mjs
  plot: { name: "@observablehq/plot", bundle: ["..", "dist", "plot.umd.min.js"] }, // entry .../plot/src/index.js
} as const;

let cached: ChartLibraries | null = null;

function readBundle(pkg: { name: string; bundle: readonly string[] }): string {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve(pkg.name);
  } catch (e) {
    throw new ReportError(
      "missing-package",
      `the HTML report needs the optional package ${pkg.name}, which is not installed: run \`npm install ${pkg.name}\``,
      { cause: e },
    );
  }
  return readFileSync(join(dirname(entry), ...pkg.bundle), "utf8");
}

/**
 * The UMD bundles of d3 and Observable Plot from node_modules, read once (the packages' `exports`
 * hide their dist/ files, so each bundle is found next to the package's resolved entry point).
 */
export function loadChartLibraries(): ChartLibraries {
  cached ??= { d3: readBundle(PACKAGES.d3), plot: readBundle(PACKAGES.plot) };
  return cached;
}
