import { type Derived, decodeCode, derive } from "./codec.js";
import { type Kernel, makeKernel } from "./fast.js";
import { traitsOf } from "./registry.js";
import type { FormatName, FormatTraits, Overflow } from "./types.js";

/** Per-format state built on first use: derived limits, the decode table and the fast kernels. */
export interface FormatState {
  readonly traits: FormatTraits;
  readonly derived: Derived;
  /** float32 bit patterns of every code (256 entries, or 65536 for 16-bit formats). */
  readonly tableBits: Uint32Array;
  readonly kernels: Record<Overflow, Kernel>;
}

const cache = new Map<FormatName, FormatState>();

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

function f32BitsOf(x: number, negative: boolean): number {
  if (Number.isNaN(x)) return negative ? 0xffc00000 : 0x7fc00000;
  scratchF[0] = x;
  return scratchU[0];
}

/** float32 bit patterns of every code; entries past 2^bits (bits above the format's width) are NaN. */
function decodeTableBits(traits: FormatTraits, derived: Derived): Uint32Array {
  const tableBits = new Uint32Array(traits.bits === 16 ? 65536 : 256).fill(0x7fc00000);
  for (let c = 0; c < 1 << traits.bits; c++) {
    tableBits[c] = f32BitsOf(decodeCode(traits, derived, c), (c & derived.signBit) !== 0);
  }
  return tableBits;
}

export function formatState(name: unknown): FormatState {
  const traits = traitsOf(name);
  let st = cache.get(traits.name);
  if (st === undefined) {
    const derived = derive(traits);
    // Built on first read: encoders do not need it, and the 65536 entries of a 16-bit format cost a
    // cold thread tens of milliseconds (every conversion worker binds bfloat16/float16 encoders).
    let tableBits: Uint32Array | null = null;
    st = {
      traits,
      derived,
      get tableBits() {
        tableBits ??= decodeTableBits(traits, derived);
        return tableBits;
      },
      kernels: {
        nonfinite: makeKernel(traits, derived, "nonfinite"),
        saturate: makeKernel(traits, derived, "saturate"),
      },
    };
    cache.set(traits.name, st);
  }
  return st;
}
