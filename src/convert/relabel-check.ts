/**
 * Before anything is written, the relabels whose exactness depends on the scale values (`relabel:
 * "check"` ops) are checked: every source scale must be stored exactly by the target (a power of two
 * for E8M0 and UE8M0 targets, a BF16 value for compressed-tensors' BF16 scales), and an NVFP4
 * scalar must have an exact counterpart in the other dialect. What fits becomes "relabel
 * (lossless)"; what does not is refused naming the shard, tensor, block and value, unless
 * `--allow-lossy` lets float scales round (never for power-of-two targets: rounding a scale to a
 * power of two moves values by up to 2x, so those are refused with `--requantize` as the way out).
 *
 * Cost: one read of the checked ops' scale tensors (1/4096 of the weights for 128x128 F32 scales).
 */

import { relabelTensorScale } from "../quant/kernels/relabel-band.js";
import { bf16Round } from "../quant/kernels/tables.js";
import { targetScaleStorage } from "../quant/kernels/types.js";
import type { Checkpoint } from "../safetensors/index.js";
import { ConvertError } from "./errors.js";
import { type ConvertPlan, shardsOfPart, type TensorOp } from "./plan.js";
import { forEachScaleChunk } from "./scale-policy.js";
import { readTensorScale } from "./tensor-scale.js";

/** True when `v` is a power of two E8M0 holds (2^-127 .. 2^127). */
function isE8m0Value(v: number): boolean {
  if (!(v > 0) || !Number.isFinite(v)) return false;
  const k = Math.log2(v);
  return Number.isInteger(k) && k >= -127 && k <= 127;
}

/** What a relabel check found for one op. */
interface Misfit {
  op: TensorOp;
  /** Scales that do not fit, and the first one's index and value. */
  count: number;
  total: number;
  first: number;
  value: number;
  /** Largest relative change rounding would make. */
  maxRel: number;
}

/** `[row-block, col-block]` of scale index `i` in a scale grid of `shape`. */
function blockIndex(i: number, shape: readonly number[]): string {
  const cols = shape[shape.length - 1] ?? 1;
  return shape.length >= 2 ? `[${Math.floor(i / cols) % shape[shape.length - 2]}, ${i % cols}]` : `[${i}]`;
}

/** The block scales of `op` that its target storage does not hold exactly. */
async function misfitOf(input: Checkpoint, op: TensorOp): Promise<Misfit | null> {
  const src = op.source;
  const storage = targetScaleStorage(op.target!);
  if (src?.kind !== "block" || op.input.scale === null || storage === null) return null;
  const fits = storage === "bf16" ? (v: number) => bf16Round(v) === v : isE8m0Value;
  const m: Misfit = { op, count: 0, total: 0, first: -1, value: 0, maxRel: 0 };
  await forEachScaleChunk(input, op.input.scale, src.scaleStorage, (values, first) => {
    m.total += values.length;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (fits(v)) continue;
      if (m.count++ === 0) {
        m.first = first + i;
        m.value = v;
      }
      if (storage === "bf16") m.maxRel = Math.max(m.maxRel, Math.abs(bf16Round(v) - v) / Math.abs(v));
    }
  });
  return m.count > 0 ? m : null;
}

/**
 * Checks the `relabel: "check"` ops of the shards this run writes; sets each op's note to what it
 * will be, or throws `ConvertError` "lossy-relabel" (see the file header).
 */
export async function checkRelabels(
  input: Checkpoint,
  plan: ConvertPlan,
  part: [number, number] | null | undefined,
): Promise<void> {
  const allowLossy = plan.options.allowLossy;
  const shards = part ? shardsOfPart(plan.shards, part[0], part[1]) : plan.shards;
  for (const shard of shards) {
    for (const k of shard.ops) {
      const op = plan.ops[k];
      if (op.relabel !== "check") continue;
      const src = op.source;
      const tgt = op.target;
      if (tgt?.kind === "nvfp4" && src?.kind === "block" && src.tensorScale !== undefined) {
        const t = (await readTensorScale(input, op))!;
        const r = relabelTensorScale(t, src.tensorScale, tgt.tensorScale);
        if (r.exact) op.note = "relabel (lossless)";
        else if (allowLossy) op.note = "relabel (lossy: some block multipliers move by one float32 ulp)";
        else {
          throw new ConvertError(
            "lossy-relabel",
            `${op.input.tensorScaleShard}: tensor "${op.input.tensorScale}": per-tensor scale ${t} has no exact counterpart in the target layout (its reciprocal changes some block multipliers by one float32 ulp); pass --allow-lossy to relabel anyway, or --requantize`,
          );
        }
        continue;
      }
      const m = await misfitOf(input, op);
      if (m === null) {
        op.note = "relabel (lossless)";
        continue;
      }
      const shape = input.get(op.input.scale!).shape;
      const where = `${op.input.scaleShard}: tensor "${op.input.scale}": block ${blockIndex(m.first, shape)} has scale ${m.value}`;
      const howMany = `${m.count} of ${m.total} scales`;
      if (targetScaleStorage(tgt!) !== "bf16") {
        throw new ConvertError(
          "lossy-relabel",
          `${where}, not a power of two, though the input declares UE8M0 scales (${howMany} are not); pass --requantize to requantize instead`,
        );
      }
      if (!allowLossy) {
        throw new ConvertError(
          "lossy-relabel",
          `${where}, which BF16 does not hold exactly (${howMany}); relabelling would move values by up to ${m.maxRel.toExponential(2)} relative. Pass --scale-dtype f32 to keep the scales exact, --allow-lossy to round them to BF16, or --requantize`,
        );
      }
      op.note = `relabel (lossy: ${howMany} rounded to BF16, values move by up to ${m.maxRel.toExponential(2)} relative)`;
    }
  }
}
