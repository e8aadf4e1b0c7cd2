/**
 * The web app in headless Chromium: built with vite's API, served with the sample checkpoint by a
 * node:http server on 127.0.0.1 (with Range support, for `?url=`), driven with playwright-core.
 * What the page shows is compared with the library run here in Node on the same files (layout,
 * tensor count, compatibility verdicts, lint counts) and with the codecs (`decode` for every code of
 * every byte format, `encode` for typed values). Screenshots go to test-results/web/.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve, sep } from "node:path";
import type { Browser, ConsoleMessage, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  auditCheckpoint,
  decode,
  encode,
  FORMAT_NAMES,
  type FormatName,
  formatInfo,
  type InspectResult,
  inspectCheckpoint,
  lintCheckpoint,
} from "../../src/index.js";
import { NodeCheckpointDir } from "../../src/node.js";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const ROOT = resolve(import.meta.dirname, "..", "..");
const SAMPLE = join(ROOT, "sample", "deepseek-v3-tiny");
const SHOTS = join(ROOT, "test-results", "web");
/** Side files a remote folder is probed for; a 404 on them is the expected answer, not an error. */
const PROBED_SIDE_FILES = ["hf_quant_config.json", "quant_model_description.json"];

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
};

/** Serves `/app/*` from the built app and `/sample/*` from the sample, with single-range support. */
function serve(appDir: string): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const [, mount, ...rest] = url.pathname.split("/");
    const base = mount === "app" ? appDir : mount === "sample" ? SAMPLE : null;
    const file = normalize(join(base ?? tmpdir(), decodeURIComponent(rest.join("/")) || "index.html"));
    if (base === null || !file.startsWith(base + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    const body = readFileSync(file);
    const headers: Record<string, string | number> = {
      "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
      "Accept-Ranges": "bytes",
    };
    const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
    let status = 200;
    let part = body;
    if (m && (m[1] !== "" || m[2] !== "")) {
      const size = body.length;
      const start = m[1] === "" ? Math.max(0, size - Number(m[2])) : Number(m[1]);
      const end = m[1] === "" || m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
      if (start >= size || start > end) {
        res.writeHead(416, { "Content-Range": `bytes */${size}` }).end();
        return;
      }
      status = 206;
      part = body.subarray(start, end + 1);
      headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    }
    headers["Content-Length"] = part.length;
    res.writeHead(status, headers);
    res.end(req.method === "HEAD" ? undefined : part);
  });
}

let tmp = "";
let server: Server | null = null;
let browser: Browser | null = null;
let origin = "";
let expected: InspectResult;

beforeAll(async () => {
  if (!HAVE_CHROMIUM) return;
  mkdirSync(SHOTS, { recursive: true });
  tmp = mkdtempSync(join(tmpdir(), "fp8kit-web-"));
  const { build } = await import("vite");
  await build({
    configFile: join(ROOT, "web", "vite.config.ts"),
    logLevel: "error",
    build: { outDir: tmp, emptyOutDir: true },
  });
  server = serve(tmp);
  await new Promise<void>((ok) => server!.listen(0, "127.0.0.1", ok));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM });
  expected = await inspectCheckpoint(await NodeCheckpointDir.open(SAMPLE));
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A page that records console errors and warnings and uncaught exceptions. */
async function openPage(path: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() !== "error" && m.type() !== "warning") return;
    const where = m.location().url;
    const probe = PROBED_SIDE_FILES.some((f) => where === `${origin}/sample/${f}`);
    if (probe && m.text().includes("status of 404")) return;
    problems.push(`${m.type()}: ${m.text()} (${where})`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("request", (r) => {
    if (!r.url().startsWith(origin) && !r.url().startsWith("about:")) problems.push(`network: ${r.url()}`);
  });
  await page.goto(`${origin}/app/${path}`);
  return { page, problems };
}

