import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DTYPES, dtypeBits } from "../../src/safetensors/dtypes.js";
import { SafetensorsError } from "../../src/safetensors/errors.js";
import { SafetensorsFile } from "../../src/safetensors/reader.js";
import { BufferSource } from "../../src/safetensors/source.js";
import { serializeSafetensors } from "../../src/safetensors/writer.js";
import { fixture, mulberry32, rawFile } from "./helpers.js";

const SEED = 0x5afe7e45;
const CASES = 20_000;

const bases: Uint8Array[] = [
  new Uint8Array(readFileSync(fixture("hf-safetensors-samples-pr84", "overall.safetensors"))),
  new Uint8Array(
    readFileSync(fixture("safetensors-jl-dtypes-sharded", "non_sharded", "model.with_metadata.safetensors")),
  ),
  new Uint8Array(readFileSync(fixture("hf2q-tiny-f16-unaligned", "model.safetensors"))),
  serializeSafetensors(
    [
      { name: "w", dtype: "F8_E4M3", shape: [4, 4], data: new Uint8Array(16) },
      { name: "s", dtype: "F32", shape: [], data: new Uint8Array(4) },
      { name: "e", dtype: "BF16", shape: [0, 3], data: new Uint8Array(0) },
      { name: "q", dtype: "F4", shape: [2, 6], data: new Uint8Array(6) },
    ],
    { metadata: { format: "pt" } },
  ),
];

function headerOf(file: Uint8Array): { text: string; n: number } {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return { text: new TextDecoder().decode(file.subarray(8, 8 + n)), n };
}

const WEIRD: unknown[] = [-1, 1.5, 2 ** 53, 2 ** 64, 1e300, "1", null, [], {}, true, 0, 3, 7, 1 << 20, -0.5];

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)];
}

function mutateJson(rnd: () => number, file: Uint8Array): Uint8Array {
  const { text, n } = headerOf(file);
  const data = file.subarray(8 + n);
  const h = JSON.parse(text) as Record<string, Record<string, unknown>>;
  const names = Object.keys(h).filter((k) => k !== "__metadata__");
  const name = pick(rnd, names);
  const e = h[name] as { dtype: unknown; shape: unknown[]; data_offsets: unknown[] };
  let out = "";
  switch (Math.floor(rnd() * 9)) {
    case 0:
      e.data_offsets[Math.floor(rnd() * 2)] =
        rnd() < 0.5 ? pick(rnd, WEIRD) : Math.floor(rnd() * data.length * 1.2);
      break;
    case 1:
      e.dtype = rnd() < 0.6 ? pick(rnd, DTYPES) : pick(rnd, ["F8", "f32", "E8M0", "", 5, null, "FP4"]);
      break;
    case 2:
      if (e.shape.length > 0) e.shape[Math.floor(rnd() * e.shape.length)] = pick(rnd, WEIRD);
      else e.shape.push(pick(rnd, WEIRD));
      break;
    case 3:
      e.shape = rnd() < 0.5 ? [] : [...e.shape, 1 + Math.floor(rnd() * 3)];
      break;
    case 4:
      h.__metadata__ = { a: pick(rnd, WEIRD) as string } as never;
      break;
    case 5:
      (e as Record<string, unknown>)[pick(rnd, ["extra", "dtype2", "offsets"])] = 1;
      break;
    case 6:
      delete (e as Record<string, unknown>)[pick(rnd, ["dtype", "shape", "data_offsets"])];
      break;
    case 7: {
      // Duplicate key: splice a copy of one entry into the text.
      const s = JSON.stringify(h);
      out = `${s.slice(0, -1)},${JSON.stringify(name)}:${JSON.stringify(e)}}`;
      break;
    }
    default:
      e.data_offsets = [pick(rnd, WEIRD), pick(rnd, WEIRD)];
  }
  return rawFile(out || JSON.stringify(h) + " ".repeat(Math.floor(rnd() * 8)), data);
}

function mutate(rnd: () => number, base: Uint8Array): Uint8Array {
  const kind = Math.floor(rnd() * 4);
  if (kind === 0) {
    const f = base.slice();
    const { n } = headerOf(f);
    const flips = 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < flips; i++) f[8 + Math.floor(rnd() * n)] ^= 1 << Math.floor(rnd() * 8);
    return f;
  }
  if (kind === 1) return mutateJson(rnd, base);
  if (kind === 2) return base.slice(0, Math.floor(rnd() * base.length));
  const f = base.slice();
  f[Math.floor(rnd() * 8)] = Math.floor(rnd() * 256);
  return f;
}

function checkConsistent(f: SafetensorsFile, size: number): void {
  let end = 0;
  for (const t of f.tensors) {
    expect(t.dataOffsets[0]).toBe(end);
    expect(t.byteLength).toBe((t.numel * dtypeBits(t.dtype)) / 8);
    expect(t.shape.reduce((a, b) => a * b, 1)).toBe(t.numel);
    end = t.dataOffsets[1];
  }
  expect(f.dataStart + end).toBe(size);
}

describe("fuzz: mutated headers and truncated files", () => {
  it(`${CASES} seeded cases parse consistently or throw SafetensorsError`, async () => {
    const rnd = mulberry32(SEED);
    const counts = { ok: 0, rejected: 0 };
    const codes = new Map<string, number>();
    const start = performance.now();
    for (let i = 0; i < CASES; i++) {
      const bytes = mutate(rnd, pick(rnd, bases));
      try {
        const f = await SafetensorsFile.open(new BufferSource(bytes, "fuzz.safetensors"));
        checkConsistent(f, bytes.length);
        for (const t of f.tensors) expect((await f.readTyped(t.name)).data.byteLength).toBe(t.byteLength);
        counts.ok++;
      } catch (e) {
        if (!(e instanceof SafetensorsError))
          throw new Error(`case ${i}: not a SafetensorsError: ${e}`, { cause: e });
        counts.rejected++;
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      }
    }
    expect(counts.ok + counts.rejected).toBe(CASES);
    expect(counts.rejected).toBeGreaterThan(CASES / 2);
    expect(codes.size).toBeGreaterThanOrEqual(10);
    expect(performance.now() - start).toBeLessThan(10_000);
  });
});
