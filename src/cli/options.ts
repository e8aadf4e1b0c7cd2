/**
 * The one option parser of the `fp8kit` commands. Each command declares its options as data (a
 * `CommandSpec`); `defineCommand` turns that into `run(argv)`: it parses with Node's
 * `util.parseArgs` (strict: unknown options are usage errors), reads each value with the option's
 * own parser (non-negative integers, sizes, choices, globs), answers `-h/--help` from the same specs,
 * and accepts old spellings (`aliases`) without showing them in the help.
 */
import { parseArgs } from "node:util";
import { parseSize } from "../safetensors/index.js";
import { CliError } from "./errors.js";

interface BaseSpec {
  /** One line (or several, joined by "\n") for --help. */
  readonly help: string;
  /** One-letter short form (`-o`). */
  readonly short?: string;
  /** Old spellings, still accepted so existing scripts keep working, never shown in --help. */
  readonly aliases?: readonly string[];
}

/** `--json`: present or not. */
export interface FlagSpec extends BaseSpec {
  readonly kind: "flag";
}

/** `--seed 3`: one value, read by `parse` (the flag as typed is passed for messages). */
export interface ValueSpec<T> extends BaseSpec {
  readonly kind: "value";
  /** How the value is shown in --help (`N`, `GLOB`, `<target>`). */
  readonly arg: string;
  readonly parse: (raw: string, flag: string) => T;
}

/** `--include a --include b`: repeatable, every value kept in order. */
export interface ListSpec extends BaseSpec {
  readonly kind: "list";
  readonly arg: string;
}

export type OptionSpec = FlagSpec | ValueSpec<unknown> | ListSpec;
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The parsed values: a boolean per flag, an array per list, the parsed value or undefined otherwise. */
export type OptionValues<O extends OptionSpecs> = {
  -readonly [K in keyof O]: O[K] extends FlagSpec
    ? boolean
    : O[K] extends ListSpec
      ? string[]
      : O[K] extends ValueSpec<infer T>
        ? T | undefined
        : never;
};

/** A command as data: what --help prints and what the parser accepts. */
export interface CommandSpec<O extends OptionSpecs> {
  /** The word after `fp8kit`. */
  readonly name: string;
  /** One line for `fp8kit --help`. */
  readonly summary: string;
  /** Names of the positional arguments, all required (`["path"]`). */
  readonly args: readonly string[];
  /** The usage line after `fp8kit <name>` (default: the args, then `[options]`). */
  readonly usage?: string;
  /** Paragraphs printed between the usage line and the options. */
  readonly about?: string;
  readonly options: O;
  /** Printed after the options (exit status and the like). */
  readonly footer?: string;
}

/** What `fp8kit` dispatches to. */
export interface Command<O extends OptionSpecs = OptionSpecs> {
  readonly name: string;
  readonly spec: CommandSpec<O>;
  run(argv: string[]): Promise<number>;
}

/** A usage error that points at the command's help. */
export function usageError(command: string, message: string): CliError {
  return new CliError("usage", `${message} (see fp8kit ${command} --help)`);
}

export const flag = (help: string, extra: Partial<BaseSpec> = {}): FlagSpec => ({
  kind: "flag",
  help,
  ...extra,
});

export const list = (arg: string, help: string, extra: Partial<BaseSpec> = {}): ListSpec => ({
  kind: "list",
  arg,
  help,
  ...extra,
});

export const value = <T>(
  arg: string,
  help: string,
  parse: (raw: string, flag: string) => T,
  extra: Partial<BaseSpec> = {},
): ValueSpec<T> => ({ kind: "value", arg, help, parse, ...extra });

/** Any string. */
export const text = (arg: string, help: string, extra: Partial<BaseSpec> = {}): ValueSpec<string> =>
  value(arg, help, (raw) => raw, extra);

/** A non-negative integer (`--workers 4`, `--seed 0`). */
export const count = (arg: string, help: string, extra: Partial<BaseSpec> = {}): ValueSpec<number> =>
  value(arg, help, parseCount, extra);

/** A byte size with an optional unit (`5GB`, `500MB`, `2GiB`), read by the safetensors layer's `parseSize`. */
export const size = (arg: string, help: string, extra: Partial<BaseSpec> = {}): ValueSpec<number> =>
  value(arg, help, parseByteSize, extra);

/** One of a fixed list of words. */
export const oneOf = <const C extends string>(
  choices: readonly C[],
  help: string,
  extra: Partial<BaseSpec> & { arg?: string } = {},
): ValueSpec<C> =>
  value(
    extra.arg ?? choices.join("|"),
    help,
    (raw, flag) => {
      if (!(choices as readonly string[]).includes(raw))
        throw new Error(`${flag} must be one of ${choices.join(", ")}, got ${JSON.stringify(raw)}`);
      return raw as C;
    },
    extra,
  );

