/**
 * `npm run bench [-- <name>...] [--quick]`: runs the benchmarks (all by default) and prints each one's
 * table with its same-run baseline. Names: codecs, quant, safetensors. With several names each runs
 * in a process of its own, so that one benchmark's peak RSS is not another's.
 */
import { spawnSync } from "node:child_process";

type Bench = { run(opts: { quick?: boolean }): Promise<void> };
const BENCHES: Record<string, string> = {
  codecs: "./codecs.bench.js",
  quant: "./quant.bench.js",
  safetensors: "./safetensors.bench.js",
};

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const names = args.filter((a) => !a.startsWith("--"));
const chosen = names.length ? names : Object.keys(BENCHES);
for (const name of chosen) {
  if (!BENCHES[name]) {
    console.error(
      `unknown benchmark ${JSON.stringify(name)}; choose from ${Object.keys(BENCHES).join(", ")}`,
    );
    process.exit(2);
  }
}
if (chosen.length > 1) {
  for (const name of chosen) {
    const flags = quick ? ["--quick"] : [];
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], name, ...flags], {
      stdio: "inherit",
    });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
} else {
  const name = chosen[0];
  console.log(`\n== ${name} ==`);
  const mod = (await import(BENCHES[name])) as Bench;
  await mod.run({ quick });
}
