/**
 * The web app's build: `npm run web` serves it (vite's dev server), `npm run build:web` writes
 * static files to dist-web/ with relative URLs, so any static host (or a sub-path of one) serves them.
 * The HTML report's chart libraries reach the page as one virtual module holding the same UMD bundles
 * `fp8kit report` inlines (read by the report layer's own loader), so the charts draw exactly as in
 * the report file.
 */
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";
import { loadChartLibraries } from "../src/report/chart-libraries-node.js";

const CHART_LIBRARIES = "virtual:fp8kit-chart-libraries";

function chartLibraries(): Plugin {
  const resolved = `\0${CHART_LIBRARIES}`;
  return {
    name: "fp8kit-chart-libraries",
    resolveId: (id) => (id === CHART_LIBRARIES ? resolved : null),
    load(id) {
      if (id !== resolved) return null;
      const { d3, plot } = loadChartLibraries();
      return `export const d3 = ${JSON.stringify(d3)};\nexport const plot = ${JSON.stringify(plot)};\n`;
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  plugins: [chartLibraries()],
  server: { host: "127.0.0.1" },
  build: {
    outDir: fileURLToPath(new URL("../dist-web", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 2048,
  },
});
