import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BufferSource } from "../../src/safetensors/source.js";

export const FIXTURES = join(import.meta.dirname, "..", "fixtures", "safetensors");

export function fixture(...parts: string[]): string {
  return join(FIXTURES, ...parts);
}

export function fixtureSource(...parts: string[]): BufferSource {
  return new BufferSource(new Uint8Array(readFileSync(fixture(...parts))), parts[parts.length - 1]);
}

/** IEEE binary16 code to number: a deliberately simple reference, independent of src/formats. */
export function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Build a raw safetensors file from header JSON text (unpadded) and data bytes. */
export function rawFile(headerText: string, data: Uint8Array | number = 0): Uint8Array<ArrayBuffer> {
  const json = new TextEncoder().encode(headerText);
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

/** Deterministic PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
