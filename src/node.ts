/**
 * Node entry point (`fp8kit/node`): everything in `fp8kit` plus the file-system parts (file byte
 * sources, the atomic file writer, sharded checkpoints on disk).
 */

export * from "./convert/node.js";
export * from "./index.js";
export * from "./report/node.js";
export * from "./safetensors/node.js";
