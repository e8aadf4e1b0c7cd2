/** Small helpers shared by the benchmarks: medians of repeated timings and a plain table printer. */
import { peakRssBytes } from "../src/cli/peak-rss.js";

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs `fn` `runs` times (after one warm-up unless `warmup` is 0) and returns each run's seconds. */
export function timeRuns(fn: () => void, runs = 3, warmup = 1): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return out;
}

export async function timeRunsAsync(fn: () => Promise<void>, runs = 3, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return out;
}

export function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => (r[k] ?? "").length)));
  const line = (r: string[]) =>
    r.map((c, k) => (k === 0 ? c.padEnd(widths[k]) : c.padStart(widths[k]))).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
}

export function rate(n: number, seconds: number): string {
  const r = n / seconds;
  return r >= 1e9 ? `${(r / 1e9).toFixed(2)} G/s` : `${(r / 1e6).toFixed(0)} M/s`;
}

export function peakRssMB(): number {
  return peakRssBytes() / 2 ** 20;
}
