import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMPARE_FORMAT_NAMES } from "../../src/report/index.js";
import { writeReport } from "../../src/report/node.js";
import { writeDeepSeekCheckpoint } from "./helpers.js";

const CHROMIUM = "/usr/bin/chromium";
const OUTPUT = join(import.meta.dirname, "..", "..", "test-output");
const tmp = mkdtempSync(join(tmpdir(), "fp8kit-report-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const FP8 = join(tmp, "fp8");
const BF16 = join(tmp, "bf16");
const HTML = join(OUTPUT, "report.html");

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  await writeDeepSeekCheckpoint(FP8, { layers: 6, oProjScaleFactor: 1 });
  await writeDeepSeekCheckpoint(BF16, { layers: 6, bf16: true });
});

describe("report", () => {
  it("writes one self-contained HTML file with the report data", async () => {
    const r = await writeReport(FP8, HTML, { against: BF16 });
    const html = readFileSync(HTML, "utf8");
    expect(r.bytes).toBe(Buffer.byteLength(html));
    // Nothing loaded from elsewhere: no src/href attributes pointing anywhere.
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+href=/);
    const d = r.data;
    expect(d.schema).toBe("fp8kit.report/1");
    expect(new Set(d.perTensor.map((p) => p.series))).toEqual(new Set(["UE8M0 requant", `vs ${BF16}`]));
    expect(d.perLayer.filter((p) => p.series === "UE8M0 requant").map((p) => p.layer)).toEqual([
      0, 1, 2, 3, 4, 5,
    ]);
    // FP8 E4M3 against the BF16 original: about one E4M3 rounding (a few percent).
    const vs = d.perTensor.filter((x) => x.series.startsWith("vs"));
    expect(vs).toHaveLength(6 * 5);
    for (const p of vs) {
      if (p.tensor.endsWith("layernorm.weight")) {
        expect(p.relError).toBe(0); // BF16 in both
        continue;
      }
      expect(p.relError).toBeGreaterThan(0.005);
      expect(p.relError).toBeLessThan(0.06);
    }
    expect(d.codeStats.total).toBe(24 * 384 * 256);
    expect(d.scaleExponents.length).toBeGreaterThan(0);
    expect(d.formats.map((f) => f.format)).toEqual([
      ...COMPARE_FORMAT_NAMES,
      ...COMPARE_FORMAT_NAMES,
      ...COMPARE_FORMAT_NAMES,
    ]);
    for (const f of d.formats) expect(f.error).toBeNull();
    const byFormat = (k: string) => d.formats.filter((f) => f.format === k)[0].relError;
    // Fewer bits, more error: MXFP4 worse than MXFP6 worse than MXFP8.
    expect(byFormat("mxfp4")).toBeGreaterThan(byFormat("mxfp6"));
    expect(byFormat("mxfp6")).toBeGreaterThan(byFormat("mxfp8") / 4);
    expect(byFormat("nvfp4")).toBeLessThan(byFormat("mxfp4"));
  });

  it.skipIf(!existsSync(CHROMIUM))(
    `opens in headless Chromium with every chart drawn and no console errors${existsSync(CHROMIUM) ? "" : ` (skipped: ${CHROMIUM} is missing)`}`,
    async () => {
      if (!existsSync(HTML)) await writeReport(FP8, HTML, { against: BF16 });
      const { chromium } = await import("playwright-core");
      const browser = await chromium.launch({ executablePath: CHROMIUM });
      try {
        const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
        const problems: string[] = [];
        page.on("console", (m) => {
          if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
        });
        page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
        page.on("request", (req) => {
          if (!req.url().startsWith("file:")) problems.push(`network: ${req.url()}`);
        });
        await page.goto(pathToFileURL(HTML).href);
        await page.waitForSelector("body[data-ready=yes]", { timeout: 20_000 });
        const charts = await page.$$eval("figure[data-chart]", (figs) =>
          figs.map((f) => ({
            id: f.getAttribute("data-chart"),
            drawn: f.getAttribute("data-drawn"),
            svgs: f.querySelectorAll("svg").length,
            marks: f.querySelectorAll("svg [aria-label]").length,
          })),
        );
        expect(charts.map((c) => c.id)).toEqual(["layers", "scales", "codes", "formats"]);
        for (const c of charts) {
          expect(c.drawn, c.id ?? "").toBe("yes");
          expect(c.svgs, c.id ?? "").toBeGreaterThanOrEqual(1);
          expect(c.marks, c.id ?? "").toBeGreaterThan(0);
        }
        await page.screenshot({ path: join(OUTPUT, "report.png"), fullPage: true });
        expect(problems).toEqual([]);
      } finally {
        await browser.close();
      }
    },
  );
});
