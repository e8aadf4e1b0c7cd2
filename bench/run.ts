/**
 * `npm run bench [-- <name>...] [--quick]`: runs the benchmarks (all by default) and prints each one's
 * table with its same-run baseline. Names: codecs, quant, safetensors.
 */
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
  const path = BENCHES[name];
  if (!path) {
    console.error(
      `unknown benchmark ${JSON.stringify(name)}; choose from ${Object.keys(BENCHES).join(", ")}`,
    );
    process.exit(2);
  }
  console.log(`\n== ${name} ==`);
  const mod = (await import(path)) as Bench;
  await mod.run({ quick });
}
