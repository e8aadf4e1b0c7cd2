import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SafetensorsError } from "../../src/safetensors/errors.js";
import { SafetensorsFile } from "../../src/safetensors/reader.js";
import { BufferSource } from "../../src/safetensors/source.js";
import { NodeFileSource } from "../../src/safetensors/source-node.js";
import { planLayout, serializeSafetensors, type TensorWithData } from "../../src/safetensors/writer.js";
import { SafetensorsFileWriter, writeSafetensorsFile } from "../../src/safetensors/writer-node.js";
import { fixture, fixtureSource, mulberry32 } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "fp8kit-st-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function tensorsOf(f: SafetensorsFile): Promise<TensorWithData[]> {
  const out: TensorWithData[] = [];
  for (const t of f.tensors)
    out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await f.readBytes(t.name) });
  return out;
}

describe("byte-for-byte equality with files the Python library wrote", () => {
  const torchFiles: [string, ...string[]][] = [
    ["non_sharded", "model.safetensors"],
    ["non_sharded", "model.with_metadata.safetensors"],
    ["legacy", "torch.safetensors"],
    ["legacy", "torch_metadata.safetensors"],
    ["sharded", "model-00001-of-00006.safetensors"],
    ["sharded", "model-00002-of-00006.safetensors"],
    ["sharded", "model-00003-of-00006.safetensors"],
    ["sharded", "model-00004-of-00006.safetensors"],
    ["sharded", "model-00005-of-00006.safetensors"],
    ["sharded", "model-00006-of-00006.safetensors"],
  ];
  for (const parts of torchFiles) {
    it(`re-serialising jl ${parts.join("/")} reproduces it exactly`, async () => {
      const original = new Uint8Array(readFileSync(fixture("safetensors-jl-dtypes-sharded", ...parts)));
      const f = await SafetensorsFile.open(fixtureSource("safetensors-jl-dtypes-sharded", ...parts));
      const again = serializeSafetensors(await tensorsOf(f), { metadata: f.metadata });
      expect(Buffer.from(again).equals(Buffer.from(original))).toBe(true);
    });
  }
  it("the numpy-written padded files too (safetensors-cpp, candle)", async () => {
    for (const parts of [
      ["safetensors-cpp-samples", "model.safetensors"],
      ["candle-example-tensors", "mel_filters.safetensors"],
      ["safetensors-jl-dtypes-sharded", "non_sharded", "model.numpy.safetensors"],
    ]) {
      const original = new Uint8Array(readFileSync(fixture(...parts)));
      const f = await SafetensorsFile.open(fixtureSource(...parts));
      const again = serializeSafetensors(await tensorsOf(f), { metadata: f.metadata });
      expect(Buffer.from(again).equals(Buffer.from(original)), parts.join("/")).toBe(true);
    }
  });
  it("hadamards: same bytes except the HashMap order of __metadata__ keys (given as pairs in file order)", async () => {
    const original = new Uint8Array(
      readFileSync(fixture("compressed-tensors-hadamards", "hadamards.safetensors")),
    );
    const f = await SafetensorsFile.open(
      fixtureSource("compressed-tensors-hadamards", "hadamards.safetensors"),
    );
    const n = Number(new DataView(original.buffer, original.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(original.subarray(8, 8 + n)));
    // JSON.parse reorders integer-like keys, so recover the file's key order from the text.
    const metaText = new TextDecoder()
      .decode(original.subarray(8, 8 + n))
      .match(/"__metadata__":\{([^}]*)\}/)![1];
    const pairs = [...metaText.matchAll(/"([^"]*)":"([^"]*)"/g)].map((m) => [m[1], m[2]] as const);
    expect(Object.fromEntries(pairs)).toEqual(header.__metadata__);
    const again = serializeSafetensors(await tensorsOf(f), { metadata: pairs });
    expect(Buffer.from(again).equals(Buffer.from(original))).toBe(true);
  });
  // The late-2022 writer neither padded the header nor sorted by dtype (its data is in name order),
  // so exact equality cannot hold; the tensors and values must still survive a rewrite.
  it("unpadded pr84 files (2022 writer: name order, no padding) keep every tensor's bytes", async () => {
    const original = new Uint8Array(
      readFileSync(fixture("hf-safetensors-samples-pr84", "overall.safetensors")),
    );
    const f = await SafetensorsFile.open(fixtureSource("hf-safetensors-samples-pr84", "overall.safetensors"));
    const again = serializeSafetensors(await tensorsOf(f), { metadata: f.metadata });
    const g = await SafetensorsFile.open(new BufferSource(again));
    expect((g.dataStart - 8) % 8).toBe(0);
    expect(f.tensors.map((t) => t.name)).toEqual(["B", "H", "I", "b", "d", "e", "f", "h", "i"]);
    expect(g.tensors.map((t) => t.name)).toEqual(["d", "f", "I", "i", "e", "H", "h", "b", "B"]);
    for (const t of f.tensors) expect(await g.readBytes(t.name)).toEqual(await f.readBytes(t.name));
    expect(again.length - original.length).toBe(g.dataStart - f.dataStart);
  });
});

