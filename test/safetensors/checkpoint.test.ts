import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Checkpoint } from "../../src/safetensors/checkpoint.js";
import {
  openCheckpoint,
  ShardedWriter,
  writeShardedCheckpoint,
} from "../../src/safetensors/checkpoint-node.js";
import { SafetensorsError } from "../../src/safetensors/errors.js";
import { buildIndexJson, checkShardName, parseIndexJson } from "../../src/safetensors/index-json.js";
import { planShards, tensorByteLength } from "../../src/safetensors/shards.js";
import { parseSize } from "../../src/safetensors/size.js";
import { BufferSource } from "../../src/safetensors/source.js";
import type { TensorDescriptor } from "../../src/safetensors/writer.js";
import { fixture } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "fp8kit-ck-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const SHARDED = fixture("safetensors-jl-dtypes-sharded", "sharded");

function copySharded(): string {
  const dir = mkdtempSync(join(tmp, "sh-"));
  for (const n of readdirSync(SHARDED)) copyFileSync(join(SHARDED, n), join(dir, n));
  return dir;
}

function editIndex(dir: string, edit: (ix: { weight_map: Record<string, string> }) => void): void {
  const p = join(dir, "model.safetensors.index.json");
  const ix = JSON.parse(readFileSync(p, "utf8"));
  edit(ix);
  writeFileSync(p, JSON.stringify(ix));
}

async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  const e: unknown = await p.catch((x: unknown) => x);
  expect(e).toBeInstanceOf(SafetensorsError);
  expect((e as Error).message).toMatch(re);
}

describe("opening checkpoints", () => {
  it("a single file, an index file, and a directory without index", async () => {
    const one = await openCheckpoint(fixture("safetensors-cpp-samples", "model.safetensors"));
    expect(one.tensors.map((t) => t.name)).toEqual(["weight1", "weight2"]);
    expect(one.get("weight2").fileOffsets[0]).toBe(one.get("weight1").fileOffsets[1]);
    expect((await one.readTyped("weight1")).data).toBeInstanceOf(Float64Array);
    await one.close();
    const viaIndex = await openCheckpoint(join(SHARDED, "model.safetensors.index.json"));
    expect(viaIndex.tensors).toHaveLength(36);
    const dir = copySharded();
    rmSync(join(dir, "model.safetensors.index.json"));
    const noIndex = await openCheckpoint(dir);
    expect(noIndex.index).toBeNull();
    expect(noIndex.shards).toHaveLength(6);
    expect(noIndex.tensors).toHaveLength(36);
    await noIndex.close();
  });
  it("rejects a missing shard", async () => {
    const dir = copySharded();
    rmSync(join(dir, "model-00003-of-00006.safetensors"));
    await rejects(openCheckpoint(dir), /shard model-00003-of-00006\.safetensors cannot be opened/);
  });
  it("rejects a tensor the map puts in the wrong shard, or that no shard holds", async () => {
    const a = copySharded();
    editIndex(a, (ix) => {
      // model-00003 holds two tensors; move one of them to model-00001 in the map.
      const moved = Object.keys(ix.weight_map).find(
        (k) => ix.weight_map[k] === "model-00003-of-00006.safetensors",
      )!;
      ix.weight_map[moved] = "model-00001-of-00006.safetensors";
    });
    await rejects(
      openCheckpoint(a),
      /tensor "[^"]+" found in model-00003-of-00006\.safetensors but is mapped to model-00001/,
    );
    const b = copySharded();
    editIndex(b, (ix) => {
      ix.weight_map.ghost = "model-00001-of-00006.safetensors";
    });
    await rejects(
      openCheckpoint(b),
      /tensor "ghost" is mapped to model-00001-of-00006\.safetensors but that shard does not hold it/,
    );
  });
  it("rejects a tensor a shard holds that the map omits", async () => {
    const dir = copySharded();
    editIndex(dir, (ix) => {
      delete ix.weight_map.bool_3;
    });
    await rejects(
      openCheckpoint(dir),
      /tensor "bool_3" found in model-00001-of-00006\.safetensors but is not in the weight_map/,
    );
  });
  it("rejects shard names that escape the directory", () => {
    for (const bad of [
      "../x.safetensors",
      "/etc/passwd",
      "a/b.safetensors",
      "a\\b",
      "http://x/y",
      "C:x",
      "..",
      "",
    ]) {
      expect(() => checkShardName(bad), bad).toThrow(SafetensorsError);
      expect(() => parseIndexJson(JSON.stringify({ weight_map: { t: bad } }))).toThrow(
        /not a plain file name/,
      );
    }
    expect(() => checkShardName("model-00001-of-00002.safetensors")).not.toThrow();
  });
  it("rejects malformed index JSON", () => {
    expect(() => parseIndexJson("{")).toThrow(/not valid JSON/);
    expect(() => parseIndexJson("{}")).toThrow(/weight_map/);
    expect(() => parseIndexJson('{"weight_map":{"a":"x","a":"y"}}')).toThrow(/duplicate key "a"/);
    expect(() => parseIndexJson('{"weight_map":{"a":1}}')).toThrow(/not a string/);
  });
  it("works in the browser shape: Checkpoint over Blob/Buffer sources", async () => {
    const files = new Map<string, Uint8Array>();
    for (const n of readdirSync(SHARDED)) files.set(n, new Uint8Array(readFileSync(join(SHARDED, n))));
    const index = parseIndexJson(new TextDecoder().decode(files.get("model.safetensors.index.json")));
    const ck = await Checkpoint.open({
      shards: index.shards,
      index,
      opener: async (s) => new BufferSource(files.get(s)!, s),
    });
    expect(ck.totalSize).toBe(4305);
    await rejects(ck.readBytes("nope"), /no tensor named "nope"/);
  });
});