/** Waits for inspect, lint and audit, then checks what the page shows against Node's `inspect`. */
async function checkCheckpoint(page: Page): Promise<void> {
  await page.waitForSelector('[data-testid="open-status"][data-state="ready"]', { timeout: 30_000 });
  const text = (id: string) => page.textContent(`[data-testid="${id}"]`);
  expect(await text("layout-label")).toBe(expected.layout.label);
  expect(Number(await text("tensor-count"))).toBe(expected.sizes.tensors);
  expect(Number(await text("shard-count"))).toBe(expected.shards);
  const rows = await page.$$eval('[data-testid="compat-row"]', (trs) =>
    trs.map((tr) => [tr.getAttribute("data-target"), tr.getAttribute("data-status")]),
  );
  expect(rows).toEqual(expected.compatibility.map((c) => [c.target, c.status]));
  for (const id of ["inspect", "lint", "audit"])
    expect(await page.getAttribute(`[data-testid="${id}-status"]`, "data-state"), id).toBe("ready");
}

const lintCounts = (r: { errors: number; warnings: number }) => `${r.errors} / ${r.warnings}`;

describe.skipIf(!HAVE_CHROMIUM)(`web app${HAVE_CHROMIUM ? "" : ` (skipped: ${CHROMIUM} is missing)`}`, () => {
  it("opens the sample from picked files: inspect, lint, audit and the report charts", async () => {
    const { page, problems } = await openPage("index.html");
    try {
      const files = readdirSync(SAMPLE).map((f) => join(SAMPLE, f));
      await page.setInputFiles('[data-testid="open-files"]', files);
      await checkCheckpoint(page);
      const lint = await lintCheckpoint(await NodeCheckpointDir.open(SAMPLE));
      expect(await page.textContent('[data-testid="lint-counts"]')).toBe(lintCounts(lint));
      // The report page, rendered by renderReportHtml in a frame, draws its four charts.
      await page.waitForSelector('[data-testid="report-status"][data-state="ready"]', { timeout: 30_000 });
      const frame = page.frameLocator('[data-testid="report-frame"]');
      await frame.locator("body[data-ready=yes]").waitFor({ timeout: 20_000 });
      const charts = await frame
        .locator("figure[data-chart]")
        .evaluateAll((figs) => figs.map((f) => [f.getAttribute("data-chart"), f.getAttribute("data-drawn")]));
      expect(charts.map((c) => c[0])).toEqual(["layers", "scales", "codes", "formats"]);
      expect(charts.filter((c) => c[1] !== "yes" && c[1] !== "empty")).toEqual([]);
      expect(await frame.locator("figure[data-chart] svg").count()).toBeGreaterThan(0);
      await page.screenshot({ path: join(SHOTS, "files.png"), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it("opens the sample from a picked folder", async () => {
    const { page, problems } = await openPage("index.html");
    try {
      await page.setInputFiles('[data-testid="open-folder"]', SAMPLE);
      await checkCheckpoint(page);
      expect(await page.textContent('[data-testid="checkpoint-name"]')).toBe("deepseek-v3-tiny");
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it("opens ?url= over HTTP Range requests on load", async () => {
    const address = `${origin}/sample/`;
    const { page, problems } = await openPage(`index.html?url=${encodeURIComponent(address)}`);
    try {
      await checkCheckpoint(page);
      expect(await page.inputValue('[data-testid="open-url"]')).toBe(address);
      expect(await page.textContent('[data-testid="checkpoint-name"]')).toBe(address);
      const lint = await lintCheckpoint(await NodeCheckpointDir.open(SAMPLE), { headersOnly: true });
      expect(await page.textContent('[data-testid="lint-counts"]')).toBe(lintCounts(lint));
      expect(await page.textContent('[data-testid="bytes-fetched"]')).toMatch(
        /^Fetched so far: .+ in \d+ requests\.$/,
      );
      // The audit over HTTP, on request: one sampled block of each attention weight of layer 0
      // (each block is one Range request per row).
      await page.fill('[data-testid="audit-sample"]', "1");
      await page.fill('[data-testid="audit-filter"]', "model.layers.0.self_attn.**");
      await page.click('[data-testid="audit-run"]');
      await page.waitForSelector('[data-testid="audit-summary"]', { timeout: 30_000 });
      expect(await page.getAttribute('[data-testid="audit-status"]', "data-state")).toBe("ready");
      const audited = await auditCheckpoint(await NodeCheckpointDir.open(SAMPLE), {
        sample: 1,
        filter: ["model.layers.0.self_attn.**"],
      });
      const a = audited.summary;
      expect(a.scaleTensors).toBeGreaterThan(0);
      const shown = (await page.textContent('[data-testid="audit-summary"]')) ?? "";
      expect(shown).toContain("sample: 1 blocks per tensor");
      expect(shown).toContain(`${a.scales} in ${a.scaleTensors} tensors`);
      expect(shown).toContain(`${a.requant?.changedBlocks} of ${a.requant?.blocks} blocks change scale`);
      await page.screenshot({ path: join(SHOTS, "url.png"), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it("says what is wrong with an address that holds no checkpoint", async () => {
    const address = `${origin}/sample/nothing/`;
    const { page, problems } = await openPage(`index.html?url=${encodeURIComponent(address)}`);
    try {
      await page.waitForSelector('[data-testid="open-status"][data-state="error"]', { timeout: 20_000 });
      expect(await page.textContent('[data-testid="open-status"]')).toContain(address);
      // The 404s of the probes are the browser's own log lines; nothing may be thrown uncaught.
      expect(problems.filter((p) => !p.includes("status of 404"))).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it("the format explorer agrees with the codecs for every code of every byte format", async () => {
    const { page, problems } = await openPage("index.html");
    try {
      const bytes = FORMAT_NAMES.filter((f) => formatInfo(f).bits <= 8);
      expect(bytes).toEqual(
        expect.arrayContaining(["float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu", "hifloat8"]),
      );
      const asNumber = (s: string) =>
        s === "NaN"
          ? Number.NaN
          : s === "Inf"
            ? Infinity
            : s === "-Inf"
              ? -Infinity
              : s === "-0"
                ? -0
                : Number(s);
      for (const f of bytes) {
        await page.selectOption('[data-testid="code-format"]', f);
        await page.waitForSelector(`[data-testid="code-table"][data-format="${f}"]`, { state: "attached" });
        const rows = await page.$$eval('[data-testid="code-table"] tbody tr', (trs) =>
          trs.map(
            (tr) =>
              [
                Number(tr.getAttribute("data-code")),
                tr.getAttribute("data-value")!,
                tr.getAttribute("data-f32")!,
              ] as const,
          ),
        );
        const n = formatInfo(f).codeCount;
        const want = decode(
          f,
          Uint8Array.from({ length: n }, (_, c) => c),
        );
        const wantBits = new Uint32Array(want.buffer);
        expect(
          rows.map((r) => r[0]),
          f,
        ).toEqual(Array.from({ length: n }, (_, c) => c));
        const wrong = rows.filter(
          ([c, value, bits]) =>
            !Object.is(asNumber(value), want[c]) || Number.parseInt(bits, 16) !== wantBits[c],
        );
        expect(wrong, f).toEqual([]);
      }
      // Typed values: the code each format's row shows is what `encode` gives here.
      for (const typed of ["0.3", "300", "-0.1", "1e-9", "70000", "-0", "nan", "-inf"]) {
        await page.fill('[data-testid="explorer-input"]', typed);
        const shown = await page.$$eval('[data-testid="explorer-table"] tbody tr', (trs) =>
          trs.map((tr) => [tr.getAttribute("data-format"), Number(tr.getAttribute("data-code"))]),
        );
        const x = asNumber(typed === "nan" ? "NaN" : typed === "-inf" ? "-Inf" : typed);
        expect(shown, typed).toEqual(FORMAT_NAMES.map((f: FormatName) => [f, encode(f, [x])[0]]));
      }
      await page.fill('[data-testid="explorer-input"]', "0.3");
      await page.selectOption('[data-testid="code-format"]', "float8_e4m3fn");
      await page.fill('[data-testid="code-input"]', "0x7e");
      expect(await page.textContent('[data-testid="code-value"]')).toBe("0x7e = 448");
      // The block grid: one row per scale rule and a drawn plot.
      await page.waitForSelector('[data-testid="block-plot"][data-drawn="yes"] svg');
      expect(await page.locator('[data-testid="block-table"] tbody tr').count()).toBeGreaterThanOrEqual(10);
      await page.locator('[data-testid="explorer"]').screenshot({ path: join(SHOTS, "explorer.png") });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
