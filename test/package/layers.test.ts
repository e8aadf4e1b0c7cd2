/**
 * The shape of the house, as a test: every import in src/ goes to the same layer or one below it
 * (formats < quant < safetensors < checkpoint < convert < report < cli), and no module imports
 * itself through a chain (an import cycle, like the one convert's kernels once had).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = resolve(import.meta.dirname, "..", "..", "src");
const LAYERS = ["formats", "quant", "safetensors", "checkpoint", "convert", "report", "cli"];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Relative imports (static and dynamic) of a module, resolved to .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
    out.push(resolve(dirname(file), m[1].replace(/\.js$/, ".ts")));
  }
  return out;
}

/** Layer index of a file (-1 for src/index.ts, src/node.ts, src/errors.ts: the entry points and the base error). */
function layerOf(file: string): number {
  return LAYERS.indexOf(relative(SRC, file).split("/")[0]);
}

const graph = new Map(files(SRC).map((f) => [f, importsOf(f)]));

describe("layers", () => {
  it("no module imports from a layer above its own", () => {
    const upward: string[] = [];
    for (const [f, deps] of graph) {
      const from = layerOf(f);
      if (from < 0) continue;
      for (const d of deps) {
        const to = layerOf(d);
        if (to > from) upward.push(`${relative(SRC, f)} -> ${relative(SRC, d)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("no import cycles", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, "open");
      stack.push(f);
      for (const d of graph.get(f) ?? []) {
        if (state.get(d) === "open")
          cycles.push([...stack.slice(stack.indexOf(d)), d].map((x) => relative(SRC, x)).join(" -> "));
        else if (!state.has(d) && graph.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, "done");
    };
    for (const f of graph.keys()) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it("every relative import resolves to a file in src", () => {
    const missing = [...graph].flatMap(([f, deps]) =>
      deps.filter((d) => !graph.has(d)).map((d) => `${relative(SRC, f)} -> ${d}`),
    );
    expect(missing).toEqual([]);
  });
});
