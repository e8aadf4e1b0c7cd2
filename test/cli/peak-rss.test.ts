/**
 * `peakRssBytes` (src/cli/peak-rss.ts), the peak memory `convert --json` and the benchmarks report:
 * a small child of a large parent must report its own peak, not the parent's (getrusage's maxRSS is
 * not reset across spawn on Linux, which made every benchmarked conversion look 530 MiB large).
 * Runs the built module in a child process; the parent holds 400 MB while it runs.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { peakRssBytes } from "../../src/cli/peak-rss.js";
import { ROOT } from "../convert/helpers.js";

const MB = 1e6;

describe.runIf(existsSync("/proc/self/status"))("peakRssBytes", () => {
  it("a small child of a large parent reports its own peak", () => {
    const big = Buffer.alloc(400 * MB, 1);
    expect(peakRssBytes()).toBeGreaterThan(400 * MB);
    const mod = join(ROOT, "dist", "cli", "peak-rss.js");
    const r = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { peakRssBytes } from ${JSON.stringify(mod)}; console.log(peakRssBytes());`,
      ],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    const own = Number(r.stdout);
    expect(big[123]).toBe(1);
    // A bare Node process: tens of MB (getrusage's figure there read 576 MiB under a 600 MB parent).
    expect(own).toBeGreaterThan(10 * MB);
    expect(own).toBeLessThan(150 * MB);
  });
});