describe("layout", () => {
  it("sorts by dtype descending then name, metadata first, pads to 8 with spaces", () => {
    const l = planLayout(
      [
        { name: "b", dtype: "U8", shape: [3] },
        { name: "a", dtype: "U8", shape: [1] },
        { name: "s", dtype: "F32", shape: [] },
        { name: "z", dtype: "F8_E4M3", shape: [2] },
        { name: "f4", dtype: "F4", shape: [4] },
      ],
      { format: "pt" },
    );
    expect(l.tensors.map((t) => t.name)).toEqual(["s", "z", "a", "b", "f4"]);
    const text = new TextDecoder().decode(l.header.subarray(8));
    expect(
      text.startsWith('{"__metadata__":{"format":"pt"},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}'),
    ).toBe(true);
    expect((l.header.length - 8) % 8).toBe(0);
    expect(text.trimEnd().endsWith("}")).toBe(true);
    expect(l.fileSize).toBe(l.header.length + 4 + 2 + 1 + 3 + 2);
  });
  it("rejects bad descriptors and wrong byte lengths with the tensor named", () => {
    expect(() => planLayout([{ name: "x", dtype: "F4", shape: [3] }])).toThrow(
      /tensor "x".*whole number of bytes/,
    );
    expect(() => planLayout([{ name: "x", dtype: "U8", shape: [-1] }])).toThrow(SafetensorsError);
    expect(() => planLayout([{ name: "x", dtype: "X" as never, shape: [1] }])).toThrow(/unknown dtype/);
    expect(() =>
      planLayout([
        { name: "x", dtype: "U8", shape: [1] },
        { name: "x", dtype: "U8", shape: [1] },
      ]),
    ).toThrow(/given twice/);
    expect(() =>
      serializeSafetensors([{ name: "x", dtype: "F32", shape: [2], data: new Uint8Array(7) }]),
    ).toThrow(/tensor "x": got 7 bytes but F32\[2\] needs 8/);
  });
});

describe("streaming file writer", () => {
  const rnd = mulberry32(42);
  const tensors: TensorWithData[] = [
    { name: "w", dtype: "F8_E4M3", shape: [64, 32], data: new Uint8Array(2048).map(() => rnd() * 256) },
    {
      name: "w_scale_inv",
      dtype: "F32",
      shape: [1, 1],
      data: new Uint8Array(new Float32Array([0.5]).buffer),
    },
    { name: "mx.scales", dtype: "F8_E8M0", shape: [3], data: new Uint8Array([127, 128, 126]) },
    { name: "fp4", dtype: "F4", shape: [2, 8], data: new Uint8Array(8).map(() => rnd() * 256) },
    { name: "empty", dtype: "BF16", shape: [0], data: new Uint8Array(0) },
  ];
  it("round trips through the reader and equals the in-memory serialiser", async () => {
    const path = join(tmp, "rt.safetensors");
    const byName = new Map(tensors.map((t) => [t.name, t.data]));
    await writeSafetensorsFile(path, tensors, (info) => byName.get(info.name)!, {
      metadata: { format: "pt" },
    });
    const onDisk = new Uint8Array(readFileSync(path));
    expect(
      Buffer.from(onDisk).equals(Buffer.from(serializeSafetensors(tensors, { metadata: { format: "pt" } }))),
    ).toBe(true);
    const f = await SafetensorsFile.open(await NodeFileSource.open(path));
    for (const t of tensors) expect(await f.readBytes(t.name)).toEqual(t.data);
    await f.close();
    expect(readdirSync(tmp).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });
  it("accepts an async iterable in layout order", async () => {
    const path = join(tmp, "iter.safetensors");
    const order = planLayout(tensors).tensors.map((t) => tensors.find((x) => x.name === t.name)!);
    async function* gen() {
      for (const t of order) yield { name: t.name, data: t.data };
    }
    await writeSafetensorsFile(path, tensors, gen());
    expect(new Uint8Array(readFileSync(path))).toEqual(serializeSafetensors(tensors));
  });
  it("a failing source mid-write leaves neither the final file nor a temp file", async () => {
    const dir = mkdtempSync(join(tmp, "fail-"));
    const path = join(dir, "broken.safetensors");
    let calls = 0;
    const err = await writeSafetensorsFile(path, tensors, async (info) => {
      if (++calls === 3) throw new Error("disk on fire");
      return tensors.find((t) => t.name === info.name)!.data;
    }).catch((e) => e);
    expect(err).toBeInstanceOf(SafetensorsError);
    expect(err.message).toMatch(
      /^broken\.safetensors: tensor source failed at tensor "[^"]+" \(disk on fire\)/,
    );
    expect(readdirSync(dir)).toEqual([]);
  });
  it("a wrong byte length or order aborts and names the tensor", async () => {
    const dir = mkdtempSync(join(tmp, "bad-"));
    const w = await SafetensorsFileWriter.create(join(dir, "x.safetensors"), tensors);
    expect(readdirSync(dir)).toHaveLength(1);
    expect(w.nextTensor!.name).toBe("w_scale_inv");
    await expect(w.write("w_scale_inv", new Uint8Array(1))).rejects.toThrow(
      /x\.safetensors: tensor "w_scale_inv": got 1 bytes/,
    );
    expect(readdirSync(dir)).toEqual([]);
    const w2 = await SafetensorsFileWriter.create(join(dir, "y.safetensors"), tensors);
    await expect(w2.write("empty", new Uint8Array(0))).rejects.toThrow(/expected tensor "w_scale_inv" next/);
    await expect(w2.finish()).rejects.toThrow(SafetensorsError);
    expect(existsSync(join(dir, "y.safetensors"))).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});
