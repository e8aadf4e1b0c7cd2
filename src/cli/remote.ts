/**
 * Remote addresses on the command line (`https://...`, `hf://org/model[@revision]`): the `--token`
 * option, `HF_TOKEN` and `HF_ENDPOINT` read as huggingface_hub reads them, and a progress line on
 * a terminal while bytes arrive.
 */
import type { FetchStats } from "../report/node.js";
import { isRemoteAddress, type RemoteOptions } from "../safetensors/index.js";
import { text } from "./options.js";
import { formatBytes } from "./text-format.js";

/** `--token`, shared by the commands that read checkpoints. */
export const tokenOption = text(
  "TOKEN",
  "bearer token for remote addresses (default: $HF_TOKEN, sent to hf:// and the Hub only)",
);

/** Hosts that get `HF_TOKEN`: the Hub's and `HF_ENDPOINT`'s (never an arbitrary server's). */
function isHubUrl(address: string, endpoint: string | undefined): boolean {
  if (address.startsWith("hf://")) return true;
  const hosts = ["huggingface.co", "hf.co"];
  try {
    if (endpoint) hosts.push(new URL(endpoint).host);
    return hosts.includes(new URL(address).host);
  } catch {
    return false;
  }
}

/** "fetched 1.2 MB in 330 HTTP requests" for a remote result, else null. */
export function fetchedLine(result: object): string | null {
  const r = result as Partial<FetchStats>;
  if (r.bytesFetched === undefined) return null;
  return `fetched ${formatBytes(r.bytesFetched)} in ${r.httpRequests} HTTP requests`;
}

/** Minimum time between two progress lines (ms). */
const PROGRESS_EVERY_MS = 200;

/**
 * How a command reads `path` when it is remote (undefined for local paths), and `done()` to clear
 * the progress line. An explicit `--token` goes to any address; `HF_TOKEN` only to the Hub.
 */
export function remoteOptions(
  path: string,
  token: string | undefined,
): { remote: RemoteOptions | undefined; done: () => void } {
  if (!isRemoteAddress(path)) return { remote: undefined, done: () => {} };
  const endpoint = process.env.HF_ENDPOINT || undefined;
  const envToken = process.env.HF_TOKEN || undefined;
  const remote: RemoteOptions = {
    endpoint,
    token: token ?? (isHubUrl(path, endpoint) ? envToken : undefined),
  };
  if (!process.stderr.isTTY) return { remote, done: () => {} };
  let bytes = 0;
  let shown = 0;
  let last = 0;
  remote.onFetch = (n) => {
    bytes += n;
    const now = Date.now();
    if (now - last < PROGRESS_EVERY_MS) return;
    last = now;
    shown++;
    process.stderr.write(`\rfetching ${path}: ${formatBytes(bytes)}\x1b[K`);
  };
  return {
    remote,
    done: () => {
      if (shown > 0) process.stderr.write("\r\x1b[K");
    },
  };
}
