/**
 * The checkpoint view: what `fp8kit inspect`, `lint` and `audit` print, and the HTML report's charts
 * (the report page itself, rendered by `renderReportHtml`, in a frame). Each step runs the library
 * on the opened `CheckpointDir`; remote checkpoints show the bytes each step fetched.
 */

import { formatBytes, formatCount, formatPercent } from "../../src/cli/text-format.js";
import {
  type AuditResult,
  auditCheckpoint,
  buildReportData,
  type InspectResult,
  inspectCheckpoint,
  type LintResult,
  lintCheckpoint,
  renderReportHtml,
} from "../../src/index.js";
import { targetLabel } from "../../src/report/index.js";
import { h, messageOf, summary, table } from "./dom.js";
import type { Opened } from "./open.js";

/** Rows of long tables shown at once (a DeepSeek-V3 checkpoint has about 91,000 tensors). */
const MAX_ROWS = 200;

/** A section with a heading, a status line and a body filled later. */
function section(id: string, title: string) {
  const status = h(
    "p",
    { class: "status", "data-testid": `${id}-status`, "data-state": "waiting" },
    "waiting",
  );
  const body = h("div", { "data-testid": `${id}-body` });
  const el = h("section", { "data-testid": id }, h("h3", {}, title), status, body);
  const set = (state: "loading" | "ready" | "error", text: string) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  return { el, status, body, set };
}

