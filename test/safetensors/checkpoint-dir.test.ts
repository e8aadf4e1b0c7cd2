/**
 * The one directory abstraction (`CheckpointDir`): the Node implementation and the browser one
 * (over Blobs) open the same checkpoint to the same tensors; side files are read under a limit;
 * range reads land in the caller's buffer and are counted.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openCheckpointIn } from "../../src/safetensors/checkpoint.js";
import { BlobCheckpointDir } from "../../src/safetensors/checkpoint-dir.js";
import { NodeCheckpointDir } from "../../src/safetensors/checkpoint-dir-node.js";
import { openCheckpoint } from "../../src/safetensors/checkpoint-node.js";
import { SafetensorsError } from "../../src/safetensors/errors.js";
import { fixture } from "./helpers.js";

const SHARDED = fixture("safetensors-jl-dtypes-sharded", "sharded");
const blobDir = () =>
  new BlobCheckpointDir(
    readdirSync(SHARDED).map((n) => [n, new Blob([readFileSync(join(SHARDED, n))])] as const),
    "sharded",
  );

describe("CheckpointDir", () => {
  it("Node and Blob directories list, read and open the same checkpoint", async () => {
    const node = await NodeCheckpointDir.open(SHARDED);
    const blob = blobDir();
    expect(await node.list()).toEqual(await blob.list());
    expect(await node.readText("model.safetensors.index.json")).toBe(
      await blob.readText("model.safetensors.index.json"),
    );
    expect(await node.readText("config.json")).toBeNull();
    expect(await blob.readBytes("config.json")).toBeNull();
    const a = await openCheckpointIn(node);
    const b = await openCheckpointIn(blob);
    expect(a.tensors).toEqual(b.tensors);
    for (const t of a.tensors) expect(await a.readBytes(t.name)).toEqual(await b.readBytes(t.name));
    await a.close();
    await b.close();
  });

  it("a side file over the limit, a missing path, an unsafe name: specific errors", async () => {
    const node = await NodeCheckpointDir.open(SHARDED);
    for (const d of [node, blobDir()]) {
      const e = await d.readText("model.safetensors.index.json", 100).catch((x) => x);
      expect(e).toBeInstanceOf(SafetensorsError);
      expect(e.code).toBe("file-too-large");
      expect(e.message).toMatch(/^model\.safetensors\.index\.json: \d+ bytes exceeds the limit of 100/);
      await expect(d.open("../x.safetensors")).rejects.toThrow(/not a plain file name/);
    }
    const missing = await NodeCheckpointDir.open(join(SHARDED, "nope")).catch((x) => x);
    expect(missing).toBeInstanceOf(SafetensorsError);
    expect(missing.code).toBe("not-found");
    expect(missing.message).toContain(join(SHARDED, "nope"));
    expect(missing.cause?.code).toBe("ENOENT");
    const open = await openCheckpoint(join(SHARDED, "nope")).catch((x) => x);
    expect(open.code).toBe("not-found");
  });

  it("a single .safetensors path lists that file (and its side files) only", async () => {
    const one = await NodeCheckpointDir.open(join(SHARDED, "model-00002-of-00006.safetensors"));
    expect(one.file).toBe("model-00002-of-00006.safetensors");
    expect(await one.list()).toEqual(["model-00002-of-00006.safetensors"]);
    const ck = await openCheckpointIn(one);
    expect(ck.name).toBe("model-00002-of-00006.safetensors");
    expect(ck.index).toBeNull();
    await ck.close();
  });

  it("range reads: within a tensor, into a caller buffer, counted; outside the tensor is an error", async () => {
    const dir = await NodeCheckpointDir.open(SHARDED);
    const ck = await openCheckpointIn(dir);
    const name = "float64_357";
    const whole = await ck.readBytes(name);
    expect(ck.bytesRead).toBe(whole.length);
    const into = new Uint8Array(64);
    const part = await ck.readRange(name, 16, 40, into);
    expect(part.buffer).toBe(into.buffer);
    expect(part.byteOffset).toBe(0);
    expect(part).toEqual(whole.subarray(16, 56));
    expect(ck.bytesRead).toBe(whole.length + 40);
    expect(dir.bytesRead).toBeGreaterThan(whole.length + 40); // the directory also counts headers
    await expect(ck.readRange(name, whole.length - 8, 9)).rejects.toThrow(
      new RegExp(`tensor "${name}": range ${whole.length - 8}\\+9 is outside its ${whole.length} bytes`),
    );
    await expect(ck.readRange(name, 0, 8, new Uint8Array(4))).rejects.toThrow(/buffer of 4 bytes/);
    await ck.close();
  });
});
