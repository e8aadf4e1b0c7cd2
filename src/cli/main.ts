#!/usr/bin/env node
/**
 * The `fp8kit` command: argument dispatch only. Each command lives in its own module under
 * src/cli/ and exports `run(argv): Promise<number>` (the exit code); everything else is a thin call
 * into the library layers.
 */
import { reportFailure } from "./failure.js";

type CommandModule = { run(argv: string[]): Promise<number>; summary: string };

const COMMANDS: Record<string, () => Promise<CommandModule>> = {
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
    lines.push(`  ${name.padEnd(9)} ${mod?.summary ?? ""}`);
  }
  lines.push("", "Run `fp8kit <command> --help` for a command's options.");
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${await usage()}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === "--version" || command === "-v") {
    const { VERSION } = await import("./version.js");
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const load = COMMANDS[command];
  if (!load) {
    process.stderr.write(`fp8kit: unknown command ${JSON.stringify(command)}\n\n${await usage()}\n`);
    return 2;
  }
  const mod = await load();
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = reportFailure(err);
  },
);
