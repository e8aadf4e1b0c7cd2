// Node-only entry points of the report layer (file system): the commands on a path.
import { NodeCheckpointDir, writeFileAtomic } from "../safetensors/node.js";
import { type AuditOptions, type AuditResult, auditCheckpoint } from "./audit.js";
import type { AuditKernel } from "./audit-kernel.js";
import { createAuditPool, defaultAuditThreads } from "./audit-pool-node.js";
import { loadChartLibraries } from "./chart-libraries-node.js";
import { ReportError } from "./errors.js";
import { renderReportHtml } from "./html.js";
import { type InspectOptions, type InspectResult, inspectCheckpoint } from "./inspect.js";
import { type LintOptions, type LintResult, lintCheckpoint } from "./lint.js";
import { buildReportData, type ReportData, type ReportOptions } from "./report-data.js";

export { NodeCheckpointDir } from "../safetensors/node.js";
export { type AuditPool, createAuditPool, defaultAuditThreads } from "./audit-pool-node.js";
export { loadChartLibraries } from "./chart-libraries-node.js";

/**
 * `inspectCheckpoint` on a path (a checkpoint directory, its index file or one `.safetensors`
 * file); reads headers, config and index only. This is what `fp8kit inspect` runs.
 */
export async function inspectPath(path: string, options: InspectOptions = {}): Promise<InspectResult> {
  return inspectCheckpoint(await NodeCheckpointDir.open(path), { path, ...options });
}

/** `lintCheckpoint` on a path (see `inspectPath`). This is what `fp8kit lint` runs. */
export async function lintPath(path: string, options: LintOptions = {}): Promise<LintResult> {
  return lintCheckpoint(await NodeCheckpointDir.open(path), { path, ...options });
}

/**
 * `auditCheckpoint` on a path, measuring tensors in `workers` worker threads (default: cores less
 * one, at most 8; 0 or 1 measures in this thread). This is what `fp8kit audit` runs.
 */
export async function auditPath(
  path: string,
  options: Omit<AuditOptions, "kernel" | "concurrency"> & { workers?: number } = {},
): Promise<AuditResult> {
  const { workers = defaultAuditThreads(), ...rest } = options;
  const dir = await NodeCheckpointDir.open(path);
  // Sample mode reads a few blocks at a time: no tensor is worth sending to a worker.
  return withPool(options.sample ? 0 : workers, (pool) => auditCheckpoint(dir, { path, ...rest, ...pool }));
}

/** Runs `run` with an audit pool of `workers` threads (none for 0 or 1), closed afterwards. */
async function withPool<T>(
  workers: number,
  run: (pool: { kernel?: AuditKernel; concurrency?: number }) => Promise<T>,
): Promise<T> {
  const pool = workers > 1 ? createAuditPool(workers) : null;
  try {
    return await run({ kernel: pool?.kernel, concurrency: pool?.concurrency });
  } finally {
    await pool?.close();
  }
}

/** What `writeReport` wrote. */
export interface WriteReportResult {
  out: string;
  bytes: number;
  data: ReportData;
}

/**
 * Writes the self-contained HTML report of checkpoint `path` (optionally against `against`) to
 * `out` (atomically: a temporary file renamed into place). The audit runs in `workers` worker
 * threads (0 or 1, the default: in this thread). This is what `fp8kit report` runs, and
 * `convert --report` with the output as `path` and the input as `against`. Needs the optional
 * packages d3 and @observablehq/plot (a `ReportError` "missing-package" names the one missing).
 */
export async function writeReport(
  path: string,
  out: string,
  options: Omit<ReportOptions, "against" | "kernel" | "concurrency"> & {
    against?: string;
    workers?: number;
  } = {},
): Promise<WriteReportResult> {
  const { workers = 0, ...rest } = options;
  const libraries = loadChartLibraries();
  const dir = await NodeCheckpointDir.open(path);
  const against = options.against ? await NodeCheckpointDir.open(options.against) : undefined;
  const data = await withPool(workers, (pool) =>
    buildReportData(dir, {
      ...rest,
      path: options.path ?? path,
      against,
      againstPath: options.against,
      ...pool,
    }),
  );
  const html = renderReportHtml(data, libraries);
  try {
    await writeFileAtomic(out, html);
  } catch (e) {
    throw new ReportError("write-failed", `${out}: cannot write the report (${(e as Error).message})`, {
      cause: e,
    });
  }
  return { out, bytes: Buffer.byteLength(html), data };
}
