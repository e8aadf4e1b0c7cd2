/**
 * The quantization grid of one block under each scale rule: a block of 32 numbers (typed or
 * randomized) is quantized with `quantize` under every rule of `scaleRules` and decoded with
 * `dequantize`; the grid each rule's scale puts on the number line is the dequantized value of every
 * code under that scale (the same `dequantize`, on a tensor holding each code once).
 */

import { formatPercent } from "../../src/cli/text-format.js";
import {
  type ByteFormatName,
  dequantize,
  errorMetrics,
  type FormatName,
  formatInfo,
  packFp4,
  type QuantizedTensor,
  quantize,
  RULE_NAMES,
  type RuleName,
  type Scheme,
  scaleRules,
} from "../../src/index.js";
import { h, messageOf } from "./dom.js";
import { codeOf, formatValue, SHORT_NAMES } from "./formats.js";

export const BLOCK = 32;

/** Element formats a block can hold (signed, at most 8 bits). */
const ELEMENTS: ByteFormatName[] = [
  "float8_e4m3fn",
  "float8_e5m2",
  "float6_e2m3fn",
  "float6_e3m2fn",
  "float4_e2m1fn",
  "hifloat8",
];

/** One rule's result on the block. */
export interface RuleResult {
  rule: RuleName;
  scale: number;
  dequantized: Float32Array;
  /** Every finite value the block can take under this scale. */
  grid: number[];
  relError: number;
  sqnrDb: number;
  saturated: number;
  flushed: number;
}

const schemeFor = (element: FormatName, rule: RuleName): Scheme => ({
  element,
  block: [1, BLOCK],
  scale: rule === "nvfp4" ? "e4m3" : "f32",
  rule,
});

/** Every code of the element format, dequantized under the block's scale (one tensor of codeCount elements). */
function gridOf(q: QuantizedTensor): Float32Array {
  const { codeCount, bits } = formatInfo(q.scheme.element);
  const codes = Uint8Array.from({ length: codeCount }, (_, c) => c);
  return dequantize({
    ...q,
    data: bits === 4 ? packFp4(codes) : codes,
    shape: [1, codeCount],
    scheme: { ...q.scheme, block: [1, codeCount] },
    scales: q.scales.slice(0, 1),
    scaleShape: [1, 1],
  }) as Float32Array;
}

/** Quantizes `x` (one block) under `rule`; throws the library's error when the rule refuses. */
export function quantizeBlock(x: Float32Array, element: FormatName, rule: RuleName): RuleResult {
  const q = quantize(x, [1, x.length], schemeFor(element, rule));
  const y = dequantize(q) as Float32Array;
  const gridAll = gridOf(q);
  const one = codeOf(element, 1, true);
  const scale = gridAll[one];
  const max = formatInfo(element).max * scale;
  const m = errorMetrics(x, y);
  let saturated = 0;
  let flushed = 0;
  for (let i = 0; i < x.length; i++) {
    if (Math.abs(y[i]) === max && Math.abs(x[i]) > max) saturated++;
    if (y[i] === 0 && x[i] !== 0) flushed++;
  }
  const grid = [...new Set(Array.from(gridAll).filter(Number.isFinite))].sort((a, b) => a - b);
  return {
    rule,
    scale,
    dequantized: y,
    grid,
    relError: m.relativeFrobenius,
    sqnrDb: m.sqnrDb,
    saturated,
    flushed,
  };
}

/** A random block: mostly small Gaussian values with a few outliers, as weights look. */
export function randomBlock(): Float32Array {
  const gauss = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  const sigma = 10 ** (-3 + 3 * Math.random());
  return Float32Array.from({ length: BLOCK }, () => gauss() * sigma * (Math.random() < 0.06 ? 8 : 1));
}

type PlotModule = typeof import("@observablehq/plot");

