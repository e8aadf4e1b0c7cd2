/**
 * The script the report page runs at load: it reads the inline JSON (`#fp8kit-data`) and draws each
 * chart with Observable Plot (the UMD bundles of d3 and Plot are inlined before it) into its
 * `<figure data-chart=...>`. Plain browser JavaScript, kept as a string so the page needs no build.
 * A chart without data gets a short note instead of an empty frame.
 */
export const CHARTS_PAGE_SCRIPT = String.raw`
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("fp8kit-data").textContent);
  var width = Math.min(1100, document.body.clientWidth - 48);
  function mount(id, make, empty) {
    var fig = document.querySelector('figure[data-chart="' + id + '"]');
    var body = fig.querySelector(".chart");
    if (empty) {
      var p = document.createElement("p");
      p.className = "empty";
      p.textContent = empty;
      body.appendChild(p);
      fig.setAttribute("data-drawn", "empty");
      return;
    }
    body.appendChild(make());
    fig.setAttribute("data-drawn", "yes");
  }
  var pct = function (d) { return (d * 100).toPrecision(3) + "%"; };

  mount("layers", function () {
    return Plot.plot({
      width: width, height: 320, marginLeft: 64,
      x: { label: "layer", grid: true, tickFormat: function (d) { return Number.isInteger(d) ? String(d) : ""; } },
      y: { label: "relative error (Frobenius)", grid: true, tickFormat: pct, zero: true },
      color: { legend: true },
      marks: [
        Plot.dot(data.perTensor, { x: "layer", y: "relError", stroke: "series", r: 2.5, opacity: 0.6, tip: true,
          title: function (d) { return d.tensor + "\n" + pct(d.relError); } }),
        Plot.lineY(data.perLayer, { x: "layer", y: "relError", stroke: "series", strokeWidth: 2 }),
        Plot.ruleY([0])
      ]
    });
  }, data.perTensor.length === 0 ? "No per-layer errors to show (no block-FP8 weights with layer numbers)." : null);

  mount("scales", function () {
    return Plot.plot({
      width: width, height: 280, marginLeft: 64,
      x: { label: "scale exponent floor(log2 s)", tickFormat: function (e) { return e % 2 === 0 ? String(e) : ""; } },
      y: { label: "scales", grid: true },
      color: { legend: true, domain: ["power of two", "not a power of two"], range: ["#4e79a7", "#e15759"] },
      marks: [
        Plot.barY(data.scaleExponents, { x: "exponent", y: "count", fill: "kind", tip: true }),
        Plot.ruleY([0])
      ]
    });
  }, data.scaleExponents.length === 0 ? "No scale tensors to show." : null);

  mount("codes", function () {
    return Plot.plot({
      width: width, height: 280, marginLeft: 72,
      marginBottom: 56,
      x: { label: "E4M3 magnitude (code: value)", tickRotate: -40,
        tickFormat: function (c) { return c % 16 === 0 || c === 126 ? c + ": " + data.codes[c].value : ""; } },
      y: { label: "elements", grid: true },
      color: { legend: true, domain: ["zero", "subnormal", "normal", "max (448)", "NaN"], range: ["#bab0ac", "#f28e2b", "#4e79a7", "#e15759", "#000000"] },
      marks: [
        Plot.barY(data.codes, { x: "code", y: "count", fill: "region", tip: true,
          title: function (d) { return "code " + d.code + " = " + d.value + "\n" + d.count + " elements"; } }),
        Plot.ruleY([0])
      ]
    });
  }, data.codeStats.total === 0 ? "No E4M3 weights were read." : null);

  var fmt = data.formats.filter(function (d) { return d.error === null; }).map(function (d) {
    return Object.assign({}, d, { short: d.tensor.replace(/^model\./, "") });
  });
  var labels = [];
  fmt.forEach(function (d) { if (labels.indexOf(d.label) < 0) labels.push(d.label); });
  var maxErr = Math.max.apply(null, fmt.map(function (d) { return d.relError; }).concat([0.001]));
  mount("formats", function () {
    return Plot.plot({
      width: width, height: 60 + 24 * fmt.length, marginLeft: 250, marginRight: 260,
      x: { label: "relative error (Frobenius), lower is better", grid: true, tickFormat: pct, domain: [0, maxErr * 1.12] },
      y: { label: null, domain: labels },
      fy: { label: null, axis: "right" },
      color: { legend: false },
      marks: [
        Plot.barX(fmt, { x: "relError", y: "label", fy: "short", fill: "format", tip: true,
          title: function (d) { return d.label + "\n" + pct(d.relError) + (d.sqnrDb === null ? "" : "  SQNR " + d.sqnrDb.toFixed(1) + " dB"); } }),
        Plot.text(fmt, { x: "relError", y: "label", fy: "short", text: function (d) { return pct(d.relError); }, dx: 4, textAnchor: "start" }),
        Plot.ruleX([0])
      ]
    });
  }, fmt.length === 0 ? "No tensors were compared across formats." : null);
  document.body.setAttribute("data-ready", "yes");
})();
`;
