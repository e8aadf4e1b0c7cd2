import { type CheckpointDir, checkSideFileSize, SINGLE_FILE_SIDE_FILES } from "./checkpoint-dir.js";
import { SafetensorsError } from "./errors.js";
import { HttpClient, type RemoteOptions } from "./http-client.js";
import { checkShardName, INDEX_FILE_NAME, parseIndexJson } from "./index-json.js";
import { HEADER_LENGTH_BYTES, MAX_INDEX_SIZE } from "./limits.js";
import { type ByteSource, checkRange } from "./source.js";

export type { RemoteOptions } from "./http-client.js";

/** Where `hf://` addresses resolve when `RemoteOptions.endpoint` is not set (huggingface_hub's default). */
export const HF_DEFAULT_ENDPOINT = "https://huggingface.co";

/**
 * Side files a remote folder is probed for (it cannot be listed): those the readers above look
 * at, the single-file ones plus Ascend's `quant_model_description.json`. Others are fetched when
 * asked for (`readBytes`).
 */
const FOLDER_SIDE_FILES = [...SINGLE_FILE_SIDE_FILES, "quant_model_description.json"];

const origin = (url: string) => new URL(url).origin;

/**
 * A remote file read with HTTP Range requests (`Range: bytes=a-b`, one request per `read`). `open`
 * asks for the first 8 bytes (the header length, kept) and takes the size from `Content-Range`
 * (or a HEAD's `Content-Length` where a browser hides it). Only a 206 with the range asked for is
 * accepted: a server that answers 200 ignores `Range`, and its body is dropped unread (a
 * `range-ignored` error) rather than downloading a whole shard. After a redirect (the Hub sends
 * each file to a CDN) reads go straight to the final URL, without the token when it is on another
 * origin, falling back to the address when that URL stops working (signed URLs expire).
 */
export class HttpSource implements ByteSource {
  private resolved: string | null;

  /** Use `HttpSource.open`. */
  constructor(
    readonly url: string,
    readonly name: string,
    readonly size: number,
    private readonly client: HttpClient,
    private readonly head: Uint8Array,
    resolved: string,
  ) {
    this.resolved = resolved === url ? null : resolved;
  }

  /** Open `url` (its own requests; a checkpoint's files share `openRemoteCheckpoint`'s). */
  static open(url: string, options: RemoteOptions = {}, name?: string): Promise<HttpSource> {
    return openHttpSource(new HttpClient(options), url, name ?? fileNameOf(url));
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    if (offset + length <= this.head.length) return this.head.subarray(offset, offset + length);
    if (length === 0) return new Uint8Array(0);
    const range = { offset, length };
    let got: Uint8Array;
    try {
      got = await this.get(this.resolved ?? this.url, range);
    } catch (e) {
      const stale =
        e instanceof SafetensorsError && ["unauthorized", "not-found", "http-error"].includes(e.code);
      if (this.resolved === null || !stale) throw e;
      this.resolved = null;
      got = await this.get(this.url, range);
    }
    if (got.length !== length)
      throw new SafetensorsError(
        "read-failed",
        `${this.url}: short read at ${offset} (${got.length} of ${length})`,
      );
    return got;
  }

  private async get(url: string, range: { offset: number; length: number }): Promise<Uint8Array> {
    const r = await this.client.get(url, { range, auth: origin(url) === origin(this.url) });
    return (r as NonNullable<typeof r>).bytes;
  }
}

/** Opens `url` through `client`: the first bytes and the size in one request. */
async function openHttpSource(client: HttpClient, url: string, name: string): Promise<HttpSource> {
  const first = await client.get(url, { range: { offset: 0, length: HEADER_LENGTH_BYTES } });
  if (first === null) throw new SafetensorsError("not-found", `${url}: not found`);
  let size = first.total;
  if (size === null) size = (await client.get(url, { head: true }))?.total ?? null;
  if (size === null || !Number.isSafeInteger(size))
    throw new SafetensorsError("read-failed", `${url}: the server does not say how large the file is`);
  return new HttpSource(url, name, size, client, first.bytes, first.url);
}

/** The last path segment of a URL, decoded. */
function fileNameOf(url: string): string {
  const path = new URL(url).pathname;
  return decodeURIComponent(path.slice(path.lastIndexOf("/") + 1)) || url;
}

