// Node-only entry points of the report layer (file system); re-exported from src/node.ts.
import { readFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { type AuditOptions, type AuditResult, auditCheckpoint } from "./audit.js";
import { createAuditPool, defaultAuditThreads } from "./audit-pool-node.js";
import { NodeCheckpointDir } from "./checkpoint-dir-node.js";
import { type ChartLibraries, renderReportHtml } from "./html.js";
import { buildReportData, type ReportData, type ReportOptions } from "./report-data.js";

export { type AuditPool, createAuditPool, defaultAuditThreads } from "./audit-pool-node.js";
export { NodeCheckpointDir } from "./checkpoint-dir-node.js";

let libs: ChartLibraries | null = null;

/**
 * The UMD bundles of d3 and Observable Plot from node_modules (the packages' `exports` hide their
 * dist/ files, so the bundles are found next to each package's resolved entry point).
 */
export function loadChartLibraries(): ChartLibraries {
  if (libs) return libs;
  const require = createRequire(import.meta.url);
  const d3Entry = require.resolve("d3"); // .../d3/dist/d3.mjs
  const plotEntry = require.resolve("@observablehq/plot"); // .../plot/src/index.js
  libs = {
    d3: readFileSync(join(dirname(d3Entry), "d3.min.js"), "utf8"),
    plot: readFileSync(join(dirname(plotEntry), "..", "dist", "plot.umd.min.js"), "utf8"),
  };
  return libs;
}

/** What `writeReport` wrote. */
export interface WriteReportResult {
  out: string;
  bytes: number;
  data: ReportData;
}

/**
 * Writes the self-contained HTML report of checkpoint `path` (optionally against `against`) to
 * `out` (atomically: a temporary file renamed into place). This is what `fp8kit report` runs; the
 * convert command can call it for `convert --report` with the output as `path` and the input as
 * `against`.
 */
export async function writeReport(
  path: string,
  out: string,
  options: Omit<ReportOptions, "against" | "kernel" | "concurrency"> & {
    against?: string;
    threads?: number;
  } = {},
): Promise<WriteReportResult> {
  const dir = await NodeCheckpointDir.open(path);
  const against = options.against ? await NodeCheckpointDir.open(options.against) : undefined;
  const pool = (options.threads ?? 0) > 1 ? createAuditPool(options.threads) : null;
  let data: ReportData;
  try {
    data = await buildReportData(dir, {
      ...options,
      path: options.path ?? path,
      against,
      againstPath: options.against,
      kernel: pool?.kernel,
      concurrency: pool?.concurrency,
    });
  } finally {
    await pool?.close();
  }
  const html = renderReportHtml(data, loadChartLibraries());
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}`);
  await writeFile(tmp, html, "utf8");
  await rename(tmp, out);
  return { out, bytes: Buffer.byteLength(html), data };
}

/**
 * `auditCheckpoint` on a path, measuring tensors in `threads` worker threads (default: cores less
 * one, at most 8; 1 measures in this thread). This is what `fp8kit audit` runs.
 */
export async function auditPath(
  path: string,
  options: Omit<AuditOptions, "kernel" | "concurrency"> & { threads?: number } = {},
): Promise<AuditResult> {
  const dir = await NodeCheckpointDir.open(path);
  const threads = options.threads ?? defaultAuditThreads();
  const pool = threads > 1 && !options.sample ? createAuditPool(threads) : null;
  try {
    return await auditCheckpoint(dir, { ...options, kernel: pool?.kernel, concurrency: pool?.concurrency });
  } finally {
    await pool?.close();
  }
}
