/**
 * Remote reads (issue 14) at the library level, against a node:http server in this process
 * (http-server.ts): ranges read through `HttpSource` equal the file's bytes; a checkpoint opened
 * by URL equals the same checkpoint opened from disk; 429/503/connection resets are retried; a
 * server that ignores `Range` is refused without downloading; 401 wants a token; a silent server
 * fails within the timeout; addresses resolve as huggingface_hub builds URLs.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpSource, openRemoteCheckpoint, resolveRemoteAddress, SafetensorsError } from "../../src/index.js";
import { openCheckpointIn } from "../../src/safetensors/index.js";
import { openCheckpoint } from "../../src/safetensors/node.js";
import { writeDeepSeekCheckpoint } from "../report/helpers.js";
import { type ServerOptions, TestServer } from "./http-server.js";

let dir: string;
const servers: TestServer[] = [];
const serve = async (options: ServerOptions = {}, root: string | null = dir) => {
  const s = await new TestServer(root, options).start();
  servers.push(s);
  return s;
};
const SHARD = "model-00001-of-00002.safetensors";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fp8kit-http-"));
  await writeDeepSeekCheckpoint(dir, { layers: 2, maxShardSize: 500_000 });
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await rm(dir, { recursive: true, force: true });
});

/** The rejection of `p`, which must reject. */
async function failure(p: Promise<unknown>): Promise<SafetensorsError> {
  const e = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(e).toBeInstanceOf(SafetensorsError);
  return e as SafetensorsError;
}

describe("HttpSource", () => {
  it("reads any range as the file holds it, one Range request each", async () => {
    const s = await serve();
    const file = readFileSync(join(dir, SHARD));
    const src = await HttpSource.open(`${s.origin}/files/${SHARD}`);
    expect(src.size).toBe(file.length);
    expect(src.name).toBe(SHARD);
    for (const [o, n] of [
      [0, 8],
      [3, 100],
      [file.length - 17, 17],
      [1000, 0],
    ])
      expect(Buffer.from(await src.read(o, n))).toEqual(file.subarray(o, o + n));
    // The first 8 bytes came with the size probe; the empty read asked nothing.
    expect(s.served.map((r) => r.range)).toEqual([
      [0, 7],
      [3, 102],
      [file.length - 17, file.length - 1],
    ]);
    await expect(src.read(file.length - 1, 2)).rejects.toThrow(/runs past the end/);
  });

  it("follows a redirect and reads from where it led", async () => {
    const s = await serve();
    const src = await HttpSource.open(`${s.origin}/org/model/resolve/main/${SHARD}`);
    await src.read(8, 16);
    expect(s.served.map((r) => r.range)).toEqual([
      [0, 7],
      [8, 23],
    ]);
    // One redirect for the probe; the second read went straight to /files/.
    expect(s.requests).toBe(3);
  });
});

