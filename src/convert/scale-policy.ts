/**
 * The bad-scale policy of a conversion (`--bad-scales`, docs/CONVERT.md "Bad scales"). Before the
 * output directory is touched, every input scale the run converts (block scales of any storage and
 * per-tensor scalars) is classified by the quant layer's `checkScales`, the classification `lint`
 * and `audit` report, so the three agree on every file:
 * - `refuse` (default): a NaN, infinite, negative, zero or overflowing scale is a `ConvertError`
 *   (`invalid-scales`, exit 2) naming the shard, the scale tensor, the block and the value, and
 *   nothing is written;
 * - `keep`: block scales are converted as stored (zero blocks stay zero, negative scales flip signs,
 *   NaN/Inf/overflowing scales give NaN/Inf values, which still need `--allow-nonfinite`). A NaN,
 *   infinite, zero or negative per-tensor scale is refused under both policies: it would make the
 *   whole tensor NaN, zero or sign-flipped, and the kernels need a finite positive scalar.
 * Subnormal scales are a warning for `lint` and `audit`, never a refusal.
 *
 * Cost: one extra read of the scale tensors, 1/4096 of the weights for 128x128 float scales (1/32
 * for MX E8M0), in chunks of `CHUNK` bytes.
 */
import type { SourceElement } from "../quant/kernels/types.js";
import {
  checkScales,
  describeFirstProblem,
  emptyScaleCheck,
  problemsFound,
  SCALE_PROBLEM_SEVERITY,
  type ScaleCheck,
  type ScaleProblem,
} from "../quant/scale-check.js";
import { SCALE_BYTES, type ScaleStorage } from "../quant/scale-encoding.js";
import { decodeScales, scaleArrayOfBytes } from "../quant/scale-storage.js";
import type { Checkpoint, Dtype } from "../safetensors/index.js";
import { ConvertError } from "./errors.js";
import { type BadScalePolicy, type ConvertPlan, shardsOfPart, type TensorOp } from "./plan.js";

/** Bytes of scales read at once (memory stays flat whatever the scale tensor's size). */
const CHUNK = 1 << 20;

/** Per-tensor problems `keep` cannot convert (the kernels need a finite positive scalar). */
const NEVER_KEPT: ReadonlySet<ScaleProblem> = new Set(["nan", "inf", "negative", "zero"]);

/** Storage of the dtypes a per-tensor scale may have (tensor-scale.ts reads the same three). */
const SCALAR_STORAGE: Partial<Record<Dtype, ScaleStorage>> = { F32: "f32", BF16: "bf16", F16: "f16" };

/** A checked scale tensor with at least one error. */
interface BadScaleTensor {
  shard: string;
  name: string;
  shape: number[];
  check: ScaleCheck;
  /** The errors the policy refuses. */
  refused: ScaleProblem[];
  perTensor: boolean;
}

/**
 * Calls `fn` with the float32 values of the `storage` scales of tensor `name`, `CHUNK` bytes at a
 * time, and the index of the chunk's first scale (memory stays flat whatever the tensor's size).
 */
export async function forEachScaleChunk(
  input: Checkpoint,
  name: string,
  storage: ScaleStorage,
  fn: (values: Float32Array, first: number) => void,
): Promise<void> {
  const size = SCALE_BYTES[storage];
  const total = input.get(name).byteLength;
  const step = Math.max(size, CHUNK - (CHUNK % size));
  for (let off = 0; off + size <= total; off += step) {
    const len = Math.min(step, total - off);
    const n = Math.floor(len / size);
    const bytes = await input.readRange(name, off, n * size);
    fn(decodeScales(scaleArrayOfBytes(storage, bytes, n), storage), off / size);
  }
}

/** Classifies `storage` scales of tensor `name`. */
async function checkTensor(
  input: Checkpoint,
  name: string,
  storage: ScaleStorage,
  element: SourceElement,
): Promise<ScaleCheck> {
  const check = emptyScaleCheck();
  await forEachScaleChunk(input, name, storage, (v, first) => checkScales(v, element, check, first));
  return check;
}

