/**
 * A larger DeepSeek-layout input (about 80 MB; its BF16 conversion about 126 MB, a second or two),
 * for tests that need a conversion still running when they act on it: two runs racing for one
 * output, a signal mid-shard.
 */
import { join } from "node:path";
import { makeDeepseekCheckpoint, TINY } from "../../scripts/make-sample.js";

export const BIG_DIMS = {
  ...TINY,
  vocab: 4096,
  hidden: 1024,
  qLoraRank: 768,
  heads: 8,
  qkNope: 128,
  vHead: 128,
  intermediate: 2816,
  moeIntermediate: 704,
  routedExperts: 4,
  layers: 2,
};

/** CLI options for converting it: several output shards, one worker (slow enough to act on). */
export const BIG_ARGS = ["--to", "bf16", "--max-shard-size", "40MB", "--workers", "1"];

/** Write the larger input under `dir` and return its path. */
export async function makeBigInput(dir: string): Promise<string> {
  const input = join(dir, "big-input");
  await makeDeepseekCheckpoint(input, { dims: BIG_DIMS, fast: true, maxShardSize: "30MB" });
  return input;
}
