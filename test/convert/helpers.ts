import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "../..");
export const SAMPLE = join(ROOT, "sample", "deepseek-v3-tiny");
export const CLI = join(ROOT, "dist", "cli", "main.js");
/** Test-only runner that converts like cli.test.ts's ARGS and SIGKILLs itself after N tensors. */
export const KILL_AFTER = join(ROOT, "test", "convert", "kill-after.mjs");

export function tempDir(prefix = "fp8kit-test-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Run the built CLI; never throws. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return runNode([CLI, ...args], env);
}

/** Run a Node script (`args[0]`) with arguments; never throws. */
export function runNode(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      args,
      { env: { ...process.env, ...env }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number; signal?: string }) | null;
        res({
          code: e ? (typeof e.code === "number" ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}

/** sha256 of every file under `dir` (relative name -> hash), hidden files included. */
export async function hashTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p, `${rel}${e.name}/`);
      else
        out[`${rel}${e.name}`] = createHash("sha256")
          .update(await readFile(p))
          .digest("hex");
    }
  };
  await walk(dir, "");
  return out;
}

export async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
