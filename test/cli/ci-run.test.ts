/**
 * .ci/run (issue 10, case 10): the "N passed, N failed" line is printed whether the tests pass or
 * fail, and the script exits with the tests' status. The script runs for real, with `npm` and
 * `chromium` stubbed on PATH: `npm ci` does nothing, `npm test` prints a vitest summary and exits
 * with the status asked for.
 */
import { execFile } from "node:child_process";
import { chmod, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, tempDir } from "../convert/helpers.js";

let stubs: string;

beforeAll(async () => {
  stubs = await tempDir("fp8kit-ci-run-");
  const npm = `#!/bin/sh
# npm ci, npm install: nothing to do. npm test: the summary in $STUB_SUMMARY, exit $STUB_STATUS.
if [ "$1" = test ]; then
  echo "> fp8kit@0.1.0 test"
  printf '%b' "$STUB_SUMMARY"
  exit "$STUB_STATUS"
fi
exit 0
`;
  await writeFile(join(stubs, "npm"), npm);
  await writeFile(join(stubs, "chromium"), "#!/bin/sh\nexit 0\n");
  await chmod(join(stubs, "npm"), 0o755);
  await chmod(join(stubs, "chromium"), 0o755);
});

afterAll(async () => {
  await rm(stubs, { recursive: true, force: true });
});

function ciRun(summary: string, status: number): Promise<{ code: number | null; stdout: string }> {
  const env = {
    ...process.env,
    PATH: `${stubs}:${process.env.PATH}`,
    STUB_SUMMARY: summary,
    STUB_STATUS: String(status),
  };
  return new Promise((res) => {
    execFile("bash", [join(ROOT, ".ci", "run")], { env }, (err, stdout) => {
      const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
      res({ code, stdout });
    });
  });
}

const lastLine = (s: string) => s.trimEnd().split("\n").at(-1);

describe(".ci/run", () => {
  it("prints the count line and exits 1 when tests fail", async () => {
    const r = await ciRun(
      " Test Files  1 failed | 20 passed (21)\\n      Tests  2 failed | 40 passed (42)\\n",
      1,
    );
    expect(lastLine(r.stdout)).toBe("40 passed, 2 failed");
    expect(r.code).toBe(1);
  });

  it("prints the count line and exits 0 when every test passes", async () => {
    const r = await ciRun(" Test Files  21 passed (21)\\n      Tests  42 passed (42)\\n", 0);
    expect(lastLine(r.stdout)).toBe("42 passed, 0 failed");
    expect(r.code).toBe(0);
  });

  it("says so when npm test stopped before vitest's summary (typecheck or lint failed)", async () => {
    const r = await ciRun("src/x.ts(1,1): error TS2304: Cannot find name 'y'.\\n", 2);
    expect(lastLine(r.stdout)).toMatch(/^0 passed, 0 failed \(npm test exited 2 before vitest's summary/);
    expect(r.code).toBe(2);
  });
});