describe("sharded writer", () => {
  it("planShards reproduces huggingface_hub's split of the jl fixture (max_shard_size=1000)", async () => {
    const ck = await openCheckpoint(SHARDED);
    // weight_map order is the state-dict order the Python script split in.
    const descriptors: TensorDescriptor[] = [...ck.index!.weightMap.keys()].map((n) => ck.get(n));
    const plan = planShards(descriptors, 1000);
    expect(plan.map((p) => p.fileName)).toEqual(ck.shards);
    for (const p of plan) for (const t of p.tensors) expect(ck.index!.weightMap.get(t.name)).toBe(p.fileName);
    await ck.close();
  });
  it("writes HF-named shards + index; every tensor is findable; shards match the torch-written ones", async () => {
    const src = await openCheckpoint(SHARDED);
    const descriptors: TensorDescriptor[] = [...src.index!.weightMap.keys()].map((n) => src.get(n));
    const out = mkdtempSync(join(tmp, "out-"));
    const res = await writeShardedCheckpoint(out, descriptors, (info) => src.readBytes(info.name), {
      maxShardSize: 1000,
    });
    expect(res.totalSize).toBe(4305);
    expect(res.shards).toEqual(src.shards);
    for (const s of src.shards)
      expect(readFileSync(join(out, s)).equals(readFileSync(join(SHARDED, s)))).toBe(true);
    const ix = parseIndexJson(readFileSync(res.indexPath!, "utf8"));
    expect(ix.totalSize).toBe(4305);
    expect(new Map([...ix.weightMap].sort())).toEqual(new Map([...src.index!.weightMap].sort()));
    const back = await openCheckpoint(out);
    for (const t of src.tensors) expect(await back.readBytes(t.name)).toEqual(await src.readBytes(t.name));
    await back.close();
    await src.close();
    expect(readdirSync(out).filter((n) => n.startsWith("."))).toEqual([]);
  });
  it("a tensor over the limit gets its own shard; one shard is model.safetensors with no index", async () => {
    const d = (name: string, n: number): TensorDescriptor => ({ name, dtype: "U8", shape: [n] });
    const plan = planShards([d("a", 40), d("big", 500), d("b", 40), d("c", 40)], 100);
    expect(plan.map((p) => [p.fileName, p.tensors.map((t) => t.name)])).toEqual([
      ["model-00001-of-00003.safetensors", ["a"]],
      ["model-00002-of-00003.safetensors", ["big"]],
      ["model-00003-of-00003.safetensors", ["b", "c"]],
    ]);
    const out = mkdirSync(join(tmp, "single"), { recursive: true })!;
    const res = await writeShardedCheckpoint(out, [d("a", 4)], () => new Uint8Array(4));
    expect(res).toEqual({ shards: ["model.safetensors"], indexPath: null, totalSize: 4 });
  });
  it("writes tensors one at a time in `order`, and rejects out-of-order writes", async () => {
    const out = mkdtempSync(join(tmp, "push-"));
    const ds: TensorDescriptor[] = ["x", "y", "z"].map((name) => ({ name, dtype: "BF16", shape: [20] }));
    const w = new ShardedWriter(out, ds, { maxShardSize: 100 });
    expect(w.plan).toHaveLength(2);
    await expect(w.write("z", new Uint8Array(40))).rejects.toThrow(/expected tensor "x" next/);
    const w2 = new ShardedWriter(out, ds, { maxShardSize: "100B" });
    for (const t of w2.order) await w2.write(t.name, new Uint8Array(tensorByteLength(t)));
    const res = await w2.finish();
    expect(res.shards).toEqual(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
    expect(readFileSync(res.indexPath!, "utf8")).toBe(
      buildIndexJson(
        {
          x: "model-00001-of-00002.safetensors",
          y: "model-00001-of-00002.safetensors",
          z: "model-00002-of-00002.safetensors",
        },
        120,
      ),
    );
  });
});

describe("parseSize", () => {
  it("decimal and binary units", () => {
    expect(parseSize("5GB")).toBe(5e9);
    expect(parseSize("500MB")).toBe(5e8);
    expect(parseSize("10 kb")).toBe(10_000);
    expect(parseSize("2KiB")).toBe(2048);
    expect(parseSize("1.5GiB")).toBe(1.5 * 2 ** 30);
    expect(parseSize("3TB")).toBe(3e12);
    expect(parseSize("1MiB")).toBe(2 ** 20);
    expect(parseSize("123")).toBe(123);
    expect(parseSize("7B")).toBe(7);
    expect(parseSize(42)).toBe(42);
    for (const bad of ["", "GB", "5XB", "-1GB", "1e3", "5 G B"])
      expect(() => parseSize(bad), bad).toThrow(SafetensorsError);
  });
});
