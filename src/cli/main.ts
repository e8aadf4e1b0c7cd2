#!/usr/bin/env node
/**
 * The `fp8kit` command: argument dispatch only. Each command lives in its own module under
 * src/cli/ and exports `command` (its options as data and `run(argv)`, see options.ts); everything
 * else is a thin call into the library layers.
 */
import { CliError } from "./errors.js";
import { EXIT_INPUT, EXIT_OK, reportFailure } from "./failure.js";
import type { Command } from "./options.js";

const COMMANDS: Record<string, () => Promise<{ command: Command }>> = {
  convert: () => import("./convert.js"),
  inspect: () => import("./inspect.js"),
  lint: () => import("./lint.js"),
  audit: () => import("./audit.js"),
  report: () => import("./report.js"),
  demo: () => import("./demo.js"),
  formats: () => import("./formats.js"),
};

async function usage(): Promise<string> {
  const lines = ["usage: fp8kit <command> [options]", "", "commands:"];
  for (const [name, load] of Object.entries(COMMANDS)) {
    const mod = await load().catch(() => null);
    lines.push(`  ${name.padEnd(9)} ${mod?.command.spec.summary ?? ""}`);
  }
  lines.push("", "Run `fp8kit <command> --help` for a command's options.");
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${await usage()}\n`);
    return name === undefined ? EXIT_INPUT : EXIT_OK;
  }
  if (name === "--version" || name === "-v") {
    const { VERSION } = await import("./version.js");
    process.stdout.write(`${VERSION}\n`);
    return EXIT_OK;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`fp8kit: unknown command ${JSON.stringify(name)}\n\n${await usage()}\n`);
    return EXIT_INPUT;
  }
  const { command } = await load();
  return command.run(rest);
}

/**
 * A reader that goes away (`fp8kit inspect ... --json | head -c1`) closes the pipe: further output
 * has nowhere to go, which is no failure of the command. Every command runs on to its own end
 * (a conversion is not cut short) and exits with its own status; what it still prints is dropped.
 * Any other failure to print (a full disk behind `> file`) fails the command (exit 2) once it ends.
 */
let printFailure: CliError | null = null;
for (const [stream, what] of [
  [process.stdout, "standard output"],
  [process.stderr, "standard error"],
] as const) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") return;
    printFailure ??= new CliError("output-failed", `cannot write to ${what} (${e.message})`, { cause: e });
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = printFailure ? reportFailure(printFailure) : code;
  },
  (err: unknown) => {
    process.exitCode = reportFailure(err);
  },
);
