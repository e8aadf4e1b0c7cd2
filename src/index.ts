/**
 * fp8kit's public face (browser-safe: no Node built-ins are imported from here; file-system entry
 * points live in `fp8kit/node`).
 */
export { Fp8kitError, isFp8kitError } from "./errors.js";
export * from "./formats/index.js";
export * from "./quant/index.js";
export * from "./report/index.js";
export * from "./safetensors/index.js";
