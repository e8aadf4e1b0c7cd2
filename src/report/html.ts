import { CHARTS_PAGE_SCRIPT } from "./charts-page.js";
import type { ReportData } from "./report-data.js";

/** The chart library sources inlined into the page (UMD bundles, read by the caller). */
export interface ChartLibraries {
  d3: string;
  plot: string;
}

const escapeHtml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** JSON safe inside a `<script>` element (no `</script>`, no `<!--`). */
function inlineJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

const inlineScript = (js: string) => js.replace(/<\/script/gi, "<\\/script");

const pct = (x: number) => `${(x * 100).toPrecision(3)}%`;

function summaryRows(d: ReportData): string {
  const rows: [string, string][] = [
    ["Checkpoint", d.path],
    ["Layout", d.layout],
  ];
  if (d.against) rows.push(["Compared against", d.against]);
  const a = d.audit;
  if (a) {
    rows.push([
      "Scales",
      `${a.scales} in ${a.scaleTensors} tensors; ${a.nonPowerOfTwoScales} not a power of two (${a.nonPowerOfTwoTensors} tensors)`,
    ]);
    if (a.requant) {
      const sq = a.requant.sqnrDb === null ? "exact" : `SQNR ${a.requant.sqnrDb.toFixed(1)} dB`;
      rows.push([
        "UE8M0 requantization",
        `${pct(a.requant.relFrobenius)} relative error, ${sq}, ${a.requant.changedBlocks} of ${a.requant.blocks} blocks change scale`,
      ]);
    }
  }
  const c = d.codeStats;
  if (c.total > 0) {
    rows.push([
      "E4M3 codes",
      `${c.total} elements: ${pct(c.zero / c.total)} zero, ${pct(c.subnormal / c.total)} subnormal, ${pct(c.saturated / c.total)} at 448, ${c.binadesUsed} of 16 binades used`,
    ]);
  }
  return rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join("\n");
}

function formatTable(d: ReportData): string {
  if (d.formats.length === 0) return "";
  const head =
    "<tr><th>Tensor</th><th>Format</th><th>Rel. error</th><th>SQNR</th><th>Cosine</th><th>Max abs err</th><th>Saturated</th><th>Flushed</th></tr>";
  const body = d.formats
    .map((f) =>
      f.error !== null
        ? `<tr><td>${escapeHtml(f.tensor)}</td><td>${escapeHtml(f.label)}</td><td colspan="6">${escapeHtml(f.error)}</td></tr>`
        : `<tr><td>${escapeHtml(f.tensor)}</td><td>${escapeHtml(f.label)}</td><td>${pct(f.relError)}</td><td>${f.sqnrDb === null ? "exact" : `${f.sqnrDb.toFixed(1)} dB`}</td><td>${f.cosine.toFixed(6)}</td><td>${f.maxAbsError.toPrecision(3)}</td><td>${f.saturated}</td><td>${f.flushed}</td></tr>`,
    )
    .join("\n");
  return `<table class="formats">${head}\n${body}</table>`;
}

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1b1b1b; background: #fff; }
h1 { font-size: 20px; margin: 0 0 12px; } h2 { font-size: 16px; margin: 28px 0 4px; }
p.what { margin: 0 0 8px; color: #555; max-width: 900px; }
table { border-collapse: collapse; margin: 8px 0 16px; } th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid #e4e4e4; vertical-align: top; }
table.summary th { color: #555; font-weight: 600; white-space: nowrap; }
table.formats td:nth-child(n+3) { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0 0 12px; } .empty { color: #777; font-style: italic; }
ul.notes { color: #555; } footer { margin-top: 32px; color: #888; font-size: 12px; }
`;

/**
 * One self-contained HTML page: the summary, four charts drawn with Observable Plot at load (per-layer
 * error, scale exponents, E4M3 code use, format comparison), the format table and notes. `libs` are
 * the d3 and Plot UMD bundles, inlined, so the file opens offline from file://.
 */
export function renderReportHtml(d: ReportData, libs: ChartLibraries): string {
  const figure = (id: string, title: string, what: string) =>
    `<h2>${escapeHtml(title)}</h2><p class="what">${escapeHtml(what)}</p><figure data-chart="${id}"><div class="chart"></div></figure>`;
  const notes = d.notes.length
    ? `<h2>Notes</h2><ul class="notes">${d.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>`
    : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(d.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(d.title)}</h1>
<table class="summary">${summaryRows(d)}</table>
${figure("layers", "Error per layer", `Each dot is one tensor, the line the per-layer RMS: ${d.errorKind}.`)}
${figure("scales", "Scale exponents", "floor(log2 s) of every block scale; red bars are scales that are not exact powers of two (they change under UE8M0).")}
${figure("codes", "E4M3 code use", "How the stored E4M3 codes spread over the range: zeros, subnormals, normal binades, and codes at the 448 maximum (saturated).")}
${figure("formats", "Error by format", "The error each format would give on the chosen tensors (dequantized checkpoint values as reference), side by side. The checkpoint's own format reproduces it exactly (0%); the others show what converting would add.")}
${formatTable(d)}
${notes}
<footer>Generated by fp8kit. Charts: Observable Plot (inlined); no network access needed.</footer>
<script type="application/json" id="fp8kit-data">${inlineJson(d)}</script>
<script>${inlineScript(libs.d3)}</script>
<script>${inlineScript(libs.plot)}</script>
<script>${inlineScript(CHARTS_PAGE_SCRIPT)}</script>
</body>
</html>
`;
}
