/**
 * Pipes and the demo (issue 10, case 8), with the built CLI (`npm run build` first):
 * - a reader that closes its end of the pipe (`fp8kit inspect ... --json | head -c1`) ends no
 *   command with a stack trace: each exits with the status it has with the pipe open;
 * - `fp8kit demo` (`npm start`) says where it writes and leaves nothing in the temporary directory
 *   when it ends normally, is stopped by SIGINT or SIGTERM (exit 130 / 143, one line), or loses
 *   its stdout.
 * Every demo gets its own TMPDIR, so what it leaves behind is listed, not guessed.
 */
import { spawn } from "node:child_process";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, exists, runCli, SAMPLE, tempDir } from "../convert/helpers.js";

let work: string;

beforeAll(async () => {
  work = await tempDir("fp8kit-pipes-");
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI with its stdout pipe already closed by the reader (the parent destroys its end
 * before the child has started), so every write the command makes fails with EPIPE.
 */
function runClosedStdout(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  child.stdout.destroy();
  return collect(child);
}

function collect(child: ReturnType<typeof spawn>): Promise<Run> {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  return new Promise((res) => child.on("close", (code, signal) => res({ code, signal, stdout, stderr })));
}

/** A fresh, empty directory to be the demo's TMPDIR. */
async function freshTmp(name: string): Promise<string> {
  const d = join(work, name);
  await mkdir(d);
  return d;
}

const NO_CRASH = /EPIPE|node:internal|^\s+at /m;

describe("a closed stdout ends every command quietly", () => {
  const cases: [string, (out: string) => string[]][] = [
    ["--help", () => ["--help"]],
    ["inspect --json", () => ["inspect", SAMPLE, "--json"]],
    ["inspect", () => ["inspect", SAMPLE, "--all"]],
    ["audit --json", () => ["audit", SAMPLE, "--json", "--workers", "0"]],
    ["lint --json", () => ["lint", SAMPLE, "--json"]],
    ["formats", () => ["formats"]],
    ["formats --json", () => ["formats", "--json"]],
    ["convert --json", (out) => ["convert", SAMPLE, out, "--to", "bf16", "--workers", "0", "--json"]],
    ["convert --dry-run", (out) => ["convert", SAMPLE, out, "--to", "bf16", "--dry-run"]],
  ];
  for (const [name, args] of cases) {
    it(`${name}: the exit status it has with the pipe open, no stack trace`, async () => {
      const slug = name.replace(/\W+/g, "-");
      const open = await runCli(args(join(work, `open-${slug}`)));
      const closed = await runClosedStdout(args(join(work, `closed-${slug}`)));
      expect(closed.stderr).not.toMatch(NO_CRASH);
      expect(closed.signal).toBeNull();
      expect(closed.code).toBe(open.code);
      expect(open.code).toBe(0);
    });
  }

  it("convert --json runs to the end: the output is complete", async () => {
    const out = join(work, "closed-convert-complete");
    const r = await runClosedStdout(["convert", SAMPLE, out, "--to", "bf16", "--workers", "0", "--json"]);
    expect(r.code).toBe(0);
    expect(await exists(join(out, "model.safetensors.index.json"))).toBe(true);
  });

  for (const json of [false, true]) {
    it(`demo${json ? " --json" : ""}: exit 0, no stack trace, its temporary directory removed`, async () => {
      const tmp = await freshTmp(`demo-closed-${json}`);
      const r = await runClosedStdout(["demo", ...(json ? ["--json"] : [])], { TMPDIR: tmp });
      expect(r.stderr).not.toMatch(NO_CRASH);
      expect(r.code).toBe(0);
      expect(await readdir(tmp)).toEqual([]);
    });
  }
});

describe("fp8kit demo cleans up on every exit path and says where it writes", () => {
  it("prints its temporary directory first and removes it at the end", async () => {
    const tmp = await freshTmp("demo-ok");
    const r = await runCli(["demo"], { TMPDIR: tmp });
    expect(r.code).toBe(0);
    const m = /^writing to (\S+) \(removed at the end\)$/m.exec(r.stdout.split("\n")[0]);
    expect(m?.[1].startsWith(join(tmp, "fp8kit-demo-"))).toBe(true);
    expect(await readdir(tmp)).toEqual([]);
  });

  it("--keep keeps the converted checkpoints where it said", async () => {
    const tmp = await freshTmp("demo-keep");
    const r = await runCli(["demo", "--keep"], { TMPDIR: tmp });
    expect(r.code).toBe(0);
    const dir = /^writing to (\S+) \(kept at the end\)$/m.exec(r.stdout)?.[1] ?? "";
    expect(dir.startsWith(join(tmp, "fp8kit-demo-"))).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(["bf16", "fp8-ue8m0"]);
    expect(await exists(join(dir, "bf16", "model.safetensors.index.json"))).toBe(true);
  });

  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    it(`${signal} while converting: exit ${code}, one line on stderr, nothing left behind`, async () => {
      const tmp = await freshTmp(`demo-${signal}`);
      const child = spawn(process.execPath, [CLI, "demo"], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, TMPDIR: tmp },
      });
      // The first line is printed once the directory exists, just before the first conversion.
      child.stdout.once("data", () => child.kill(signal));
      const r = await collect(child);
      expect(r.signal).toBeNull();
      expect(r.code).toBe(code);
      expect(r.stderr).toMatch(
        new RegExp(`^fp8kit demo: stopped by ${signal}; removed ${tmp}/fp8kit-demo-\\S+\\n$`),
      );
      expect(await readdir(tmp)).toEqual([]);
    });
  }
});
