import { SafetensorsError } from "./errors.js";

/** How remote checkpoints are read (see `openRemoteCheckpoint`). */
export interface RemoteOptions {
  /** Sent as `Authorization: Bearer <token>` (a Hugging Face token for gated or private repos). */
  token?: string;
  /** Base URL that `hf://` addresses resolve against (default `https://huggingface.co`). */
  endpoint?: string;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** Requests in flight at once, per checkpoint (default 8). */
  concurrency?: number;
  /** Retries of a request that failed with 429, 5xx, a timeout or a dropped connection (default 5). */
  retries?: number;
  /** A request fails when the server sends nothing for this long, in milliseconds (default 30000). */
  timeoutMs?: number;
  /** Called with the size of every chunk of body bytes received. */
  onFetch?: (bytes: number) => void;
}

/** `RemoteOptions` defaults. */
const DEFAULT_CONCURRENCY = 8;
const DEFAULT_RETRIES = 5;
const DEFAULT_TIMEOUT_MS = 30_000;
/** First backoff delay; each retry doubles it (with jitter), up to `MAX_BACKOFF_MS`. */
const BACKOFF_BASE_MS = 250;
const MAX_BACKOFF_MS = 8_000;
/**
 * Longest `Retry-After` honoured, in ms: a rate-limited server may ask for minutes, but a command
 * that sits silent that long looks hung; after the cap the retry budget decides.
 */
const MAX_RETRY_AFTER_MS = 30_000;

/** Statuses worth retrying: rate limiting and the server's (or a proxy's) transient failures. */
const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** A byte range `[offset, offset + length)` asked for with `Range`. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** What `HttpClient.get` is asked for. */
export interface RequestOptions {
  /** Only these bytes (a 206 answer required). */
  range?: ByteRange;
  /** Only the headers (`HEAD`): `total` from `Content-Length`. */
  head?: boolean;
  /** Largest body accepted without a range (`file-too-large` beyond). */
  maxBytes?: number;
  /** 404/410 read as null instead of a `not-found` error. */
  missingOk?: boolean;
  /** Send the token (default true; false for a URL on another origin than the address). */
  auth?: boolean;
}

/** A successful response, body read. */
export interface Fetched {
  bytes: Uint8Array;
  /** The URL that answered (after redirects). */
  url: string;
  /** Total file size from `Content-Range` (`bytes a-b/total`), or from `Content-Length` of a 200. */
  total: number | null;
}

