import type { FormatTraits, Overflow } from "../types.js";
import { hasSimd, instantiate } from "./asm.js";
import { type CodecExports, codecModule, SIMD_ENCODE, TABLE } from "./codec-kernels.js";
import { preferWasm } from "./kernel-backend.js";

/**
 * The WebAssembly backend of the 8-bit codecs: `decode` of every 8-bit format and default-rounding
 * `encode` of float32 to E4M3FN/E5M2. The TypeScript kernels stay the specification and the fallback
 * (no WebAssembly SIMD, other formats, other rounding modes, Float64Array/number[] input).
 *
 * One memory per thread (module state is per thread), fixed at three pages: the decode table, then
 * an input and an output region of `CHUNK` float32s each. Arrays stream through it in chunks copied
 * with `TypedArray.set`: the regions stay in L2 cache, no memory is grown or freshly allocated per
 * call (fresh memory costs about 1 s per 256 MB here), and from the second chunk on V8 runs the
 * kernels' optimized tier, so a first call runs at full speed.
 */

/** Elements per chunk: 64 KiB of float32 in and out, well inside L2. */
const CHUNK = 16384;
const IN = 1024;
const OUT = IN + CHUNK * 4;
/** Below this many elements "auto" keeps the TypeScript loop (call overhead). */
const MIN_AUTO = 64;

interface Runtime {
  mem8: Uint8Array;
  mem32: Uint32Array;
  memIn: Float32Array;
  modules: Map<string, CodecExports>;
  memory: WebAssembly.Memory;
}

let runtime: Runtime | null | undefined;

function getRuntime(): Runtime | null {
  if (runtime === undefined) {
    try {
      if (!hasSimd()) runtime = null;
      else {
        const memory = new WebAssembly.Memory({ initial: Math.ceil((OUT + CHUNK * 4) / 65536) });
        runtime = {
          memory,
          mem8: new Uint8Array(memory.buffer),
          mem32: new Uint32Array(memory.buffer),
          memIn: new Float32Array(memory.buffer, IN, CHUNK),
          modules: new Map(),
        };
      }
    } catch {
      runtime = null;
    }
  }
  return runtime;
}

function kernels(rt: Runtime, t: FormatTraits): CodecExports {
  let k = rt.modules.get(t.name);
  if (k === undefined) {
    k = instantiate(codecModule(t), { env: { mem: rt.memory } }).exports as unknown as CodecExports;
    rt.modules.set(t.name, k);
  }
  return k;
}

const use = (n: number) => preferWasm(n, MIN_AUTO);

/**
 * Decodes 8-bit codes into float32 bit patterns with the WebAssembly kernels; false (nothing done)
 * where this backend does not apply.
 */
export function wasmDecode(
  t: FormatTraits,
  table: Uint32Array,
  codes: Uint8Array,
  out: Uint32Array,
): boolean {
  const n = codes.length;
  if (t.bits !== 8 || !use(n)) return false;
  const rt = getRuntime();
  if (rt === null) return false;
  const { decode } = kernels(rt, t);
  const { mem8, mem32 } = rt;
  mem32.set(table.subarray(0, 256), TABLE / 4);
  for (let i = 0; i < n; i += CHUNK) {
    const m = Math.min(CHUNK, n - i);
    mem8.set(codes.subarray(i, i + m), IN);
    decode(IN, OUT, m);
    out.set(mem32.subarray(OUT / 4, OUT / 4 + m), i);
  }
  return true;
}

/**
 * Encodes float32 values to codes with the format's default rounding and the given overflow policy;
 * false (nothing done) where this backend does not apply.
 */
export function wasmEncode(
  t: FormatTraits,
  overflow: Overflow,
  values: Float32Array,
  dst: Uint8Array,
): boolean {
  const n = values.length;
  if (!SIMD_ENCODE.has(t.name) || !use(n)) return false;
  const rt = getRuntime();
  if (rt === null) return false;
  const k = kernels(rt, t);
  const encode = overflow === "saturate" ? k.encodeSaturate : k.encodeNonfinite;
  if (encode === undefined) return false;
  const { mem8, memIn } = rt;
  for (let i = 0; i < n; i += CHUNK) {
    const m = Math.min(CHUNK, n - i);
    memIn.set(values.subarray(i, i + m));
    encode(IN, OUT, m);
    dst.set(mem8.subarray(OUT, OUT + m), i);
  }
  return true;
}