describe("openRemoteCheckpoint", () => {
  it("gives the checkpoint the disk gives, through 429, 503 and a connection reset", async () => {
    const s = await serve({ faults: { 2: "429", 5: "503", 9: "reset", 12: "503" } });
    const remote = await openRemoteCheckpoint(`${s.origin}/resolve/main`, { concurrency: 2 });
    expect(await remote.list()).toEqual(
      ["config.json", "model.safetensors.index.json", ...shardsOf(dir)].sort(),
    );
    const viaHttp = await openCheckpointIn(remote);
    const local = await openCheckpoint(dir);
    expect(viaHttp.tensors).toEqual(local.tensors);
    const name = "model.layers.1.mlp.down_proj.weight_scale_inv";
    expect(await viaHttp.readBytes(name)).toEqual(await local.readBytes(name));
    expect(s.faultsFired.sort()).toEqual(["429", "503", "503", "reset"]);
    expect(remote.bytesFetched).toBe(s.totalBytesSent);
    // Every request reached the server (the reset one too); redirects count as one fetch each.
    expect(remote.requests).toBeLessThanOrEqual(s.requests);
  });

  it("opens a single .safetensors URL with its side files", async () => {
    const s = await serve();
    const remote = await openRemoteCheckpoint(`${s.origin}/files/${SHARD}`);
    expect(await remote.list()).toEqual(["config.json", SHARD]);
    expect(await remote.readText("generation_config.json")).toBeNull();
    expect(JSON.parse((await remote.readText("config.json"))!).num_hidden_layers).toBe(2);
  });

  it("refuses a folder with neither an index nor model.safetensors, naming the URL", async () => {
    const s = await serve({}, null);
    const e = await failure(openRemoteCheckpoint(`${s.origin}/files/`));
    expect(e.code).toBe("not-found");
    expect(e.message).toContain(`${s.origin}/files/`);
  });

  it("refuses a server that ignores Range, without downloading the file", async () => {
    const s = await serve({ ignoreRange: true, hugeBytes: 512 << 20 });
    const e = await failure(openRemoteCheckpoint(`${s.origin}/files/${SHARD}`));
    expect(e.code).toBe("range-ignored");
    expect(e.message).toBe(
      `${s.origin}/files/${SHARD}: server ignores HTTP Range requests; fp8kit will not download the whole file`,
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(s.hugeClosedEarly).toBe(true);
    expect(s.hugeSent).toBeLessThan(64 << 20);
  });

  it("asks for a token on 401 and sends it when given", async () => {
    const s = await serve({ token: "sekrit" });
    const e = await failure(openRemoteCheckpoint(`${s.origin}/files/`));
    expect(e.code).toBe("unauthorized");
    expect(e.message).toMatch(/HTTP 401.*HF_TOKEN or pass --token/);
    const remote = await openRemoteCheckpoint(`${s.origin}/files/`, { token: "sekrit" });
    expect((await openCheckpointIn(remote)).shards).toEqual(shardsOf(dir));
    const wrong = await failure(openRemoteCheckpoint(`${s.origin}/files/`, { token: "nope" }));
    expect(wrong.message).toContain("the token was refused");
  });

  it("gives up on a server that never answers within the timeout", async () => {
    const s = await serve({ hang: true });
    const t0 = Date.now();
    const e = await failure(openRemoteCheckpoint(`${s.origin}/files/`, { timeoutMs: 300, retries: 1 }));
    const took = Date.now() - t0;
    expect(e.code).toBe("timeout");
    expect(e.message).toContain(`${s.origin}/files/`);
    // Two attempts of 300 ms and one backoff of at most 250 ms, on each of the parallel probes.
    expect(took).toBeGreaterThanOrEqual(600);
    expect(took).toBeLessThan(2500);
  });

  it("stops retrying a server that keeps failing, naming the status", async () => {
    const faults = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [i + 1, "503" as const]));
    const s = await serve({ faults });
    const e = await failure(HttpSource.open(`${s.origin}/files/${SHARD}`, { retries: 2 }));
    expect(e.code).toBe("http-error");
    expect(e.message).toBe(`${s.origin}/files/${SHARD}: HTTP 503 Service Unavailable (after 3 attempts)`);
    expect(s.requests).toBe(3);
  });
});

describe("resolveRemoteAddress", () => {
  it("builds huggingface_hub's resolve URLs", () => {
    expect(resolveRemoteAddress("hf://deepseek-ai/DeepSeek-V3.1")).toEqual({
      folder: "https://huggingface.co/deepseek-ai/DeepSeek-V3.1/resolve/main/",
      file: null,
      indexFile: null,
      fileUrl: null,
      name: "deepseek-ai/DeepSeek-V3.1",
    });
    expect(resolveRemoteAddress("hf://org/m@refs%2Fpr%2F1/sub/model.safetensors", "http://h:1/")).toEqual({
      folder: "http://h:1/org/m/resolve/refs%2Fpr%2F1/sub/",
      file: "model.safetensors",
      indexFile: null,
      fileUrl: "http://h:1/org/m/resolve/refs%2Fpr%2F1/sub/model.safetensors",
      name: "org/m@refs/pr/1",
    });
    expect(resolveRemoteAddress("https://huggingface.co/org/m/tree/v2").folder).toBe(
      "https://huggingface.co/org/m/resolve/v2/",
    );
    expect(resolveRemoteAddress("https://huggingface.co/org/m").folder).toBe(
      "https://huggingface.co/org/m/resolve/main/",
    );
    const ix = resolveRemoteAddress("https://example.com/a/b/x.safetensors.index.json?sig=1");
    expect(ix).toMatchObject({ folder: "https://example.com/a/b/", indexFile: "x.safetensors.index.json" });
    expect(ix.fileUrl).toBe("https://example.com/a/b/x.safetensors.index.json?sig=1");
    expect(resolveRemoteAddress("https://example.com/a/b").folder).toBe("https://example.com/a/b/");
    expect(() => resolveRemoteAddress("hf://just-a-name")).toThrow(/hf:\/\/org\/model/);
  });
});

function shardsOf(d: string): string[] {
  const ix = JSON.parse(readFileSync(join(d, "model.safetensors.index.json"), "utf8"));
  return [...new Set(Object.values(ix.weight_map as Record<string, string>))].sort();
}
