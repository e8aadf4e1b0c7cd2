// Test-only runner: `node test/convert/kill-after.mjs <input> <output> <tensors>` converts to BF16
// (3MB shards, one worker: the options of test/convert/cli.test.ts) with the built library and
// SIGKILLs itself after <tensors> tensors, leaving the output as a crash at that point would.
import { convertCheckpoint } from "../../dist/convert/node.js";

const [input, output, after] = process.argv.slice(2);
await convertCheckpoint({
  input,
  output,
  target: "bf16",
  maxShardSize: "3MB",
  workers: 1,
  afterTensor: (done) => {
    if (done >= Number(after)) process.kill(process.pid, "SIGKILL");
  },
});