function inspectView(r: InspectResult): HTMLElement[] {
  const a = r.architecture;
  const arch = [
    `${a.architectures.join(", ") || "unknown architecture"}${a.modelType ? ` (${a.modelType})` : ""}`,
    a.hiddenSize ? `hidden ${a.hiddenSize}` : "",
    a.numLayers ? `${a.numLayers} layers` : "",
    a.numExperts ? `MoE ${a.numExperts} experts` : "",
  ].filter(Boolean);
  const l = r.layout;
  const tally = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ×${v}`)
      .join(", ");
  const out: HTMLElement[] = [
    summary("inspect-summary", [
      ["Layout", l.label, "layout-label"],
      ["Declared", l.declared ?? "—"],
      [
        "Quantized weights",
        l.quantizedWeights > 0
          ? `${l.quantizedWeights}; scales ${tally(l.scaleDtypes)}; blocks ${tally(l.blocks)}`
          : "0",
        "quantized-weights",
      ],
      ["Architecture", arch.join(", ")],
      [
        "Parameters",
        `${formatCount(r.sizes.parameters)} (${formatCount(r.sizes.scaleElements)} scale elements not counted)`,
      ],
      ["Tensors", String(r.sizes.tensors), "tensor-count"],
      ["Shards", String(r.shards), "shard-count"],
      ["Tensor bytes", formatBytes(r.sizes.tensorBytes), "tensor-bytes"],
      [
        "By dtype",
        r.sizes.bytesByDtype.map((d) => `${d.dtype} ${formatBytes(d.bytes)} (${d.tensors})`).join(", "),
      ],
      ...(r.ascend ? [["Ascend", r.ascend.label] as [string, string]] : []),
    ]),
    h("h4", {}, "Where it loads"),
    h(
      "table",
      { "data-testid": "compat-table" },
      h(
        "thead",
        {},
        h("tr", {}, ...["Target", "Status", "Tensors", "Why", "Command"].map((t) => h("th", {}, t))),
      ),
      h(
        "tbody",
        {},
        ...r.compatibility.map((c) =>
          h(
            "tr",
            { "data-testid": "compat-row", "data-target": c.target, "data-status": c.status },
            h("td", { title: c.target }, targetLabel(c.target)),
            h("td", { class: `compat-${c.status}` }, c.status),
            h("td", { class: "num" }, c.tensors),
            h("td", {}, c.reason),
            h("td", {}, c.command ? h("code", {}, c.command) : "—"),
          ),
        ),
      ),
    ),
    h("h4", {}, "Tensor parallel (each TP partition divisible by the block)"),
    table(
      "tp-table",
      ["TP", "Splits", "Weights checked", "First problem"],
      r.tensorParallel.map((t) => [
        t.tp,
        t.ok ? "ok" : `${t.problems.length} do not split cleanly`,
        t.checked,
        t.problems[0]
          ? `${t.problems[0].tensor}: dim ${t.problems[0].dim} = ${t.problems[0].size}, /${t.tp} = ${t.problems[0].partition}`
          : "",
      ]),
    ),
  ];
  if (r.problems.length > 0)
    out.push(h("h4", {}, "Problems reading headers"), findingsTable("inspect-problems", r.problems));
  const filter = h("input", {
    type: "search",
    placeholder: "filter tensors",
    "data-testid": "tensor-filter",
  });
  const holder = h("div");
  const draw = () => {
    const q = filter.value.trim();
    const rows = r.tensors.filter((t) => q === "" || t.name.includes(q));
    holder.replaceChildren(
      table(
        "tensor-table",
        ["Tensor", "Dtype", "Shape", "Bytes", "Role", "Scale", "Shard"],
        rows
          .slice(0, MAX_ROWS)
          .map((t) => [
            t.name,
            t.dtype,
            `[${t.shape.join(", ")}]`,
            formatBytes(t.bytes),
            t.role,
            t.scale ?? "",
            t.shard,
          ]),
      ),
      rows.length > MAX_ROWS ? h("p", { class: "note" }, `${MAX_ROWS} of ${rows.length} shown`) : "",
    );
  };
  filter.addEventListener("input", draw);
  draw();
  out.push(h("details", {}, h("summary", {}, `Tensors (${r.tensors.length})`), filter, holder));
  return out;
}

function findingsTable(id: string, findings: LintResult["findings"]): HTMLElement {
  return h(
    "div",
    {},
    table(
      id,
      ["Severity", "Code", "File", "Tensor", "What", "Fix"],
      findings
        .slice(0, MAX_ROWS)
        .map((f) => [
          h("span", { class: `sev-${f.severity}` }, f.severity),
          f.code,
          f.file,
          f.tensor ?? "",
          f.message,
          f.fix,
        ]),
    ),
    findings.length > MAX_ROWS ? h("p", { class: "note" }, `${MAX_ROWS} of ${findings.length} shown`) : "",
  );
}

function lintView(r: LintResult, headersOnly: boolean): HTMLElement[] {
  const c = r.checked;
  return [
    summary("lint-summary", [
      ["Result", r.ok ? "ok" : "errors", "lint-ok"],
      ["Errors / warnings", `${r.errors} / ${r.warnings}`, "lint-counts"],
      [
        "Checked",
        `${c.shards} shards, ${c.tensors} tensors, ${c.quantizedWeights} quantized weights, ${headersOnly ? "headers only (scale values not read)" : `${c.scaleTensorsRead} scale tensors read`}`,
      ],
    ]),
    r.findings.length > 0
      ? findingsTable("lint-findings", r.findings)
      : h("p", { "data-testid": "lint-findings" }, "No findings."),
  ];
}

function auditView(r: AuditResult): HTMLElement[] {
  const s = r.summary;
  const q = s.requant;
  const rows: [string, string, string?][] = [
    [
      "Mode",
      r.mode === "sample" && r.sample
        ? `sample: ${r.sample.blocksPerTensor} blocks per tensor (seed ${r.sample.seed})`
        : "every block",
    ],
    ["Rule", r.rule],
    [
      "Scales",
      `${s.scales} in ${s.scaleTensors} tensors; ${s.nonPowerOfTwoScales} not a power of two (${s.nonPowerOfTwoTensors} tensors)`,
      "audit-scales",
    ],
    ["All powers of two (UE8M0-ready)", s.allPowerOfTwo ? "yes" : "no", "audit-pow2"],
    ["Scale findings", `${s.scaleFindings.errors} errors, ${s.scaleFindings.warnings} warnings`],
  ];
  if (q) {
    rows.push([
      "UE8M0 requantization",
      `${formatPercent(q.relFrobenius)} relative error, ${q.sqnrDb === null ? "exact" : `SQNR ${q.sqnrDb.toFixed(1)} dB`}, ${q.changedBlocks} of ${q.blocks} blocks change scale${q.interval ? ` (95%: ${formatPercent(q.interval.low)}–${formatPercent(q.interval.high)})` : ""}`,
      "audit-requant",
    ]);
  }
  const worst = [...r.tensors].sort(
    (a, b) => (b.requant?.relFrobenius ?? -1) - (a.requant?.relFrobenius ?? -1),
  );
  return [
    summary("audit-summary", rows),
    h(
      "details",
      {},
      h("summary", {}, `Per tensor (${r.tensors.length}, largest requantization error first)`),
      table(
        "audit-tensors",
        ["Weight", "Scale dtype", "Block", "Scales not 2^k", "Requant error", "Note"],
        worst
          .slice(0, MAX_ROWS)
          .map((t) => [
            t.weight,
            t.scaleDtype,
            t.block.join("×"),
            `${t.scales.nonPowerOfTwo} of ${t.scales.count}`,
            t.requant ? formatPercent(t.requant.relFrobenius) : "—",
            t.note ?? "",
          ]),
      ),
    ),
  ];
}

/** Blocks per tensor a remote audit samples by default (each block is one Range request per row). */
const REMOTE_SAMPLE = 2;

/**
 * Runs inspect and lint into `root`, then the audit and the report: at once for local files (every
 * block), on request for an address (sampled blocks; the report's format comparison reads whole
 * tensors). `current` says whether this checkpoint is still the one on screen (a newer open makes
 * an older run stop writing).
 */
export async function showCheckpoint(
  root: HTMLElement,
  opened: Opened,
  current: () => boolean,
): Promise<void> {
  const { dir, address } = opened;
  const remote = address !== null;
  const path = address ?? dir.name;
  const fetched = h("p", { class: "note", "data-testid": "bytes-fetched" });
  const updateFetched = () => {
    const f = opened.fetched();
    if (f) fetched.textContent = `Fetched so far: ${formatBytes(f.bytes)} in ${f.requests} requests.`;
  };
  const inspect = section("inspect", "Inspect: layout, sizes, compatibility");
  const lint = section("lint", "Lint");
  const audit = section("audit", "Audit: scales and UE8M0 requantization");
  const report = section("report", "Report charts");
  const sampleInput = h("input", {
    type: "number",
    min: 0,
    size: 6,
    value: remote ? REMOTE_SAMPLE : "",
    placeholder: "every block",
    "data-testid": "audit-sample",
  });
  const filterInput = h("input", {
    type: "text",
    size: 28,
    placeholder: "all quantized weights",
    "data-testid": "audit-filter",
  });
  const auditButton = h("button", { type: "button", "data-testid": "audit-run" }, "Audit");
  const reportButton = h("button", { type: "button", "data-testid": "report-draw" }, "Draw the charts");
  audit.status.before(
    h(
      "p",
      { class: "controls" },
      h("label", {}, "Blocks per tensor ", sampleInput),
      h("span", { class: "note" }, " (empty or 0: every block) "),
      h("label", {}, "Weights ", filterInput),
      h("span", { class: "note" }, " (globs, comma-separated: model.layers.0.**) "),
      auditButton,
    ),
  );
  report.status.before(
    h(
      "p",
      { class: "controls" },
      reportButton,
      h(
        "span",
        { class: "note" },
        " audits as above, then compares formats on up to 3 whole tensors (read in full).",
      ),
    ),
  );
  root.replaceChildren(
    h("h2", { "data-testid": "checkpoint-name" }, path),
    h(
      "p",
      { class: "note" },
      remote
        ? "Read over HTTP with Range requests: headers, index and config for inspect and lint; the sampled blocks for the audit."
        : "Read from your disk through File slices; nothing is uploaded.",
    ),
    fetched,
    inspect.el,
    lint.el,
    audit.el,
    report.el,
  );
  root.dataset.state = "loading";
  const sample = () => Math.max(0, Math.floor(Number(sampleInput.value) || 0)) || undefined;
  const filter = () =>
    filterInput.value
      .split(",")
      .map((g) => g.trim())
      .filter(Boolean);
  const step = async <T>(
    s: ReturnType<typeof section>,
    what: string,
    run: () => Promise<T>,
    view: (r: T) => Node[],
  ) => {
    s.set("loading", `${what}…`);
    const ticking = remote ? setInterval(() => current() && updateFetched(), 500) : undefined;
    try {
      const r = await run();
      if (!current()) return false;
      s.body.replaceChildren(...view(r));
      s.set("ready", "done");
      return true;
    } catch (e) {
      if (current()) s.set("error", messageOf(e));
      return false;
    } finally {
      clearInterval(ticking);
      if (current()) updateFetched();
    }
  };
  const runAudit = () =>
    step(
      audit,
      "auditing",
      () => auditCheckpoint(dir, { path, sample: sample(), filter: filter() }),
      auditView,
    );
  const drawReport = () =>
    step(
      report,
      "auditing and drawing",
      () => reportFrame(opened, sample()),
      (f) => [f],
    );
  auditButton.addEventListener("click", () => void runAudit());
  reportButton.addEventListener("click", () => void drawReport());

  const ok = await step(inspect, "reading headers", () => inspectCheckpoint(dir, { path }), inspectView);
  if (ok)
    await step(
      lint,
      "linting",
      () => lintCheckpoint(dir, { path, headersOnly: remote }),
      (r) => lintView(r, remote),
    );
  if (!current()) return;
  if (!ok) {
    root.dataset.state = "error";
    for (const s of [lint, audit, report]) s.set("error", "not run: the checkpoint could not be read");
    auditButton.disabled = true;
    reportButton.disabled = true;
    return;
  }
  if (remote) {
    audit.set("ready", "not run yet: each sampled block costs one Range request per row");
    report.set("ready", "not drawn yet");
  } else {
    await runAudit();
    if (current()) await drawReport();
  }
  if (current()) root.dataset.state = "ready";
}

/** The report page in a frame: `buildReportData`, then `renderReportHtml` with the inlined chart libraries. */
async function reportFrame(opened: Opened, sample: number | undefined): Promise<HTMLIFrameElement> {
  const path = opened.address ?? opened.dir.name;
  const [data, libs] = await Promise.all([
    buildReportData(opened.dir, { path, sample }),
    import("virtual:fp8kit-chart-libraries"),
  ]);
  const frame = h("iframe", { "data-testid": "report-frame", title: "fp8kit report", class: "report" });
  frame.addEventListener("load", () => {
    const doc = frame.contentDocument;
    if (doc) frame.style.height = `${doc.documentElement.scrollHeight + 16}px`;
  });
  frame.srcdoc = renderReportHtml(data, { d3: libs.d3, plot: libs.plot });
  return frame;
}
