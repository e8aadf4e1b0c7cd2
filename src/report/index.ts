// Browser-safe API of the report layer: what src/index.ts, the CLI and the tests use.

export { measureTensor } from "../quant/kernels/requant-measure.js";
export {
  type AuditOptions,
  type AuditResult,
  auditCheckpoint,
  type RequantReport,
  type ScaleException,
  type TensorAudit,
} from "./audit.js";
export { compatibility, targetLabel } from "./compat.js";
export { ReportError, type ReportErrorCode } from "./errors.js";
export type { Finding, FindingCode, Severity } from "./findings.js";
export { COMPARE_FORMAT_NAMES, type CompareFormat, type FormatComparison } from "./format-compare.js";
export { type ChartLibraries, renderReportHtml } from "./html.js";
export { type InspectOptions, type InspectResult, inspectCheckpoint, type TensorRow } from "./inspect.js";
export { detectReportLayout, type ReportLayout, type ReportQuantizedWeight } from "./layout.js";
export { type LintOptions, type LintResult, lintCheckpoint } from "./lint.js";
export { summarizeConfig } from "./model-config.js";
export { buildReportData, type ReportData, type ReportOptions } from "./report-data.js";
export { bootstrapRelError } from "./sampling.js";
export { checkTpSplits, parallelStyle } from "./tp-split.js";