/** Draws the grid of each rule (ticks), the block (hollow dots) and where each value lands (dots). */
function plotBlock(Plot: PlotModule, x: Float32Array, results: RuleResult[], width: number): Element {
  const amax = Math.max(...Array.from(x, Math.abs), 1e-30);
  const lim = amax * 1.15;
  const grid = results.flatMap((r) =>
    r.grid.filter((g) => Math.abs(g) <= lim).map((g) => ({ rule: r.rule, g })),
  );
  const input = results.flatMap((r) => Array.from(x, (v) => ({ rule: r.rule, v })));
  const landed = results.flatMap((r) => Array.from(r.dequantized, (v, i) => ({ rule: r.rule, v, x: x[i] })));
  return Plot.plot({
    width,
    height: 40 + 42 * results.length,
    marginLeft: 80,
    x: { label: "value", domain: [-lim, lim], grid: false },
    fy: { label: null, domain: results.map((r) => r.rule) },
    marks: [
      Plot.tickX(grid, { x: "g", fy: "rule", stroke: "#c8c8c8" }),
      Plot.dot(input, { x: "v", fy: "rule", stroke: "#333", r: 3.5 }),
      Plot.dot(landed, {
        x: (d) => (Number.isFinite(d.v) ? Math.max(-lim, Math.min(lim, d.v)) : Number.NaN),
        fy: "rule",
        fill: "#e15759",
        r: 2,
        tip: true,
        title: (d) => `${formatValue(d.x)} -> ${formatValue(d.v)}`,
      }),
      Plot.ruleX([0], { stroke: "#999" }),
    ],
  });
}

/** The block editor, its plot and a table of each rule's scale and error. */
export function blockGrid(loadPlot: () => Promise<PlotModule>): HTMLElement {
  const element = h(
    "select",
    { "data-testid": "block-element" },
    ...ELEMENTS.map((f) => h("option", { value: f }, `${SHORT_NAMES[f]} (${f})`)),
  );
  const input = h("textarea", { rows: 3, cols: 100, "data-testid": "block-input", spellcheck: false });
  const randomize = h("button", { type: "button", "data-testid": "block-randomize" }, "Randomize");
  const note = h("p", { class: "note", "data-testid": "block-note" });
  const plot = h("div", { "data-testid": "block-plot", class: "plot" });
  const body = h("tbody");
  let drawn = 0;
  const render = async () => {
    const mine = ++drawn;
    const values = input.value
      .split(/[\s,;]+/)
      .filter(Boolean)
      .map(Number);
    if (values.length === 0 || values.some((v) => Number.isNaN(v))) {
      note.textContent = "type numbers separated by spaces or commas";
      return;
    }
    const x = Float32Array.from(values.slice(0, BLOCK));
    note.textContent =
      values.length === BLOCK
        ? `block of ${BLOCK}, amax ${formatValue(Math.max(...Array.from(x, Math.abs)))}`
        : `${values.length} numbers: using ${x.length} as one block`;
    const f = element.value as FormatName;
    const results: RuleResult[] = [];
    body.replaceChildren();
    for (const rule of RULE_NAMES) {
      try {
        const r = quantizeBlock(x, f, rule);
        results.push(r);
        body.append(
          h(
            "tr",
            { "data-rule": rule },
            h("td", { title: scaleRules[rule].source }, rule),
            h("td", { class: "num" }, formatValue(r.scale)),
            h("td", {}, scaleRules[rule].powerOfTwo ? "yes" : "no"),
            h("td", { class: "num" }, formatPercent(r.relError)),
            h("td", { class: "num" }, Number.isFinite(r.sqnrDb) ? `${r.sqnrDb.toFixed(1)} dB` : "exact"),
            h("td", { class: "num" }, r.saturated),
            h("td", { class: "num" }, r.flushed),
          ),
        );
      } catch (e) {
        body.append(h("tr", { "data-rule": rule }, h("td", {}, rule), h("td", { colspan: 6 }, messageOf(e))));
      }
    }
    const Plot = await loadPlot();
    if (mine !== drawn) return;
    plot.replaceChildren(plotBlock(Plot, x, results, Math.min(1100, Math.max(600, plot.clientWidth || 900))));
    plot.setAttribute("data-drawn", "yes");
  };
  const randomizeBlock = () => {
    input.value = Array.from(randomBlock(), (v) => v.toPrecision(4)).join(" ");
    void render();
  };
  input.addEventListener("change", () => void render());
  element.addEventListener("change", () => void render());
  randomize.addEventListener("click", randomizeBlock);
  randomizeBlock();
  return h(
    "div",
    {},
    h("p", { class: "controls" }, h("label", {}, "Element format ", element), " ", randomize),
    input,
    note,
    plot,
    h(
      "table",
      { "data-testid": "block-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Rule", "Scale", "Power of two", "Rel. error", "SQNR", "Saturated", "Flushed to 0"].map((t) =>
            h("th", {}, t),
          ),
        ),
      ),
      body,
    ),
  );
}