/** A remote address resolved: the folder URL (ending in `/`) and the file it names, if any. */
export interface RemoteAddress {
  folder: string;
  /** A single `.safetensors` file the address names, or null. */
  file: string | null;
  /** An index file the address names, or null. */
  indexFile: string | null;
  /** The URL of the file named (its query string kept: it may be a signed URL), or null. */
  fileUrl: string | null;
  /** For messages: `org/model[@revision]` or the folder's last path segment. */
  name: string;
}

/** True for the addresses `openRemoteCheckpoint` takes (`http://`, `https://`, `hf://`). */
export function isRemoteAddress(address: string): boolean {
  return /^(?:https?|hf):\/\//i.test(address);
}

/**
 * Resolves a remote address: a URL to a folder, to an index (`*.index.json`) or to one
 * `.safetensors` file; or `hf://org/model[@revision][/path]`, which becomes
 * `<endpoint>/org/model/resolve/<revision, default main>/<path>` as huggingface_hub builds file URLs
 * (a revision with `/`, such as `refs/pr/1`, is written URL-encoded: `@refs%2Fpr%2F1`). A Hub page
 * URL on the endpoint's host (`/org/model`, `/org/model/tree/<rev>/...`, `.../blob/<rev>/...`) is
 * read as the same `resolve` URL.
 */
