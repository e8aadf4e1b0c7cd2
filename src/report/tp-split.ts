import { WHOLE_ROW } from "../quant/kernels/types.js";
import type { ReportQuantizedWeight } from "./layout.js";

/** Tensor-parallel sizes the report checks. */
export const TP_SIZES = [1, 2, 4, 8] as const;

/** How a linear layer is split across tensor-parallel ranks. */
export type ParallelStyle = "column" | "row" | "replicated";

/** One weight that does not split cleanly at a TP size. */
export interface TpSplitProblem {
  tensor: string;
  style: "column" | "row";
  /** Logical dimension that is split (0 = output rows, 1 = input columns of the 2-D view). */
  dim: 0 | 1;
  size: number;
  /** Elements of that dimension per rank (fractional when it does not divide). */
  partition: number;
  block: number;
  reason: "uneven" | "splits-block";
}

/** The result for one TP size. */
export interface TpSplitResult {
  tp: number;
  ok: boolean;
  checked: number;
  problems: TpSplitProblem[];
}

const COLUMN =
  /\.(q_proj|k_proj|v_proj|q_b_proj|kv_b_proj|gate_proj|up_proj|w1|w3|wq_b|gate_up_proj|qkv_proj)(\.|_|$)/;
const ROW = /\.(o_proj|down_proj|w2|out_proj|dense)(\.|_|$)/;

/**
 * How SGLang/vLLM split a weight: column-parallel layers (q/k/v, q_b, kv_b, gate, up; also fused
 * gate_up of experts) split the output dimension, row-parallel ones (o_proj, down_proj) the input
 * dimension; `q_a_proj` / `kv_a_proj_with_mqa` (DeepSeek's low-rank inputs) and anything else
 * is replicated.
 */
export function parallelStyle(name: string): ParallelStyle {
  if (/\.(q_a_proj|kv_a_proj_with_mqa)\./.test(name)) return "replicated";
  if (COLUMN.test(name)) return "column";
  if (ROW.test(name)) return "row";
  return "replicated";
}

/**
 * Which quantized weights would split across a quantization block at each TP size. SGLang's block
 * FP8 loader requires every rank's output partition to be divisible by block_n and every input
 * partition by block_k (`layers/quantization/fp8.py`); for MX/NVFP4 the input partition must be a
 * multiple of the group (32/16). A dimension that does not divide by the TP size at all is
 * reported as `uneven`. At TP size 1 nothing is split, so a partial edge block (576 rows of
 * `kv_a_proj_with_mqa`) is fine: the loaders check only when tp_size > 1.
 */
export function checkTpSplits(
  weights: readonly ReportQuantizedWeight[],
  sizes: readonly number[] = TP_SIZES,
): TpSplitResult[] {
  return sizes.map((tp) => {
    const problems: TpSplitProblem[] = [];
    let checked = 0;
    for (const w of weights) {
      const style = parallelStyle(w.name);
      if (style === "replicated" || w.shape.length < 2) continue;
      checked++;
      const dim: 0 | 1 = style === "column" ? 0 : 1;
      const size = w.shape[w.shape.length - 2 + dim];
      // One scale per tensor splits anywhere, one per row (Ascend's channels) too (the scale splits
      // with its rows, or is whole in every partition); otherwise a partition must hold whole blocks.
      const block = w.granularity === "tensor" || w.block[dim] === WHOLE_ROW ? 1 : w.block[dim];
      const partition = size / tp;
      if (tp === 1) continue;
      const reason = !Number.isInteger(partition)
        ? "uneven"
        : partition % block !== 0
          ? "splits-block"
          : null;
      if (reason) problems.push({ tensor: w.data, style, dim, size, partition, block, reason });
    }
    return { tp, ok: problems.length === 0, checked, problems };
  });
}
