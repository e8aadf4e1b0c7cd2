/**
 * The commands on remote addresses (issue 14), with the built CLI (`npm run build` first) against a
 * node:http server in this process (test/safetensors/http-server.ts) serving a generated 160-shard
 * DeepSeek-layout checkpoint (index + config) with Range support, the Hub's redirect, injected
 * 429/503 answers and one connection reset:
 * - `inspect --json` over HTTP, and over hf:// with HF_ENDPOINT at the server, equals `inspect
 *   --json` of the local copy (but for `path` and the fetch counters);
 * - the server sent exactly the shard headers (8 + N bytes each, read with plain fs), the index and
 *   config.json, and no byte past a header; the JSON's `bytesFetched` is what the server counted;
 * - `lint` and `audit --sample` agree with the local copy too, and the audit fetched only scales and
 *   sampled rows;
 * - a server that ignores Range: exit 2 naming the URL, the file not downloaded; 401 without a
 *   token, success with --token or HF_TOKEN (which only the Hub gets); convert refuses URLs.
 */
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, tempDir } from "../convert/helpers.js";
import { headerBytes, writeDeepSeekCheckpoint } from "../report/helpers.js";
import { TestServer } from "../safetensors/http-server.js";

let work: string;
let ckpt: string;
let server: TestServer;
const servers: TestServer[] = [];
const INDEX = "model.safetensors.index.json";

beforeAll(async () => {
  work = await tempDir("fp8kit-remote-");
  ckpt = join(work, "ckpt");
  // Shards of one weight (96 KiB) with its scale and maybe the next norm: the embedding and the
  // first norm, then 4 per layer; 40 layers less the last down_proj make 160.
  await writeDeepSeekCheckpoint(ckpt, {
    layers: 40,
    maxShardSize: 98_304 + 600,
    mutate: (ts) => {
      for (const n of ["weight", "weight_scale_inv"])
        ts.splice(
          ts.findIndex((t) => t.name === `model.layers.39.mlp.down_proj.${n}`),
          1,
        );
    },
  });
  server = await start({ faults: { 3: "429", 10: "503", 25: "reset", 40: "503" } });
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await rm(work, { recursive: true, force: true });
});

async function start(options: ConstructorParameters<typeof TestServer>[1] = {}): Promise<TestServer> {
  const s = await new TestServer(ckpt, options).start();
  servers.push(s);
  return s;
}

/**
 * Parsed `--json` output, the input's name replaced by <path>, without the fetch counters. A remote
 * input's suggested commands convert a local copy (`<local copy of URL>`: convert reads local files
 * only) and audit with `--sample`; those are checked, then made the local form.
 */
function comparable(stdout: string): Record<string, unknown> {
  const { path } = JSON.parse(stdout) as { path: string };
  const remote = /^(https?|hf):\/\//.test(path);
  if (remote) expect(stdout).not.toContain(`fp8kit convert ${path} `);
  const text = remote ? stdout.replaceAll(`<local copy of ${path}>`, path) : stdout;
  const { bytesFetched, httpRequests, ...rest } = JSON.parse(text.replaceAll(path, "<path>"));
  return JSON.parse(JSON.stringify(rest).replaceAll("fp8kit audit <path> --sample 4", "fp8kit audit <path>"));
}

const fileSize = (f: string) => readFileSync(join(ckpt, f)).length;
const headerEnd = (f: string) => 8 + Number(readFileSync(join(ckpt, f)).readBigUInt64LE(0));

describe("inspect over HTTP", () => {
  it("is inspect of the local copy, and reads headers, index and config only", async () => {
    const shards = Object.values(JSON.parse(readFileSync(join(ckpt, INDEX), "utf8")).weight_map);
    expect(new Set(shards).size).toBe(160);
    const local = await runCli(["inspect", ckpt, "--json"]);
    expect(local.code).toBe(0);
    const url = `${server.origin}/resolve/main/`;
    const remote = await runCli(["inspect", url, "--json"]);
    expect(remote.stderr).toBe("");
    expect(remote.code).toBe(0);
    expect(comparable(remote.stdout)).toEqual(comparable(local.stdout));
    const out = JSON.parse(remote.stdout);
    expect(out.path).toBe(url);
    expect(server.faultsFired.sort()).toEqual(["429", "503", "503", "reset"]);

    // What the server sent: every shard's 8 + N header bytes, the index and config.json; nothing else.
    const expected = headerBytes(ckpt) + fileSize(INDEX) + fileSize("config.json");
    expect(server.totalBytesSent).toBe(expected);
    expect(out.bytesFetched).toBe(expected);
    for (const r of server.served.filter((r) => r.file.endsWith(".safetensors"))) {
      expect(r.range).not.toBeNull();
      expect(r.range![1]).toBeLessThan(headerEnd(r.file));
    }
    expect(new Set(server.served.filter((r) => r.range).map((r) => r.file)).size).toBe(160);
  });

  it("resolves hf://org/model against HF_ENDPOINT, as huggingface_hub does", async () => {
    const s = await start();
    const local = await runCli(["inspect", ckpt, "--json"]);
    const remote = await runCli(["inspect", "hf://deepseek-ai/DeepSeek-V3.1", "--json"], {
      HF_ENDPOINT: s.origin,
    });
    expect(remote.stderr).toBe("");
    expect(comparable(remote.stdout)).toEqual(comparable(local.stdout));
    expect(JSON.parse(remote.stdout).path).toBe("hf://deepseek-ai/DeepSeek-V3.1");
    const text = await runCli(["inspect", "hf://deepseek-ai/DeepSeek-V3.1@main"], { HF_ENDPOINT: s.origin });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^fetched [\d.]+ \w+ in \d+ HTTP requests$/m);
  });
});

