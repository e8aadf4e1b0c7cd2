/**
 * The one switch that picks the backend of every kernel with a WebAssembly version (the 8-bit
 * codecs, the convert band kernels, the INT8/INT4 per-channel and NVFP4 kernels, the audit's
 * histograms): "auto" runs WebAssembly SIMD
 * where it is available and the input is large enough to pay for the call, "ts" forces the
 * TypeScript kernels (the specification), "wasm" forces WebAssembly wherever a kernel has it (tests
 * and benchmarks; a kernel without WebAssembly SIMD still falls back).
 *
 * In Node the environment variable `FP8KIT_KERNELS=ts|wasm|auto` sets it at start, so a whole run
 * (and its worker threads, which inherit the environment) can be compared backend against backend.
 */
export type KernelBackend = "auto" | "ts" | "wasm";

function fromEnv(): KernelBackend {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const v = p?.env?.FP8KIT_KERNELS;
  return v === "ts" || v === "wasm" ? v : "auto";
}

let backend: KernelBackend = fromEnv();

/** Forces a backend for this thread (tests and benchmarks). */
export function setKernelBackend(b: KernelBackend): void {
  backend = b;
}

export function kernelBackend(): KernelBackend {
  return backend;
}

/** Whether a kernel should take its WebAssembly path for `n` elements, given its own "auto" threshold. */
export function preferWasm(n: number, minAuto: number): boolean {
  return backend === "wasm" || (backend === "auto" && n >= minAuto);
}
