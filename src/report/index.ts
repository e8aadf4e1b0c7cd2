// Browser-safe public API of the report layer (inspect, lint, audit, HTML report).

export {
  BlockRequantizer,
  measureTensor,
  type TensorJob,
  type TensorJobResult,
} from "../quant/kernels/requant-measure.js";
export type { CheckpointDir } from "../safetensors/index.js";
export {
  type AuditHistograms,
  type AuditOptions,
  type AuditResult,
  auditCheckpoint,
  auditSnapshot,
  newHistograms,
  type RequantReport,
  type ScaleException,
  type TensorAudit,
  UE8M0_RULE,
} from "./audit.js";
export { type AuditKernel, inThreadKernel } from "./audit-kernel.js";
export {
  type CompatEntry,
  type CompatStatus,
  compatibility,
  TARGETS,
  type Target,
  targetLabel,
} from "./compat.js";
export { ReportError, type ReportErrorCode } from "./errors.js";
export { countFindings, type Finding, type FindingCode, type Severity } from "./findings.js";
export {
  COMPARE_FORMAT_NAMES,
  COMPARE_FORMATS,
  type CompareFormat,
  compareFormats,
  errorSummary,
  type FormatComparison,
} from "./format-compare.js";
export { type ChartLibraries, renderReportHtml } from "./html.js";
export {
  type InspectOptions,
  type InspectResult,
  inspectCheckpoint,
  inspectSnapshot,
  layoutOf,
  type TensorRow,
} from "./inspect.js";
export {
  detectReportLayout,
  isScaleTensor,
  type ReportLayout,
  type ReportLayoutKind,
  type ReportQuantizedWeight,
} from "./layout.js";
export { type LintOptions, type LintResult, lintCheckpoint } from "./lint.js";
export {
  type ArchitectureSummary,
  type SizeSummary,
  summarizeConfig,
  summarizeSizes,
} from "./model-config.js";
export { buildReportData, type ReportData, type ReportOptions } from "./report-data.js";
export { bootstrapRelError, type Interval } from "./sampling.js";
export { readSnapshot, type Snapshot, type SnapshotTensor, throwIfFatal } from "./snapshot.js";
export {
  checkTpSplits,
  parallelStyle,
  TP_SIZES,
  type TpSplitProblem,
  type TpSplitResult,
} from "./tp-split.js";
