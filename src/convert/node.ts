// Node-only entry points of the convert layer (re-exported by src/node.ts).
export * from "./index.js";
export { JOURNAL_FILE, MARKER_DIR, type TensorReport } from "./journal.js";
export { type ConvertResult, convertCheckpoint, type RunOptions } from "./run-node.js";
export { type VerifyResult, verifyOutput } from "./verify.js";
export type { ConvertEvent } from "./write-shard-node.js";