/** Waiters for one of `limit` slots (FIFO). */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(limit: number) {
    this.free = Math.max(1, Math.floor(limit));
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((res) => this.waiting.push(res));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/** A failure that another attempt may cure; `after` is the server's `Retry-After`, in ms. */
class Transient extends Error {
  constructor(
    readonly error: SafetensorsError,
    readonly after: number | null = null,
  ) {
    super(error.message);
  }
}

/** `Retry-After` as milliseconds (delta-seconds or an HTTP date), or null. */
function retryAfterMs(value: string | null): number | null {
  if (value === null) return null;
  const s = Number(value.trim());
  const ms = Number.isFinite(s) ? s * 1000 : Date.parse(value) - Date.now();
  return Number.isNaN(ms) ? null : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/** `bytes a-b/total` (total may be `*`), or `bytes * /total` of a 416. */
function parseContentRange(v: string | null): { start: number; end: number; total: number | null } | null {
  const m = v && /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(v.trim());
  if (!m) return null;
  const total = m[3] === "*" ? null : Number(m[3]);
  return m[1] === undefined
    ? { start: -1, end: -1, total }
    : { start: Number(m[1]), end: Number(m[2]), total };
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/**
 * The HTTP side of remote reads, shared by every file of one checkpoint: at most `concurrency`
 * requests in flight, each retried on 429/5xx, timeouts and dropped connections with exponential
 * backoff and jitter (the server's `Retry-After` wins when it asks for longer, up to a cap), a
 * timeout on silence (no headers or no body bytes for `timeoutMs`), and the bearer token on
 * every request to the origin of the address (fetch drops it on a cross-origin redirect, as the
 * Fetch standard says). Counts requests and body bytes.
 */
export class HttpClient {
  bytesFetched = 0;
  requests = 0;
  private readonly slots: Slots;
  private readonly fetchFn: typeof fetch;

  constructor(readonly options: RemoteOptions = {}) {
    this.slots = new Slots(options.concurrency ?? DEFAULT_CONCURRENCY);
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function")
      throw new SafetensorsError("unsupported-platform", "no fetch() here: pass RemoteOptions.fetch");
    // Called unbound: browsers reject `fetch` called as a method of another object.
    this.fetchFn = (input, init) => f(input, init);
  }

  /**
   * GET `url` (the `range` of it, when given) and read the body. Returns null for 404/410 when
   * `missingOk`. With a range, only a 206 whose `Content-Range` matches is accepted: a 200 means the
   * server ignores `Range` and would send the whole file, so the body is dropped unread.
   */
  async get(url: string, opts: RequestOptions = {}): Promise<Fetched | null> {
    const retries = this.options.retries ?? DEFAULT_RETRIES;
    for (let attempt = 0; ; attempt++) {
      await this.slots.acquire();
      let wait: number;
      try {
        return await this.attempt(url, opts);
      } catch (e) {
        if (!(e instanceof Transient)) throw e;
        if (attempt >= retries) {
          const tries = retries === 0 ? "" : ` (after ${retries + 1} attempts)`;
          throw new SafetensorsError(e.error.code, `${e.error.message}${tries}`, { cause: e.error.cause });
        }
        const backoff = Math.min(MAX_BACKOFF_MS, BACKOFF_BASE_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
        wait = Math.max(backoff, e.after ?? 0);
      } finally {
        this.slots.release();
      }
      await sleep(wait);
    }
  }

  private async attempt(url: string, opts: RequestOptions): Promise<Fetched | null> {
    const { range, maxBytes = Number.POSITIVE_INFINITY } = opts;
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const controller = new AbortController();
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs);
    };
    const headers: Record<string, string> = {};
    if (range) {
      headers.Range = `bytes=${range.offset}-${range.offset + range.length - 1}`;
      // Byte offsets are into the stored file, not a compressed rendition of it.
      headers["Accept-Encoding"] = "identity";
    }
    if (this.options.token && opts.auth !== false) headers.Authorization = `Bearer ${this.options.token}`;
    const fail = (e: unknown, what: string) =>
      new Transient(
        timedOut
          ? new SafetensorsError("timeout", `${url}: no answer for ${timeoutMs} ms${what}`, { cause: e })
          : new SafetensorsError("read-failed", `${url}: connection failed${what} (${describe(e)})`, {
              cause: e,
            }),
      );
    arm();
    try {
      let res: Response;
      try {
        this.requests++;
        const method = opts.head ? "HEAD" : "GET";
        res = await this.fetchFn(url, { method, headers, signal: controller.signal, redirect: "follow" });
      } catch (e) {
        throw fail(e, "");
      }
      const status = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`;
      const drop = () => controller.abort();
      if (res.status === 404 || res.status === 410) {
        drop();
        if (opts.missingOk) return null;
        throw new SafetensorsError("not-found", `${url}: not found (${status})`);
      }
      if (res.status === 401 || res.status === 403) {
        drop();
        const hint = this.options.token
          ? "the token was refused"
          : "it needs a token: set HF_TOKEN or pass --token (the Hub also answers so for a repository that does not exist)";
        throw new SafetensorsError("unauthorized", `${url}: ${status}: ${hint}`);
      }
      if (RETRY_STATUSES.has(res.status)) {
        drop();
        const err = new SafetensorsError("http-error", `${url}: ${status}`);
        throw new Transient(err, retryAfterMs(res.headers.get("Retry-After")));
      }
      const cr = parseContentRange(res.headers.get("Content-Range"));
      if (range && res.status === 416) {
        drop();
        const size = cr?.total === null || cr === null ? "" : ` (the file has ${cr.total} bytes)`;
        throw new SafetensorsError("read-failed", `${url}: range ${headers.Range} not satisfiable${size}`);
      }
      if (range && res.status === 200) {
        drop();
        throw new SafetensorsError(
          "range-ignored",
          `${url}: server ignores HTTP Range requests; fp8kit will not download the whole file`,
        );
      }
      if (res.status !== (range ? 206 : 200)) {
        drop();
        throw new SafetensorsError("http-error", `${url}: unexpected ${status}`);
      }
      let expected: number | null = null;
      let total: number | null = null;
      if (range) {
        // A browser hides Content-Range unless the server exposes it (CORS); the length check
        // below still holds then. A short read at the end of the file is the caller's to judge.
        if (cr !== null) {
          if (cr.start !== range.offset || cr.end > range.offset + range.length - 1 || cr.end < cr.start) {
            drop();
            throw new SafetensorsError(
              "read-failed",
              `${url}: asked for ${headers.Range}, the server sent ${res.headers.get("Content-Range")}`,
            );
          }
          expected = cr.end - cr.start + 1;
          total = cr.total;
        } else expected = range.length;
      } else {
        const len = res.headers.get("Content-Length");
        if (len !== null && res.headers.get("Content-Encoding") === null) total = Number(len);
        if (total !== null && total > maxBytes) {
          drop();
          throw new SafetensorsError(
            "file-too-large",
            `${url}: ${total} bytes exceeds the limit of ${maxBytes} for a file read whole`,
          );
        }
      }
      if (opts.head) {
        drop();
        return { bytes: new Uint8Array(0), url: res.url || url, total };
      }
      const bytes = await this.readBody(res, url, expected ?? maxBytes, expected !== null, arm, drop).catch(
        (e) => {
          throw e instanceof SafetensorsError && e.code === "file-too-large" ? e : fail(e, " while reading");
        },
      );
      if (expected !== null && bytes.length !== expected) {
        throw new Transient(
          new SafetensorsError("read-failed", `${url}: short body (${bytes.length} of ${expected} bytes)`),
        );
      }
      return { bytes, url: res.url || url, total };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads at most `limit` bytes of `res`'s body, re-arming the silence timer on every chunk. */
  private async readBody(
    res: Response,
    url: string,
    limit: number,
    exact: boolean,
    arm: () => void,
    drop: () => void,
  ): Promise<Uint8Array> {
    if (res.body === null) return new Uint8Array(0);
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arm();
      n += value.length;
      this.bytesFetched += value.length;
      this.options.onFetch?.(value.length);
      if (n > limit) {
        drop();
        if (exact) throw new Error(`the server sent more than the ${limit} bytes asked for`);
        throw new SafetensorsError(
          "file-too-large",
          `${url}: more than the limit of ${limit} bytes for a file read whole`,
        );
      }
      chunks.push(value);
    }
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** An error's message with its cause's code (fetch says only "fetch failed"; the cause says why). */
function describe(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error ? (e.cause as { code?: string; message?: string } | undefined) : undefined;
  const why = cause?.code ?? cause?.message;
  return why && !m.includes(why) ? `${m}: ${why}` : m;
}
