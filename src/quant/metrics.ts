import { QuantError } from "./errors.js";
import { type BlockSpec, checkShape, resolveBlock, scaleGrid, view2d } from "./layout.js";

/** Error of a dequantized tensor against its original, accumulated in float64. */
export interface ErrorMetrics {
  /** Pairs compared (all elements). */
  count: number;
  /** Pairs where both values are finite (the sums below run over these). */
  finiteCount: number;
  /** ||orig - deq||_F / ||orig||_F (0 when both are zero; Inf when only orig is zero). */
  relativeFrobenius: number;
  /** 10 log10(sum orig^2 / sum (orig - deq)^2) in dB (Inf for an exact match). */
  sqnrDb: number;
  /** sum(orig * deq) / sqrt(sum orig^2 * sum deq^2) (1 when both are zero, NaN when one is). */
  cosine: number;
  maxAbsError: number;
  /**
   * Per block: max |orig - deq| / max |orig| of the block (the error relative to what the block's
   * scale was chosen for); `maxBlockRelError` is the largest. Present when a layout was given.
   */
  blockRelError?: Float64Array;
  maxBlockRelError?: number;
  /** Finite inputs beyond the block's largest representable magnitude (needs `limits`). */
  saturated?: number;
  /** Non-zero finite inputs whose dequantized value is zero. */
  flushedToZero: number;
  nanInput: number;
  infInput: number;
  nanOutput: number;
  infOutput: number;
}

export interface MetricsOptions {
  /** Shape and block of the tensor, to compute per-block relative errors. */
  layout?: { shape: readonly number[]; block: BlockSpec };
  /**
   * Per-block largest representable magnitude (element max x block scale), row-major over the grid;
   * needs `layout`. Enables the `saturated` count.
   */
  limits?: Float32Array | Float64Array;
}

/**
 * Streaming accumulator: feed (original, dequantized) chunks in flat row-major order with `add`,
 * read the result with `result()`. Chunks may be any length; with a layout they must arrive in order.
 */
export class ErrorAccumulator {
  private n = 0;
  private finite = 0;
  private sumOO = 0;
  private sumDD = 0;
  private sumOD = 0;
  private sumEE = 0;
  private maxAbs = 0;
  private flushed = 0;
  private saturated = 0;
  private nanIn = 0;
  private infIn = 0;
  private nanOut = 0;
  private infOut = 0;
  private readonly cols: number = 0;
  private readonly br: number = 1;
  private readonly bc: number = 1;
  private readonly gc: number = 0;
  private readonly blockErr: Float64Array | null = null;
  private readonly blockAmax: Float64Array | null = null;
  private readonly limits: Float32Array | Float64Array | null = null;

  constructor(options: MetricsOptions = {}) {
    if (options.layout) {
      const { shape, block } = options.layout;
      checkShape(shape);
      const [, cols] = view2d(shape);
      const [br, bc] = resolveBlock(shape, block);
      const [gr, gc] = scaleGrid(shape, block);
      this.cols = cols;
      this.br = br;
      this.bc = bc;
      this.gc = gc;
      this.blockErr = new Float64Array(gr * gc);
      this.blockAmax = new Float64Array(gr * gc);
      if (options.limits) {
        if (options.limits.length !== gr * gc) {
          throw new QuantError(
            "bad-scales",
            `metrics: ${options.limits.length} block limits but the grid of [${shape.join(", ")}] has ${gr * gc} blocks`,
          );
        }
        this.limits = options.limits;
      }
    } else if (options.limits) {
      throw new QuantError("bad-input", "metrics: `limits` needs `layout`");
    }
  }

  /** Adds a chunk of pairs. */
  add(original: ArrayLike<number>, dequantized: ArrayLike<number>): this {
    if (original.length !== dequantized.length) {
      throw new QuantError(
        "bad-shape",
        `metrics: original chunk has ${original.length} values, dequantized ${dequantized.length}`,
      );
    }
    const blocks = this.blockErr !== null;
    for (let i = 0; i < original.length; i++) {
      const o = original[i];
      const d = dequantized[i];
      const idx = this.n++;
      if (Number.isNaN(o)) this.nanIn++;
      else if (!Number.isFinite(o)) this.infIn++;
      if (Number.isNaN(d)) this.nanOut++;
      else if (!Number.isFinite(d)) this.infOut++;
      let b = -1;
      if (blocks) {
        const r = Math.floor(idx / this.cols);
        const c = idx - r * this.cols;
        b = Math.floor(r / this.br) * this.gc + Math.floor(c / this.bc);
      }
      if (!Number.isFinite(o)) continue;
      if (this.limits !== null && Math.abs(o) > this.limits[b]) this.saturated++;
      if (!Number.isFinite(d)) continue;
      this.finite++;
      const e = o - d;
      this.sumOO += o * o;
      this.sumDD += d * d;
      this.sumOD += o * d;
      this.sumEE += e * e;
      const ae = Math.abs(e);
      if (ae > this.maxAbs) this.maxAbs = ae;
      if (o !== 0 && d === 0) this.flushed++;
      if (blocks) {
        if (ae > this.blockErr![b]) this.blockErr![b] = ae;
        const ao = Math.abs(o);
        if (ao > this.blockAmax![b]) this.blockAmax![b] = ao;
      }
    }
    return this;
  }

  result(): ErrorMetrics {
    const m: ErrorMetrics = {
      count: this.n,
      finiteCount: this.finite,
      relativeFrobenius:
        this.sumOO === 0
          ? this.sumEE === 0
            ? 0
            : Number.POSITIVE_INFINITY
          : Math.sqrt(this.sumEE / this.sumOO),
      sqnrDb: this.sumEE === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(this.sumOO / this.sumEE),
      cosine: this.sumOO === 0 && this.sumDD === 0 ? 1 : this.sumOD / Math.sqrt(this.sumOO * this.sumDD),
      maxAbsError: this.maxAbs,
      flushedToZero: this.flushed,
      nanInput: this.nanIn,
      infInput: this.infIn,
      nanOutput: this.nanOut,
      infOutput: this.infOut,
    };
    if (this.blockErr !== null) {
      const rel = new Float64Array(this.blockErr.length);
      let worst = 0;
      for (let b = 0; b < rel.length; b++) {
        const a = this.blockAmax![b];
        rel[b] = a === 0 ? (this.blockErr[b] === 0 ? 0 : Number.POSITIVE_INFINITY) : this.blockErr[b] / a;
        if (rel[b] > worst) worst = rel[b];
      }
      m.blockRelError = rel;
      m.maxBlockRelError = worst;
    }
    if (this.limits !== null) m.saturated = this.saturated;
    return m;
  }
}

/** One-shot `ErrorAccumulator`: metrics of a whole original/dequantized pair. */
export function errorMetrics(
  original: ArrayLike<number>,
  dequantized: ArrayLike<number>,
  options: MetricsOptions = {},
): ErrorMetrics {
  return new ErrorAccumulator(options).add(original, dequantized).result();
}
