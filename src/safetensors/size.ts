import { SafetensorsError } from "./errors.js";

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * Parse a size such as `"5GB"` (5e9), `"500 MB"`, `"1.5GiB"` or `"123"` into bytes. KB/MB/GB/TB
 * are decimal and KiB/MiB/GiB/TiB binary, as in huggingface_hub's `max_shard_size`; units are
 * case-insensitive. A number passes through. The result must be a non-negative safe integer.
 */
export function parseSize(size: string | number): number {
  let bytes: number;
  if (typeof size === "number") {
    bytes = size;
  } else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(size);
    const unit = m ? UNITS[(m[2] || "b").toLowerCase()] : undefined;
    if (!m || unit === undefined) {
      throw new SafetensorsError(
        "invalid-size",
        `invalid size ${JSON.stringify(size)} (expected e.g. "5GB", "500MB", "2GiB")`,
      );
    }
    bytes = Math.round(Number(m[1]) * unit);
  }
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new SafetensorsError(
      "invalid-size",
      `invalid size ${JSON.stringify(size)}: not a non-negative whole number of bytes`,
    );
  }
  return bytes;
}

/** Bytes in decimal units (as the Hub shows sizes): 1.23 GB. */
export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}
