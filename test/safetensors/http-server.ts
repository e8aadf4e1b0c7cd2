/**
 * A small HTTP file server for the remote-read tests, on 127.0.0.1 inside the test process: serves
 * the files of one folder at `/files/<name>` with single-range `Range` support (206 +
 * `Content-Range`), redirects the Hub-style paths `/<org>/<model>/resolve/<rev>/<name>` and
 * `/resolve/main/<name>` there, and counts, per file, the body bytes it sent and every range asked
 * for. Faults are injected by request number (429 with `Retry-After: 0`, 503, a connection reset),
 * and it can require a bearer token, ignore `Range` (answer 200 with the whole, huge body), or
 * never answer. Written here, independent of src/.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export type Fault = "429" | "503" | "reset";

export interface ServerOptions {
  /** Fault for the n-th request (1-based, counting every request), or none. */
  faults?: Record<number, Fault>;
  /** Answer 401 unless `Authorization: Bearer <token>`. */
  token?: string;
  /** Answer every Range request with 200 and `hugeBytes` bytes of zeros. */
  ignoreRange?: boolean;
  hugeBytes?: number;
  /** Accept connections and never answer. */
  hang?: boolean;
}

export interface Served {
  file: string;
  /** [start, end] inclusive, or null for a whole-file GET. */
  range: [number, number] | null;
  status: number;
  authorization: string | undefined;
}

export class TestServer {
  readonly served: Served[] = [];
  /** Body bytes sent per file. */
  readonly bytesSent = new Map<string, number>();
  /** Faults that fired. */
  readonly faultsFired: Fault[] = [];
  /** Body bytes the range-ignoring server got out before the client hung up. */
  hugeSent = 0;
  hugeClosedEarly = false;
  requests = 0;
  /** The `Authorization` header of every request, in order. */
  readonly authorizations: (string | undefined)[] = [];
  private readonly files = new Map<string, Buffer>();
  private server!: Server;
  port = 0;

  constructor(
    root: string | null,
    private readonly options: ServerOptions = {},
  ) {
    if (root !== null) for (const f of readdirSync(root)) this.files.set(f, readFileSync(join(root, f)));
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((res) => this.server.listen(0, "127.0.0.1", res));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((res) => this.server.close(res));
  }

  get totalBytesSent(): number {
    return [...this.bytesSent.values()].reduce((a, b) => a + b, 0);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const n = ++this.requests;
    this.authorizations.push(req.headers.authorization);
    if (this.options.hang) return;
    const fault = this.options.faults?.[n];
    if (fault) {
      this.faultsFired.push(fault);
      if (fault === "reset") {
        req.socket.destroy();
        return;
      }
      res.writeHead(Number(fault), fault === "429" ? { "Retry-After": "0" } : {});
      res.end();
      return;
    }
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (this.options.token && req.headers.authorization !== `Bearer ${this.options.token}`) {
      res.writeHead(401);
      res.end();
      return;
    }
    if (this.options.ignoreRange && req.headers.range !== undefined) {
      this.huge(res);
      return;
    }
    const hub = /^\/(?:[^/]+\/[^/]+\/)?resolve\/[^/]+\/(.+)$/.exec(path);
    if (hub) {
      res.writeHead(302, { Location: `/files/${encodeURIComponent(hub[1])}` });
      res.end();
      return;
    }
    const m = /^\/files\/([^/]+)$/.exec(path);
    const body = m ? this.files.get(m[1]) : undefined;
    if (!m || body === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    const file = m[1];
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    const record = (r: [number, number] | null, status: number, sent: number) => {
      this.served.push({ file, range: r, status, authorization: req.headers.authorization });
      this.bytesSent.set(file, (this.bytesSent.get(file) ?? 0) + sent);
    };
    if (req.headers.range !== undefined && range) {
      const start = Number(range[1]);
      const end = Math.min(Number(range[2]), body.length - 1);
      if (start >= body.length) {
        res.writeHead(416, { "Content-Range": `bytes */${body.length}` });
        res.end();
        record([start, Number(range[2])], 416, 0);
        return;
      }
      const part = body.subarray(start, end + 1);
      res.writeHead(206, {
        "Content-Range": `bytes ${start}-${end}/${body.length}`,
        "Content-Length": part.length,
        "Accept-Ranges": "bytes",
      });
      res.end(req.method === "HEAD" ? undefined : part);
      record([start, end], 206, req.method === "HEAD" ? 0 : part.length);
      return;
    }
    res.writeHead(200, { "Content-Length": body.length });
    res.end(req.method === "HEAD" ? undefined : body);
    record(null, 200, req.method === "HEAD" ? 0 : body.length);
  }

  /** 200 and `hugeBytes` of zeros in 64 KiB writes, counting what the socket accepted. */
  private huge(res: ServerResponse): void {
    const total = this.options.hugeBytes ?? 256 << 20;
    const chunk = Buffer.alloc(64 << 10);
    res.writeHead(200, { "Content-Length": total });
    let sent = 0;
    res.on("close", () => {
      if (sent < total) this.hugeClosedEarly = true;
    });
    const pump = () => {
      while (sent < total && !res.destroyed) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        this.hugeSent += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          res.once("drain", pump);
          return;
        }
      }
      if (sent >= total) res.end();
    };
    pump();
  }
}
