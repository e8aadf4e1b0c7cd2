import { addPairs, type ErrorStats, emptyStats, summarizeErrorStats } from "./error-stats.js";
import { QuantError } from "./errors.js";
import { BlockRows, type BlockSpec, resolveBlock, scaleGrid, view2d } from "./layout.js";

/** Error of a dequantized tensor against its original, accumulated in float64. */
export interface ErrorMetrics {
  /** Pairs compared (all elements). */
  count: number;
  /** Pairs where both values are finite (the sums below run over these). */
  finiteCount: number;
  /** `ErrorSummary`'s relFrob, sqnrDb and cosine, with orig as x and deq as y. */
  relativeFrobenius: number;
  sqnrDb: number;
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
 * The sums are the shared `ErrorStats` record (`stats()`), over pairs where both values are finite.
 */
export class ErrorAccumulator {
  private n = 0;
  private readonly s = emptyStats();
  private nanIn = 0;
  private infIn = 0;
  private nanOut = 0;
  private infOut = 0;
  private readonly cols: number = 0;
  private readonly rows: BlockRows | null = null;
  private readonly bc: number = 1;
  private readonly gc: number = 0;
  private readonly blockErr: Float64Array | null = null;
  private readonly blockAmax: Float64Array | null = null;
  private readonly limits: Float32Array | Float64Array | null = null;

  constructor(options: MetricsOptions = {}) {
    if (options.layout) {
      const { shape, block } = options.layout;
      const [gr, gc] = scaleGrid(shape, block);
      this.cols = view2d(shape)[1];
      this.rows = new BlockRows(shape, block);
      this.bc = resolveBlock(shape, block)[1];
      this.gc = gc;
      this.blockErr = new Float64Array(gr * gc);
      this.blockAmax = new Float64Array(gr * gc);
      if (options.limits) {
        if (options.limits.length !== gr * gc) {
          throw new QuantError(
            "invalid-scales",
            `metrics: ${options.limits.length} block limits but the grid of [${shape.join(", ")}] has ${gr * gc} blocks`,
          );
        }
        this.limits = options.limits;
      }
    } else if (options.limits) {
      throw new QuantError("invalid-input", "metrics: `limits` needs `layout`");
    }
  }

  /** Adds a chunk of pairs. */
  add(original: ArrayLike<number>, dequantized: ArrayLike<number>): this {
    if (original.length !== dequantized.length) {
      throw new QuantError(
        "invalid-shape",
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
        b = this.rows!.of(r) * this.gc + Math.floor(c / this.bc);
      }
      if (!Number.isFinite(o)) {
        this.s.nonfinite++;
        continue;
      }
      if (this.limits !== null && Math.abs(o) > this.limits[b]) this.s.saturated++;
      if (!Number.isFinite(d)) continue;
      addPairs(this.s, o, d, 1);
      if (blocks) {
        const ae = Math.abs(o - d);
        if (ae > this.blockErr![b]) this.blockErr![b] = ae;
        const ao = Math.abs(o);
        if (ao > this.blockAmax![b]) this.blockAmax![b] = ao;
      }
    }
    return this;
  }

  /** The sums so far (a copy). */
  stats(): ErrorStats {
    return { ...this.s };
  }

  result(): ErrorMetrics {
    const { relFrob, sqnrDb, cosine } = summarizeErrorStats(this.s);
    const m: ErrorMetrics = {
      count: this.n,
      finiteCount: this.s.count,
      relativeFrobenius: relFrob,
      sqnrDb,
      cosine,
      maxAbsError: this.s.maxAbsErr,
      flushedToZero: this.s.flushed,
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
    if (this.limits !== null) m.saturated = this.s.saturated;
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
