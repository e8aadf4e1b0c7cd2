/**
 * Findings: what `lint` (and the readers under `inspect`, `audit` and `report`) found wrong with a
 * checkpoint. Every finding names the file and, where there is one, the tensor, says what is wrong
 * in one line and how to fix it in another, so a script can group them and a person can act on them.
 */

/** `error`: the checkpoint will not load or loads wrongly; `warning`: it loads but something is off. */
export type Severity = "error" | "warning";

/** Stable, machine-readable finding codes (documented in docs/REPORT.md). */
export type FindingCode =
  | "unreadable-file"
  | "bad-header"
  | "no-safetensors"
  | "bad-config"
  | "bad-index"
  | "index-missing-tensor"
  | "index-extra-tensor"
  | "index-wrong-shard"
  | "index-missing-shard"
  | "unindexed-shard"
  | "index-total-size"
  | "duplicate-tensor"
  | "missing-scale"
  | "duplicate-scale"
  | "orphan-scale"
  | "scale-grid"
  | "scale-dtype"
  | "scale-nan"
  | "scale-inf"
  | "scale-zero"
  | "scale-negative"
  | "scale-overflow"
  | "scale-subnormal"
  | "config-mismatch"
  | "weight-shape"
  | "mixed-layouts"
  | "metadata-format"
  | "bad-description"
  | "description-missing-entry"
  | "description-extra-entry"
  | "description-mismatch"
  | "ascend-unsupported";

/** One thing wrong with a checkpoint. */
export interface Finding {
  severity: Severity;
  code: FindingCode;
  /** File the finding is about, relative to the checkpoint directory. */
  file: string;
  /** Tensor the finding is about, or null. */
  tensor: string | null;
  /** What is wrong, one line. */
  message: string;
  /** How to fix it, one line. */
  fix: string;
}

/** Builds a finding (keeps call sites on one line). */
export function finding(
  severity: Severity,
  code: FindingCode,
  file: string,
  tensor: string | null,
  message: string,
  fix: string,
): Finding {
  return { severity, code, file, tensor, message, fix };
}

/** Number of findings of each severity. */
export function countFindings(findings: readonly Finding[]): { errors: number; warnings: number } {
  const errors = findings.filter((f) => f.severity === "error").length;
  return { errors, warnings: findings.length - errors };
}
