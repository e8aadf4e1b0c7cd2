/**
 * The shared option parser of the commands: canonical names, the hidden old spellings (each alias
 * must parse exactly like its canonical option and stay out of --help), value checks and help.
 */
import { describe, expect, it } from "vitest";
import { command as audit } from "../../src/cli/audit.js";
import { command as convert } from "../../src/cli/convert.js";
import { command as inspect } from "../../src/cli/inspect.js";
import { type Command, formatHelp, parseCommand } from "../../src/cli/options.js";
import { command as report } from "../../src/cli/report.js";
import { Fp8kitError } from "../../src/errors.js";

const parse = (c: Command, argv: string[]) => parseCommand(c.spec, argv);

function usageMessage(c: Command, argv: string[]): string {
  try {
    parse(c, argv);
  } catch (e) {
    expect(e).toBeInstanceOf(Fp8kitError);
    expect((e as Fp8kitError).code).toBe("usage");
    return (e as Error).message;
  }
  throw new Error(`expected a usage error for ${argv.join(" ")}`);
}

/** Old spelling -> canonical option, per command. */
const ALIASES: [Command, string, string, string[]][] = [
  [audit, "--threads", "--workers", ["3"]],
  [audit, "--filter", "--include", ["**.o_proj.*"]],
  [inspect, "--filter", "--include", ["model.layers.0.*"]],
  [report, "--threads", "--workers", ["2"]],
  [report, "--tensors", "--include", ["**.q_b_proj.weight"]],
];

describe("hidden aliases keep old scripts working", () => {
  for (const [c, old, canonical, val] of ALIASES) {
    it(`${c.name} ${old} is ${canonical}`, () => {
      const viaOld = parse(c, ["ckpt", old, ...val]);
      const viaNew = parse(c, ["ckpt", canonical, ...val]);
      expect(viaOld).toEqual(viaNew);
      const help = formatHelp(c.spec);
      expect(help).toContain(canonical);
      expect(help).not.toContain(old);
    });
  }

  it("repeatable options collect values from both spellings", () => {
    expect(parse(audit, ["ckpt", "--filter", "a.*", "--include", "b.*"])?.values.include).toEqual([
      "b.*",
      "a.*",
    ]);
  });

  it("a single-valued option given under both spellings is refused", () => {
    expect(usageMessage(audit, ["ckpt", "--workers", "2", "--threads", "3"])).toMatch(
      /--threads is another spelling of --workers; give it once/,
    );
  });
});

describe("one vocabulary across commands", () => {
  it("every command that runs worker threads calls the option --workers; every tensor glob --include", () => {
    for (const c of [audit, convert, report]) expect(Object.keys(c.spec.options)).toContain("workers");
    for (const c of [audit, convert, inspect, report])
      expect(Object.keys(c.spec.options)).toContain("include");
    for (const c of [audit, convert, inspect, report])
      expect(Object.keys(c.spec.options).filter((k) => ["threads", "filter", "tensors"].includes(k))).toEqual(
        [],
      );
  });
});

describe("values", () => {
  it("non-negative integers", () => {
    expect(parse(audit, ["x", "--sample", "0"])?.values.sample).toBe(0);
    for (const bad of ["-1", "1.5", "", "2x", "1e3x"])
      expect(usageMessage(audit, ["x", `--sample=${bad}`])).toMatch(
        /--sample must be a non-negative integer/,
      );
    expect(usageMessage(audit, ["x", "--threads=-2"])).toMatch(/^--threads must be/);
  });

  it("sizes in decimal and binary units", () => {
    expect(
      parse(convert, ["a", "b", "--to", "bf16", "--max-shard-size", "3MB"])?.values["max-shard-size"],
    ).toBe(3_000_000);
    expect(
      parse(convert, ["a", "b", "--to", "bf16", "--max-shard-size", "2GiB"])?.values["max-shard-size"],
    ).toBe(2 ** 31);
    expect(usageMessage(convert, ["a", "b", "--max-shard-size", "lots"])).toMatch(
      /^--max-shard-size: invalid size/,
    );
  });

  it("choices, blocks and parts", () => {
    const v = parse(convert, ["a", "b", "--to", "fp8", "--block", "64", "--part", "2/8"])?.values;
    expect(v).toMatchObject({ to: "fp8", block: [64, 64], part: [2, 8], include: [], json: false });
    expect(usageMessage(convert, ["a", "b", "--to", "int3"])).toMatch(
      /--to must be one of bf16, .*got "int3"/,
    );
    expect(usageMessage(convert, ["a", "b", "--block", "128by128"])).toMatch(
      /--block must look like 128x128/,
    );
  });

  it("unknown options, wrong argument counts and -h", () => {
    expect(usageMessage(inspect, ["x", "--frobnicate"])).toMatch(
      /--frobnicate.*\(see fp8kit inspect --help\)/,
    );
    expect(usageMessage(convert, ["only-one"])).toMatch(/convert takes <input> <output>, got 1 argument/);
    expect(parse(report, ["-h"])).toBeNull();
    expect(parse(report, ["x", "-o", "r.html"])?.values.out).toBe("r.html");
  });
});
