// Node-only entry points of the report layer (file system): the commands on a path.
import {
  type CheckpointDir,
  HttpCheckpointDir,
  isRemoteAddress,
  openRemoteCheckpoint,
  type RemoteOptions,
} from "../safetensors/index.js";
import { NodeCheckpointDir, writeFileAtomic } from "../safetensors/node.js";
import { type AuditOptions, type AuditResult, auditCheckpoint } from "./audit.js";
import type { AuditFileKernel, AuditKernel } from "./audit-kernel.js";
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

/** How the `*Path` functions read a remote address (`https://...`, `hf://org/model`). */
export interface PathOptions {
  remote?: RemoteOptions;
}

/** What reading a remote checkpoint cost: added to the results of the `*Path` functions for remote addresses. */
export interface FetchStats {
  /** HTTP body bytes received. */
  bytesFetched: number;
  /** HTTP requests made (retries included). */
  httpRequests: number;
}

/** A local path through the file system, a remote address (see `isRemoteAddress`) over HTTP. */
async function openPath(path: string, remote: RemoteOptions | undefined): Promise<CheckpointDir> {
  return isRemoteAddress(path) ? openRemoteCheckpoint(path, remote) : NodeCheckpointDir.open(path);
}

/** `result` with the `FetchStats` of the remote `dirs` (unchanged for local ones). */
function withStats<T extends object>(
  result: T,
  ...dirs: (CheckpointDir | undefined)[]
): T & Partial<FetchStats> {
  const remote = dirs.filter((d) => d instanceof HttpCheckpointDir);
  if (remote.length === 0) return result;
  return {
    ...result,
    bytesFetched: remote.reduce((n, d) => n + d.bytesFetched, 0),
    httpRequests: remote.reduce((n, d) => n + d.requests, 0),
  };
}

/**
 * `inspectCheckpoint` on a path (a checkpoint directory, its index file or one `.safetensors`
 * file) or a remote address (a URL of any of those, or `hf://org/model[@revision]`); reads headers,
 * config and index only. This is what `fp8kit inspect` runs.
 */
export async function inspectPath(
  path: string,
  options: InspectOptions & PathOptions = {},
): Promise<InspectResult & Partial<FetchStats>> {
  const { remote, ...rest } = options;
  const dir = await openPath(path, remote);
  return withStats(await inspectCheckpoint(dir, { path, ...rest }), dir);
}

/** `lintCheckpoint` on a path or remote address (see `inspectPath`). This is what `fp8kit lint` runs. */
export async function lintPath(
  path: string,
  options: LintOptions & PathOptions = {},
): Promise<LintResult & Partial<FetchStats>> {
  const { remote, ...rest } = options;
  const dir = await openPath(path, remote);
  return withStats(await lintCheckpoint(dir, { path, ...rest }), dir);
}

/**
 * `auditCheckpoint` on a path or remote address (see `inspectPath`), measuring tensors in `workers`
 * worker threads, each reading its own tensors (default: one per core, at most 8; 0 measures in
 * this thread, as `convert --workers 0` converts in-process). This is what `fp8kit audit` runs.
 */
export async function auditPath(
  path: string,
  options: Omit<AuditOptions, "kernel" | "concurrency"> & { workers?: number } & PathOptions = {},
): Promise<AuditResult & Partial<FetchStats>> {
  const { workers = defaultAuditThreads(), remote, ...rest } = options;
  const dir = await openPath(path, remote);
  // Sample mode reads a few blocks at a time: no tensor is worth sending to a worker.
  const r = await withPool(options.sample ? 0 : workers, (pool) =>
    auditCheckpoint(dir, { path, ...rest, ...pool }),
  );
  return withStats(r, dir);
}

/** Runs `run` with an audit pool of `workers` threads (none for 0), closed afterwards. */
async function withPool<T>(
  workers: number,
  run: (pool: { kernel?: AuditKernel; fileKernel?: AuditFileKernel; concurrency?: number }) => Promise<T>,
): Promise<T> {
  const pool = workers >= 1 ? createAuditPool(Math.floor(workers)) : null;
  try {
    return await run({ kernel: pool?.kernel, fileKernel: pool?.fileKernel, concurrency: pool?.concurrency });
  } finally {
    await pool?.close();
  }
}

/** What `writeReport` wrote. */
export interface WriteReportResult {
  out: string;
  bytes: number;
  /** The report data, with `FetchStats` when a checkpoint was remote. */
  data: ReportData & Partial<FetchStats>;
}

/**
 * Writes the self-contained HTML report of checkpoint `path` (optionally against `against`) to
 * `out` (atomically: a temporary file renamed into place). The audit runs in `workers` worker
 * threads (0, the default: in this thread). This is what `fp8kit report` runs, and
 * `convert --report` with the output as `path` and the input as `against`. Needs the optional
 * packages d3 and @observablehq/plot (a `ReportError` "missing-package" names the one missing).
 */
export async function writeReport(
  path: string,
  out: string,
  options: Omit<ReportOptions, "against" | "kernel" | "concurrency"> & {
    against?: string;
    workers?: number;
  } & PathOptions = {},
): Promise<WriteReportResult> {
  const { workers = 0, remote, ...rest } = options;
  const libraries = loadChartLibraries();
  const dir = await openPath(path, remote);
  const against = options.against ? await openPath(options.against, remote) : undefined;
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
  return { out, bytes: Buffer.byteLength(html), data: withStats(data, dir, against) };
}
