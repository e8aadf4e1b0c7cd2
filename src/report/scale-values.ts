import { scaleStorageOf } from "../checkpoint/index.js";
import {
  blockCoordinate,
  checkScales,
  formatScale,
  problemsFound,
  SCALE_PROBLEM_EFFECT,
  SCALE_PROBLEM_SEVERITY,
  type ScaleCheck,
  type ScaleProblem,
} from "../quant/scale-check.js";
import { SCALE_BYTES } from "../quant/scale-encoding.js";
import { decodeScales, scaleArrayOfBytes } from "../quant/scale-storage.js";
import type { Dtype } from "../safetensors/index.js";
import { type Finding, type FindingCode, finding } from "./findings.js";
import type { ReportQuantizedWeight } from "./layout.js";
import type { ShardSources } from "./shard-sources.js";
import type { Snapshot, SnapshotTensor } from "./snapshot.js";

/**
 * Scale tensors decoded to float32: F32 as is, BF16/F16 widened, U8/F8_E8M0 as 2^(b-127) (0xFF is
 * NaN), F8_E4M3 (NVFP4 block scales) through the E4M3 table. Returns null for other dtypes.
 */
export function decodeScaleValues(dtype: Dtype, bytes: Uint8Array): Float32Array | null {
  const storage = scaleStorageOf(dtype);
  if (storage === null) return null;
  return decodeScales(scaleArrayOfBytes(storage, bytes, bytes.length / SCALE_BYTES[storage]), storage);
}

/** The lint code and the words of each scale problem. */
const PROBLEM_FINDINGS: Readonly<Record<ScaleProblem, { code: FindingCode; are: string }>> = {
  nan: { code: "scale-nan", are: "NaN" },
  inf: { code: "scale-inf", are: "infinite" },
  negative: { code: "scale-negative", are: "negative" },
  zero: { code: "scale-zero", are: "zero" },
  overflow: { code: "scale-overflow", are: "too large for float32" },
  subnormal: { code: "scale-subnormal", are: "float32 subnormals" },
};

/**
 * The findings of one checked scale tensor (`checkScales` of the quant layer, the classification
 * `convert` refuses on): one per problem found, naming the first such scale's block in the scale
 * tensor of `shape` (`[row-block, col-block]`), its flat index and value.
 */
export function scaleFindings(
  check: ScaleCheck,
  file: string,
  tensor: string,
  shape: readonly number[],
  weight: string,
): Finding[] {
  const module = weight.replace(/\.weight$/, "");
  return problemsFound(check).map((p) => {
    const c = check.problems[p];
    const scalar = shape.length === 0 || (shape.length === 1 && shape[0] === 1);
    const at = scalar ? "" : `block [${blockCoordinate(c.first, shape).join(", ")}], `;
    const message = `${c.count} of ${check.scales} scales are ${PROBLEM_FINDINGS[p].are} (first at ${at}flat index ${c.first}: ${formatScale(c.firstValue)}; ${SCALE_PROBLEM_EFFECT[p]})`;
    const fix =
      p === "subnormal"
        ? `fine where subnormals are kept; else requantize ${module} with scales of at least 2^-126`
        : `recompute the scales of ${module} from the original weights`;
    return finding(SCALE_PROBLEM_SEVERITY[p], PROBLEM_FINDINGS[p].code, file, tensor, message, fix);
  });
}

/** What `readWeightScales` found. */
export interface WeightScales {
  /** The weight's scale tensor decoded (null when its dtype holds no scales). */
  values: Float32Array | null;
  /** Its bad scales and those of its per-tensor scalar (NVFP4), as findings. */
  findings: Finding[];
  /** Scale tensors read. */
  read: number;
}

/**
 * Reads and checks the scales of quantized weight `q`: its scale tensor (`scaleBytes` when the
 * caller has read it already) and, for NVFP4, its per-tensor scalar, each against the largest
 * value of the weight's element format. `lint` and `audit` both report through this, so they give
 * the same verdict for the same file (and `convert` refuses on the same classification).
 */
export async function readWeightScales(
  q: ReportQuantizedWeight,
  s: Snapshot,
  sources: ShardSources,
  scaleBytes?: Uint8Array,
): Promise<WeightScales> {
  const readValues = async (t: SnapshotTensor, bytes?: Uint8Array) =>
    decodeScaleValues(t.dtype, bytes ?? (await sources.read(t.shard, t.fileOffsets[0], t.byteLength)));
  const out: WeightScales = { values: null, findings: [], read: 0 };
  const check = (t: SnapshotTensor, values: Float32Array) =>
    out.findings.push(...scaleFindings(checkScales(values, q.element), t.shard, t.name, t.shape, q.name));
  const st = s.byName.get(q.scale);
  if (st) {
    out.values = await readValues(st, scaleBytes);
    out.read++;
    if (out.values) check(st, out.values);
  }
  const tt = q.tensorScale ? s.byName.get(q.tensorScale.name) : undefined;
  if (tt && tt.byteLength <= 4) {
    const values = await readValues(tt);
    out.read++;
    if (values) check(tt, values);
  }
  return out;
}