function parseCount(raw: string, flag: string): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isSafeInteger(n) || n < 0)
    throw new Error(`${flag} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

function parseByteSize(raw: string, flag: string): number {
  try {
    return parseSize(raw);
  } catch (e) {
    throw new Error(`${flag}: ${(e as Error).message}`, { cause: e });
  }
}

const HELP: FlagSpec = { kind: "flag", help: "this help", short: "h" };

/** The --help text of a command, from its spec. */
export function formatHelp(spec: CommandSpec<OptionSpecs>): string {
  const usage = spec.usage ?? [...spec.args.map((a) => `<${a}>`), "[options]"].join(" ");
  const out = [`usage: fp8kit ${spec.name} ${usage}`];
  if (spec.about) out.push("", spec.about);
  const specs: Record<string, OptionSpec> = { ...spec.options, help: HELP };
  const rows = Object.entries(specs).map(([name, o]) => {
    const left = `${o.short ? `-${o.short}, ` : ""}--${name}${o.kind === "flag" ? "" : ` ${o.arg}`}`;
    return [left, o.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  out.push("", "options:");
  for (const [left, help] of rows) {
    const [first, ...more] = help.split("\n");
    out.push(`  ${left.padEnd(width)}${first}`);
    for (const line of more) out.push(`  ${" ".repeat(width)}${line}`);
  }
  if (spec.footer) out.push("", spec.footer);
  return out.join("\n");
}

type RawValue = string | boolean | string[] | undefined;

/** Parses `argv` against `spec`; null when --help was asked for. Throws a usage `CliError`. */
export function parseCommand<O extends OptionSpecs>(
  spec: CommandSpec<O>,
  argv: string[],
): { args: string[]; values: OptionValues<O> } | null {
  const config: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, o] of Object.entries(spec.options)) {
    const type = o.kind === "flag" ? "boolean" : "string";
    const multiple = o.kind === "list";
    config[name] = { type, multiple, ...(o.short ? { short: o.short } : {}) };
    for (const alias of o.aliases ?? []) config[alias] = { type, multiple };
  }
  let parsed: { values: Record<string, RawValue>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: config,
      allowPositionals: true,
      strict: true,
    }) as typeof parsed;
  } catch (e) {
    // parseArgs' own wording, shortened for the commonest mistake.
    const message = (e as Error).message;
    const unknown =
      (e as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && /'([^']+)'/.exec(message);
    throw usageError(spec.name, unknown ? `unknown option ${unknown[1]}` : message);
  }
  if (parsed.values.help === true) return null;
  if (parsed.positionals.length !== spec.args.length) {
    const want = spec.args.length === 0 ? "no arguments" : spec.args.map((a) => `<${a}>`).join(" ");
    throw usageError(spec.name, `${spec.name} takes ${want}, got ${parsed.positionals.length} argument(s)`);
  }
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const given = [name, ...(o.aliases ?? [])].filter((n) => parsed.values[n] !== undefined);
    if (o.kind === "flag") values[name] = given.length > 0;
    else if (o.kind === "list") values[name] = given.flatMap((n) => parsed.values[n] as string[]);
    else if (given.length > 1)
      throw usageError(spec.name, `--${given[1]} is another spelling of --${name}; give it once`);
    else if (given.length === 1) values[name] = readValue(spec.name, o, given[0], parsed.values[given[0]]);
  }
  return { args: parsed.positionals, values: values as OptionValues<O> };
}

function readValue(command: string, o: ValueSpec<unknown>, typed: string, raw: RawValue): unknown {
  try {
    return o.parse(raw as string, `--${typed}`);
  } catch (e) {
    throw usageError(command, (e as Error).message);
  }
}

/**
 * A command from its spec and what it does with the parsed arguments: `run(argv)` prints the help
 * for -h/--help and otherwise returns the handler's exit code.
 */
export function defineCommand<O extends OptionSpecs>(
  spec: CommandSpec<O>,
  handler: (args: string[], values: OptionValues<O>) => Promise<number>,
): Command<O> {
  return {
    name: spec.name,
    spec,
    async run(argv) {
      const parsed = parseCommand(spec, argv);
      if (parsed === null) {
        process.stdout.write(`${formatHelp(spec)}\n`);
        return 0;
      }
      return handler(parsed.args, parsed.values);
    },
  };
}
