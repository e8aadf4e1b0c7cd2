/**
 * The process's peak resident memory, worker threads included. Read from `VmHWM` in
 * /proc/self/status where it exists (Linux): `process.resourceUsage().maxRSS` (getrusage) is not
 * reset when a process is spawned, so a child of a large parent reports at least the parent's peak
 * (a 39 MiB child of a 600 MB parent reads 576 MiB there). Elsewhere, getrusage's figure.
 */
import { readFileSync } from "node:fs";

export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // no procfs: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}