describe("lint and audit over HTTP", () => {
  it("lint gives the local copy's findings", async () => {
    const s = await start({ faults: { 7: "503" } });
    const local = await runCli(["lint", ckpt, "--json"]);
    const remote = await runCli(["lint", `${s.origin}/files/${INDEX}`, "--json"]);
    expect(remote.code).toBe(local.code);
    expect(comparable(remote.stdout)).toEqual(comparable(local.stdout));
  });

  it("audit --sample reads the scales and the sampled blocks' rows only", async () => {
    const s = await start();
    const args = ["--sample", "2", "--seed", "5", "--json", "--include", "model.layers.1?.mlp.**"];
    const local = await runCli(["audit", ckpt, ...args]);
    const remote = await runCli(["audit", `${s.origin}/files/`, ...args]);
    expect(remote.stderr).toBe("");
    expect(comparable(remote.stdout)).toEqual(comparable(local.stdout));
    const audited = JSON.parse(local.stdout).tensors as { data: string; scale: string }[];
    expect(audited.length).toBe(20);
    const ix = JSON.parse(readFileSync(join(ckpt, INDEX), "utf8")).weight_map as Record<string, string>;
    // Past the headers: at most 2 blocks of 128 x 128 codes per weight, plus whole scale tensors.
    // (384 x 256 and 256 x 384 weights: 3 x 2 or 2 x 3 F32 scales.)
    const scaleBytes = audited.length * 6 * 4;
    const dataBytes = s.served
      .filter((r) => r.range && r.range[1] >= headerEnd(r.file))
      .reduce((n, r) => n + r.range![1] - r.range![0] + 1, 0);
    expect(dataBytes).toBeGreaterThan(0);
    expect(dataBytes).toBeLessThanOrEqual(audited.length * 2 * 128 * 128 + scaleBytes);
    const weightBytes = audited.reduce((n, t) => n + fileSize(ix[t.data]) - headerEnd(ix[t.data]), 0);
    // Each weight holds 6 blocks; 2 were read.
    expect(dataBytes).toBeLessThan(weightBytes / 2);
  });

  it("audit and report of a remote checkpoint need --sample", async () => {
    const r = await runCli(["audit", `${server.origin}/files/`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/downloads every weight; pass --sample N/);
  });
});

describe("refusals", () => {
  it("a server that ignores Range: exit 2 naming the URL, nothing downloaded", async () => {
    const s = await start({ ignoreRange: true, hugeBytes: 512 << 20 });
    const url = `${s.origin}/files/${INDEX}`;
    const r = await runCli(["inspect", url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(
        `${s.origin}/files/model-\\S+\\.safetensors: server ignores HTTP Range requests; fp8kit will not download the whole file`,
      ),
    );
    expect(r.stderr).not.toMatch(/at .*\.js/);
    expect(s.hugeSent).toBeLessThan(64 << 20);
  });

  it("401 without a token; --token or HF_TOKEN (for the Hub only) gets in", async () => {
    const s = await start({ token: "hf_test" });
    const shard = "model-00001-of-00160.safetensors";
    const url = `${s.origin}/files/${shard}`;
    const none = await runCli(["inspect", url], { HF_TOKEN: "" });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`${s.origin}/files/`);
    expect(none.stderr).toMatch(/HTTP 401.*set HF_TOKEN or pass --token/);
    // HF_TOKEN is not sent to an arbitrary server...
    const env = await runCli(["inspect", url], { HF_TOKEN: "hf_test" });
    expect(env.code).toBe(2);
    expect(s.authorizations.length).toBeGreaterThan(0);
    expect(s.authorizations.every((a) => a === undefined)).toBe(true);
    // ...but --token is, and HF_TOKEN is for hf:// on HF_ENDPOINT.
    expect((await runCli(["inspect", url, "--token", "hf_test"])).code).toBe(0);
    const hub = await runCli(["inspect", `hf://org/model/${shard}`], {
      HF_TOKEN: "hf_test",
      HF_ENDPOINT: s.origin,
    });
    expect(hub.stderr).toBe("");
    expect(hub.code).toBe(0);
  });

  it("convert stays local", async () => {
    const r = await runCli(["convert", `${server.origin}/files/`, join(work, "out"), "--to", "mxfp8"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/convert reads and writes local files only/);
  });
});