/** The scale tensors of `op` with their storage: its block scales and its per-tensor scalar. */
function scaleTensorsOf(input: Checkpoint, op: TensorOp, policy: BadScalePolicy) {
  const src = op.source;
  const out: { name: string; storage: ScaleStorage; element: SourceElement; perTensor: boolean }[] = [];
  // Integer channel scales are this run's own output, never read back here.
  if (src === null || src.kind === "plain" || src.kind === "int-channel") return out;
  // Under `keep` only per-tensor scalars can be refused: block scales need not be read.
  if (src.kind === "block" && op.input.scale !== null && policy === "refuse")
    out.push({ name: op.input.scale, storage: src.scaleStorage, element: src.element, perTensor: false });
  const scalar = op.input.tensorScale;
  const t = scalar === null ? null : input.get(scalar);
  const storage = t === null ? undefined : SCALAR_STORAGE[t.dtype];
  // Dtype and shape of a scalar are `readTensorScale`'s to refuse (tensor-scale.ts).
  if (scalar !== null && storage !== undefined && t !== null && t.byteLength === SCALE_BYTES[storage])
    out.push({ name: scalar, storage, element: src.element, perTensor: true });
  return out;
}

/** The problems of `check` that `policy` refuses for a block (or per-tensor) scale. */
function refusedProblems(check: ScaleCheck, policy: BadScalePolicy, perTensor: boolean): ScaleProblem[] {
  return problemsFound(check).filter(
    (p) => SCALE_PROBLEM_SEVERITY[p] === "error" && (policy === "refuse" || (perTensor && NEVER_KEPT.has(p))),
  );
}

/** The refusal: the first bad tensor's first bad block, how many scales and tensors, what to do. */
function refusal(bad: BadScaleTensor[]): ConvertError {
  const [b] = bad;
  const first = b.refused[0];
  const kinds = b.refused.map((p) => `${b.check.problems[p].count} ${p}`).join(", ");
  const bad1 = b.refused.reduce((n, p) => n + b.check.problems[p].count, 0);
  const more = bad.length > 1 ? `; ${bad.length - 1} more scale tensor(s) too, e.g. "${bad[1].name}"` : "";
  const what =
    b.perTensor && b.refused.some((p) => NEVER_KEPT.has(p))
      ? "recompute the scale from the original weights (--bad-scales keep does not apply to a per-tensor scale: the whole tensor would be lost)"
      : "recompute the scales from the original weights, or pass --bad-scales keep to convert the stored values as they are";
  return new ConvertError(
    "invalid-scales",
    `${b.shard}: tensor "${b.name}": ${describeFirstProblem(b.check, first, b.shape)}; ${bad1} of ${b.check.scales} scales are unusable (${kinds})${more}; ${what}`,
  );
}

/**
 * Checks the input scales of every op this run writes (all shards, or part `part` of them) against
 * `plan.options.badScales` and throws the refusal, if any, before anything is written.
 */
export async function refuseBadScales(
  input: Checkpoint,
  plan: ConvertPlan,
  part: [number, number] | null | undefined,
): Promise<void> {
  const policy = plan.options.badScales;
  const shards = part ? shardsOfPart(plan.shards, part[0], part[1]) : plan.shards;
  const bad: BadScaleTensor[] = [];
  for (const shard of shards) {
    for (const k of shard.ops) {
      const op = plan.ops[k];
      for (const s of scaleTensorsOf(input, op, policy)) {
        const check = await checkTensor(input, s.name, s.storage, s.element);
        const refused = refusedProblems(check, policy, s.perTensor);
        if (refused.length === 0) continue;
        const t = input.get(s.name);
        bad.push({
          shard: t.shard,
          name: s.name,
          shape: [...t.shape],
          check,
          refused,
          perTensor: s.perTensor,
        });
      }
    }
  }
  if (bad.length > 0) throw refusal(bad);
}
