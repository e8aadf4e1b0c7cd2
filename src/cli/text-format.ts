/** Plain-text helpers the commands print with (no colours, width-stable). */

export { formatBytes } from "../safetensors/index.js";

/** A count with a B/M/k suffix: 671.0B parameters. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** A fraction as a percentage with three significant digits. */
export function formatPercent(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toPrecision(3)}%` : String(x);
}

/** Left-aligned columns separated by two spaces; `right` lists columns to right-align. */
export function formatTable(rows: readonly (readonly string[])[], right: readonly number[] = []): string {
  const widths: number[] = [];
  for (const r of rows) {
    for (let i = 0; i < r.length; i++) widths[i] = Math.max(widths[i] ?? 0, r[i].length);
  }
  // Padding the last column too is harmless: trimEnd removes it.
  const cell = (c: string, i: number) => (right.includes(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]));
  return rows.map((r) => r.map(cell).join("  ").trimEnd()).join("\n");
}
