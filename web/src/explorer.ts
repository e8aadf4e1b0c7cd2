/**
 * The format explorer: a value's code, bits and neighbours in every format, and the code table of
 * one byte format (every code with its value, which the web test compares with `decode` in Node).
 */

import { formatPercent } from "../../src/cli/text-format.js";
import { FORMAT_NAMES, type FormatName, formatInfo } from "../../src/index.js";
import { h } from "./dom.js";
import {
  BYTE_FORMATS,
  bitFields,
  codeHex,
  codeOf,
  decodeCode,
  float32Hex,
  formatValue,
  neighbours,
  parseValue,
  SHORT_NAMES,
} from "./formats.js";

/** A code's bits, one coloured span per field. */
function bitsOf(format: FormatName, code: number): HTMLElement {
  return h(
    "span",
    { class: "bits" },
    ...bitFields(format, code).map((f) => h("span", { class: `bit-${f.kind}`, title: f.kind }, f.bits)),
  );
}

function formatCell(f: FormatName): HTMLElement {
  return h("span", { title: `${f} (${formatInfo(f).bits} bits)` }, SHORT_NAMES[f]);
}

/** The row of one format for value `x`. */
function valueRow(f: FormatName, x: number, saturate: boolean): HTMLTableRowElement {
  const code = codeOf(f, x, saturate);
  const v = decodeCode(f, code);
  const n = neighbours(f, v);
  const err = Number.isFinite(v) && Number.isFinite(x) ? v - x : Number.NaN;
  const rel = x !== 0 && Number.isFinite(err) ? Math.abs(err / x) : Number.NaN;
  const side = (s: { code: number; value: number } | null) =>
    s ? h("span", {}, formatValue(s.value), h("small", {}, ` ${codeHex(f, s.code)}`)) : "—";
  return h(
    "tr",
    { "data-format": f, "data-code": code },
    h("td", {}, formatCell(f)),
    h("td", { class: "mono" }, codeHex(f, code)),
    h("td", { class: "mono" }, bitsOf(f, code)),
    h("td", { class: "num", "data-testid": "explorer-value" }, formatValue(v)),
    h("td", { class: "num" }, Number.isNaN(rel) ? "" : rel === 0 ? "exact" : formatPercent(rel)),
    h("td", { class: "num" }, side(n.below)),
    h("td", { class: "num" }, side(n.above)),
  );
}

/** The value explorer: an input and one row per format. */
function valueExplorer(): HTMLElement {
  const input = h("input", { type: "text", value: "0.3", "data-testid": "explorer-input", size: 16 });
  const sat = h("input", { type: "checkbox", "data-testid": "explorer-saturate" });
  const note = h("span", { class: "note", "data-testid": "explorer-note" });
  const body = h("tbody");
  const render = () => {
    const x = parseValue(input.value);
    body.replaceChildren();
    if (x === null) {
      note.textContent = "not a number";
      return;
    }
    note.textContent = `float64 ${formatValue(x)}`;
    for (const f of FORMAT_NAMES) body.append(valueRow(f, x, sat.checked));
  };
  input.addEventListener("input", render);
  sat.addEventListener("change", render);
  render();
  return h(
    "div",
    {},
    h(
      "p",
      { class: "controls" },
      h("label", {}, "Value ", input),
      " ",
      h("label", {}, sat, " saturate (clamp to ±max instead of Inf/NaN)"),
      " ",
      note,
    ),
    h(
      "table",
      { "data-testid": "explorer-table", class: "codes" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Format", "Code", "Bits (sign exponent mantissa)", "Value", "Rel. error", "Below", "Above"].map(
            (t) => h("th", {}, t),
          ),
        ),
      ),
      body,
    ),
  );
}

/** The code table of one byte format, and a single-code decoder. */
function codeTable(): HTMLElement {
  const select = h(
    "select",
    { "data-testid": "code-format" },
    ...BYTE_FORMATS.map((f) => h("option", { value: f }, `${SHORT_NAMES[f]} (${f})`)),
  );
  const codeInput = h("input", { type: "text", value: "0x7e", size: 6, "data-testid": "code-input" });
  const codeValue = h("output", { "data-testid": "code-value" });
  const body = h("tbody");
  const decodeOne = () => {
    const f = select.value as FormatName;
    const t = codeInput.value.trim();
    const code = /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t, 16) : /^\d+$/.test(t) ? Number(t) : -1;
    codeValue.textContent =
      code >= 0 && code < formatInfo(f).codeCount
        ? `${codeHex(f, code)} = ${formatValue(decodeCode(f, code))}`
        : `not a code of ${SHORT_NAMES[f]} (0..${formatInfo(f).codeCount - 1})`;
  };
  const render = () => {
    const f = select.value as FormatName;
    body.replaceChildren(
      ...Array.from({ length: formatInfo(f).codeCount }, (_, code) => {
        const v = decodeCode(f, code);
        return h(
          "tr",
          { "data-code": code, "data-value": formatValue(v), "data-f32": float32Hex(v) },
          h("td", { class: "num" }, code),
          h("td", { class: "mono" }, codeHex(f, code)),
          h("td", { class: "mono" }, bitsOf(f, code)),
          h("td", { class: "num" }, formatValue(v)),
        );
      }),
    );
    body.parentElement?.setAttribute("data-format", f);
    decodeOne();
  };
  select.addEventListener("change", render);
  codeInput.addEventListener("input", decodeOne);
  const tableEl = h(
    "table",
    { "data-testid": "code-table", class: "codes" },
    h("thead", {}, h("tr", {}, ...["Code", "Hex", "Bits", "Value"].map((t) => h("th", {}, t)))),
    body,
  );
  render();
  return h(
    "div",
    {},
    h(
      "p",
      { class: "controls" },
      h("label", {}, "Format ", select),
      " ",
      h("label", {}, "Code ", codeInput),
      " ",
      codeValue,
    ),
    h(
      "details",
      { "data-testid": "code-table-details" },
      h("summary", {}, "Every code of this format"),
      tableEl,
    ),
  );
}

/** The explorer's two parts (the block grid is added by the caller). */
export function formatExplorer(): HTMLElement[] {
  return [
    h("h3", {}, "A value in every format"),
    h(
      "p",
      { class: "what" },
      "The code each format stores for the value (its default rounding: ties to even, HiF8 ties away), its bits, the value it decodes to and the representable values on either side.",
    ),
    valueExplorer(),
    h("h3", {}, "Codes"),
    codeTable(),
  ];
}