export function resolveRemoteAddress(address: string, endpoint = HF_DEFAULT_ENDPOINT): RemoteAddress {
  const base = endpoint.replace(/\/+$/, "");
  const bad = (why: string) => new SafetensorsError("invalid-argument", `${address}: ${why}`);
  const hub = (repo: string, rev: string | null, path: string, name: string) =>
    split(`${base}/${repo}/resolve/${encodeURIComponent(rev ?? "main")}/${path}`, name);
  const hf = /^hf:\/\/([^/@]+\/[^/@]+)(?:@([^/]+))?(?:\/(.*))?$/i.exec(address);
  if (/^hf:/i.test(address)) {
    if (!hf) throw bad("expected hf://org/model[@revision][/path]");
    const rev = hf[2] === undefined ? null : decodeURIComponent(hf[2]);
    return hub(hf[1], rev, hf[3] ?? "", `${hf[1]}${rev === null ? "" : `@${rev}`}`);
  }
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw bad("not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw bad("only http(s) and hf:// addresses are read");
  url.hash = "";
  const hubHosts = new Set(["huggingface.co", "hf.co", new URL(base).host]);
  const page = /^\/([^/]+\/[^/]+?)(?:\/(?:tree|blob)\/([^/]+)(?:\/(.*))?)?\/?$/.exec(url.pathname);
  if (hubHosts.has(url.host) && page && url.search === "")
    return hub(page[1], page[2] === undefined ? null : decodeURIComponent(page[2]), page[3] ?? "", page[1]);
  return split(url.href, null);
}

/** Splits a resolved URL into its folder and the file it names. */
function split(href: string, name: string | null): RemoteAddress {
  const url = new URL(href);
  const path = url.pathname;
  const last = decodeURIComponent(path.slice(path.lastIndexOf("/") + 1));
  const isFile = last.endsWith(".safetensors") || last.endsWith(".index.json");
  const folderPath = isFile ? path.slice(0, path.lastIndexOf("/") + 1) : path.replace(/\/*$/, "/");
  const folder = `${url.origin}${folderPath}`;
  const segments = folderPath.split("/").filter(Boolean);
  return {
    folder,
    file: isFile && last.endsWith(".safetensors") ? last : null,
    indexFile: isFile && last.endsWith(".index.json") ? last : null,
    fileUrl: isFile ? url.href : null,
    name: name ?? decodeURIComponent(segments[segments.length - 1] ?? url.host),
  };
}

/**
 * A checkpoint folder on an HTTP(S) server, read with Range requests; no listing API is needed.
 * `list()` names the index (its `weight_map` gives the shards) or else `model.safetensors`, or the
 * one file the address named, and the side files that exist (found by asking for them: config.json,
 * hf_quant_config.json, quant_model_description.json). Every other file is fetched when asked for;
 * a 404 reads as a missing file. All requests share one `HttpClient` (concurrency, retries,
 * timeout, token); `bytesFetched` and `requests` count them.
 */
export class HttpCheckpointDir implements CheckpointDir {
  readonly name: string;
  /** The folder URL (ends with `/`). */
  readonly url: string;
  private files: string[] = [];
  /** Side files read (null: not there). */
  private readonly side = new Map<string, Uint8Array | null>();
  /** Sources opened while discovering, handed out by the next `open`. */
  private readonly probed = new Map<string, HttpSource>();

  /** Use `openRemoteCheckpoint`. */
  constructor(
    readonly address: RemoteAddress,
    private readonly client: HttpClient,
  ) {
    this.name = address.name;
    this.url = address.folder;
  }

  /** Body bytes received so far (side files, headers, tensor ranges). */
  get bytesFetched(): number {
    return this.client.bytesFetched;
  }

  /** HTTP requests made so far (each retry and each probe counts). */
  get requests(): number {
    return this.client.requests;
  }

  /** The URL of `file` in this folder. */
  urlOf(file: string): string {
    const { fileUrl } = this.address;
    if (fileUrl !== null && file === (this.address.file ?? this.address.indexFile)) return fileUrl;
    return `${this.url}${encodeURIComponent(file)}`;
  }

  /** Finds the files `list()` returns (see the class comment). */
  async discover(): Promise<void> {
    const { file, indexFile } = this.address;
    const sides = file ? SINGLE_FILE_SIDE_FILES : FOLDER_SIDE_FILES;
    const indexName = file ? null : (indexFile ?? INDEX_FILE_NAME);
    const [index] = await Promise.all([
      indexName === null ? null : this.readBytes(indexName),
      ...sides.map((f) => this.readBytes(f)),
    ]);
    const present = sides.filter((f) => this.side.get(f));
    let main: string[];
    if (file !== null) {
      this.probed.set(file, await this.openSource(file));
      main = [file];
    } else if (index) {
      let shards: string[] = [];
      try {
        shards = parseIndexJson(new TextDecoder().decode(index), indexName!).shards;
      } catch (e) {
        // A broken default index stays listed, for lint to report; a named one is the input.
        if (indexName !== INDEX_FILE_NAME) throw e;
      }
      main = [indexName!, ...shards];
    } else if (indexFile !== null) {
      throw new SafetensorsError("not-found", `${this.urlOf(indexFile)}: not found`);
    } else {
      const single = "model.safetensors";
      const src = await this.openSource(single).catch((e) => {
        if (!(e instanceof SafetensorsError && e.code === "not-found")) throw e;
        throw new SafetensorsError(
          "not-found",
          `${this.url}: neither ${INDEX_FILE_NAME} nor ${single} is there (a remote folder cannot be listed: give the URL of the index or of the .safetensors file)`,
        );
      });
      this.probed.set(single, src);
      main = [single];
    }
    this.files = [...new Set([...main, ...present])].sort();
  }

  async list(): Promise<string[]> {
    return [...this.files];
  }

  async readBytes(file: string, maxBytes = MAX_INDEX_SIZE): Promise<Uint8Array | null> {
    checkShardName(file, this.name);
    let bytes = this.side.get(file);
    if (bytes === undefined) {
      bytes = (await this.client.get(this.urlOf(file), { maxBytes, missingOk: true }))?.bytes ?? null;
      this.side.set(file, bytes);
    }
    if (bytes !== null) checkSideFileSize(file, bytes.length, maxBytes);
    return bytes;
  }

  async readText(file: string, maxBytes?: number): Promise<string | null> {
    const bytes = await this.readBytes(file, maxBytes);
    return bytes === null ? null : new TextDecoder().decode(bytes);
  }

  async open(file: string): Promise<ByteSource> {
    checkShardName(file, this.name);
    const probed = this.probed.get(file);
    if (probed) {
      this.probed.delete(file);
      return probed;
    }
    return this.openSource(file);
  }

  private openSource(file: string): Promise<HttpSource> {
    return openHttpSource(this.client, this.urlOf(file), file);
  }
}

/**
 * Opens a remote checkpoint for the readers of fp8kit (inspect, lint, audit, the report, a
 * `Checkpoint` through `openCheckpointIn`): `address` is a folder URL (`https://host/path/`, the
 * slash optional), the URL of an index (`*.safetensors.index.json`) or of one `.safetensors` file,
 * or `hf://org/model[@revision][/path]` (see `resolveRemoteAddress`; `options.endpoint` replaces
 * `https://huggingface.co`, as `HF_ENDPOINT` does for huggingface_hub). Reads the index, or probes
 * `model.safetensors`, and the side files; shard headers and tensor ranges are read when asked.
 */
export async function openRemoteCheckpoint(
  address: string,
  options: RemoteOptions = {},
): Promise<HttpCheckpointDir> {
  const dir = new HttpCheckpointDir(resolveRemoteAddress(address, options.endpoint), new HttpClient(options));
  await dir.discover();
  return dir;
}
