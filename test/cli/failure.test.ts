/** Exit codes come from the error's class, never from the text of its message. */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { CliError } from "../../src/cli/errors.js";
import { EXIT_INPUT, EXIT_INTERNAL, exitCodeOf } from "../../src/cli/failure.js";
import { ReportError } from "../../src/report/errors.js";
import { SafetensorsError } from "../../src/safetensors/errors.js";

describe("exit codes", () => {
  it("every layer's error is bad input (2)", () => {
    expect(exitCodeOf(new CliError("usage", "x"))).toBe(EXIT_INPUT);
    expect(exitCodeOf(new ReportError("missing-package", "x"))).toBe(EXIT_INPUT);
    expect(exitCodeOf(new SafetensorsError("read-failed", "x"))).toBe(EXIT_INPUT);
  });

  it("a file-system error that reached the CLI unwrapped is the environment (2)", async () => {
    const e = await readFile("/nonexistent/fp8kit-test").catch((err: unknown) => err);
    expect(exitCodeOf(e)).toBe(EXIT_INPUT);
  });

  it("anything else is a bug (3), even an error that carries a Node error code", () => {
    expect(exitCodeOf(new TypeError("x is undefined"))).toBe(EXIT_INTERNAL);
    expect(exitCodeOf(Object.assign(new Error("bad argument"), { code: "ERR_INVALID_ARG_TYPE" }))).toBe(
      EXIT_INTERNAL,
    );
    expect(exitCodeOf("thrown string")).toBe(EXIT_INTERNAL);
  });
});
