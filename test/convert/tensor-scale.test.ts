/**
 * Reading an op's per-tensor scalar (`TensorOp.input.tensorScale`) for `BandSpec.tensorScale`:
 * F32, BF16 and F16 of shape [] or [1], against values worked out by hand from the bit patterns;
 * anything else is a ConvertError naming the shard and tensor.
 */
import { describe, expect, it } from "vitest";
import { ConvertError } from "../../src/convert/errors.js";
import type { TensorOp } from "../../src/convert/plan.js";
import { readTensorScale } from "../../src/convert/tensor-scale.js";
import { Checkpoint } from "../../src/safetensors/checkpoint.js";
import type { Dtype } from "../../src/safetensors/dtypes.js";
import { BufferSource } from "../../src/safetensors/source.js";
import { serializeSafetensors } from "../../src/safetensors/writer.js";

const le16 = (code: number) => new Uint8Array([code & 0xff, code >> 8]);
const f32 = (x: number) => new Uint8Array(new Float32Array([x]).buffer);
const scalars: [string, Dtype, number[], Uint8Array][] = [
  ["f32", "F32", [], f32(0.5)],
  ["f32_1", "F32", [1], f32(448)],
  ["bf16", "BF16", [], le16(0x3f40)], // 0x3f400000 as float32: 1.5 * 2^-1 = 0.75
  ["f16", "F16", [1], le16(0x3555)], // (1 + 341/1024) * 2^(13 - 15) = 0.333251953125
  ["f16_sub", "F16", [], le16(0x0001)], // smallest subnormal: 2^-24
  ["fp8", "F8_E4M3", [], new Uint8Array([0x38])],
  ["vec", "F32", [2], new Uint8Array(8)],
  ["zero", "F32", [], f32(0)],
  ["neg", "BF16", [], le16(0xbf80)],
  ["nan", "F32", [], f32(Number.NaN)],
  ["inf", "F16", [], le16(0x7c00)],
];

async function checkpoint(): Promise<Checkpoint> {
  const bytes = serializeSafetensors(
    scalars.map(([name, dtype, shape, data]) => ({ name, dtype, shape, data })),
  );
  return Checkpoint.open({
    shards: ["scales.safetensors"],
    opener: async (s) => new BufferSource(bytes, s),
  });
}

const opFor = (name: string | null) =>
  ({
    input: { tensorScale: name, tensorScaleShard: name === null ? null : "scales.safetensors" },
  }) as TensorOp;

describe("readTensorScale", () => {
  it("F32, BF16 and F16 scalars of shape [] or [1]; none when the op has no scalar", async () => {
    const ck = await checkpoint();
    expect(await readTensorScale(ck, opFor("f32"))).toBe(0.5);
    expect(await readTensorScale(ck, opFor("f32_1"))).toBe(448);
    expect(await readTensorScale(ck, opFor("bf16"))).toBe(0.75);
    expect(await readTensorScale(ck, opFor("f16"))).toBe(0.333251953125);
    expect(await readTensorScale(ck, opFor("f16_sub"))).toBe(2 ** -24);
    expect(await readTensorScale(ck, opFor(null))).toBeUndefined();
    expect(ck.bytesRead).toBe(4 + 4 + 2 + 2 + 2);
  });

  it("a wrong dtype or shape, zero, negative, NaN or Inf: ConvertError naming shard and tensor", async () => {
    const ck = await checkpoint();
    const cases: [string, RegExp][] = [
      ["fp8", /must be F32, BF16 or F16, not F8_E4M3/],
      ["vec", /must have shape \[\] or \[1\], not \[2\]/],
      ["zero", /per-tensor scale 0 is not a finite positive number/],
      ["neg", /per-tensor scale -1 is not/],
      ["nan", /per-tensor scale NaN is not/],
      ["inf", /per-tensor scale Infinity is not/],
    ];
    for (const [name, re] of cases) {
      const e = await readTensorScale(ck, opFor(name)).catch((x) => x);
      expect(e, name).toBeInstanceOf(ConvertError);
      expect(e.code).toBe("invalid-layout");
      expect(e.message).toMatch(new RegExp(`^scales\\.safetensors: tensor "${name}": `));
      expect(e.message).toMatch(re);
    }
  });
});
