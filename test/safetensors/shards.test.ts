/**
 * The one shard planner (`splitIntoShards`, used by `planShards`/`ShardedWriter` and by convert's
 * plan). Checked against huggingface_hub's documented example and against the rule written as
 * properties (consecutive runs of the input, greedy, oversized items alone), which pin down a
 * single split for any input.
 */
import { describe, expect, it } from "vitest";
import { SafetensorsError } from "../../src/safetensors/errors.js";
import { planShards, type ShardGroup, splitIntoShards } from "../../src/safetensors/shards.js";
import type { TensorDescriptor } from "../../src/safetensors/writer.js";

const sizesOf = (groups: ShardGroup[], sizes: number[]) => groups.map((g) => g.items.map((i) => sizes[i]));

/** Throws unless `groups` is the greedy in-order split of `sizes` (every property the rule states). */
function checkRule(sizes: number[], max: number, groups: ShardGroup[]): void {
  expect(groups.flatMap((g) => g.items)).toEqual(sizes.map((_, i) => i)); // consecutive runs, in order
  for (const g of groups) {
    const bytes = g.items.reduce((s, i) => s + sizes[i], 0);
    expect(g.bytes).toBe(bytes);
    if (g.items.some((i) => sizes[i] > max))
      expect(g.items).toHaveLength(1); // oversized: alone
    else expect(bytes).toBeLessThanOrEqual(max);
  }
  for (let k = 0; k + 1 < groups.length; k++) {
    // greedy: the next shard's first item would not have fitted (or one of them is oversized)
    const next = sizes[groups[k + 1].items[0]];
    if (next <= max && groups[k].bytes <= max) expect(groups[k].bytes + next).toBeGreaterThan(max);
  }
}

describe("splitIntoShards", () => {
  it("huggingface_hub's documented example: [6, 6, 2, 6, 2, 2] under 10 -> [6], [6+2], [6+2+2]", () => {
    const sizes = [6, 6, 2, 6, 2, 2];
    const groups = splitIntoShards(sizes, 10);
    expect(sizesOf(groups, sizes)).toEqual([[6], [6, 2], [6, 2, 2]]);
    expect(groups.map((g) => g.fileName)).toEqual([
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
    ]);
  });

  it("an oversized item closes the shard being filled and stands alone (input order kept)", () => {
    // huggingface_hub would give [500], [40, 40], [40]; see the doc comment for why not here.
    const sizes = [40, 500, 40, 40];
    expect(sizesOf(splitIntoShards(sizes, 100), sizes)).toEqual([[40], [500], [40, 40]]);
    expect(sizesOf(splitIntoShards([500], 100), [500])).toEqual([[500]]);
    expect(sizesOf(splitIntoShards([500, 500], 100), [500, 500])).toEqual([[500], [500]]);
  });

  it("one shard is model.safetensors; no items give one empty shard; the limit must be positive", () => {
    expect(splitIntoShards([1, 2, 3], 6)).toEqual([
      { fileName: "model.safetensors", items: [0, 1, 2], bytes: 6 },
    ]);
    expect(splitIntoShards([], 6)).toEqual([{ fileName: "model.safetensors", items: [], bytes: 0 }]);
    expect(splitIntoShards([1], 6, "diffusion_pytorch_model")[0].fileName).toBe(
      "diffusion_pytorch_model.safetensors",
    );
    for (const bad of [0, -1, 1.5, Number.NaN])
      expect(() => splitIntoShards([1], bad)).toThrow(SafetensorsError);
  });

  it("follows the rule on random inputs (including zero-byte and oversized items)", () => {
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (let trial = 0; trial < 500; trial++) {
      const max = 1 + Math.floor(rnd() * 100);
      const sizes = Array.from({ length: Math.floor(rnd() * 20) }, () => Math.floor(rnd() * 1.3 * max));
      checkRule(sizes, max, splitIntoShards(sizes, max));
    }
  });

  it("the two former planners' cases now agree: per tensor (planShards) and per group (convert)", () => {
    const d = (name: string, n: number): TensorDescriptor => ({ name, dtype: "U8", shape: [n] });
    // planShards' case: tensors one by one.
    const tensors = [d("a", 40), d("big", 500), d("b", 40), d("c", 40)];
    const perTensor = planShards(tensors, 100).map((p) => p.tensors.map((t) => t.name));
    const perItem = splitIntoShards([40, 500, 40, 40], 100).map((g) => g.items.map((i) => tensors[i].name));
    expect(perTensor).toEqual([["a"], ["big"], ["b", "c"]]);
    expect(perItem).toEqual(perTensor);
    // convert's case: a weight and its scale form one item; a split never separates them.
    const ops = [
      { tensors: [d("w0", 60), d("w0_scale", 4)] },
      { tensors: [d("w1", 60), d("w1_scale", 4)] },
      { tensors: [d("norm", 30)] },
    ];
    const groups = splitIntoShards(
      ops.map((o) => o.tensors.reduce((s, t) => s + t.shape[0], 0)),
      100,
    );
    expect(groups.map((g) => g.items)).toEqual([[0], [1, 2]]);
    expect(groups.map((g) => g.bytes)).toEqual([64, 94]);
  });
});
