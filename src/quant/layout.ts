import { QuantError, where } from "./errors.js";

/**
 * A block: `[rows, cols]` over the 2-D view `[prod(shape[:-1]), shape[-1]]` of a tensor, or
 * `"tensor"` (one block covering everything) or `"row"` (`[1, cols]`, per-channel).
 * Examples: `[128, 128]` DeepSeek weights, `[1, 128]` DeepSeek activations, `[1, 32]` MX,
 * `[1, 16]` NVFP4.
 */
export type BlockSpec = readonly [number, number] | "tensor" | "row";

/** Checks a shape: non-empty array of non-negative safe integers. Returns the element count. */
export function checkShape(shape: readonly number[], name?: string): number {
  if (!Array.isArray(shape) || shape.length === 0) {
    throw new QuantError(
      "invalid-shape",
      `${where(name)}shape ${JSON.stringify(shape)} must be a non-empty array`,
    );
  }
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new QuantError(
        "invalid-shape",
        `${where(name)}shape [${shape.join(", ")}] has dimension ${String(d)}: expected non-negative integers`,
      );
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) {
    throw new QuantError("invalid-shape", `${where(name)}shape [${shape.join(", ")}] has too many elements`);
  }
  return n;
}

/** Checks that `length` matches the element count of `shape`. */
export function checkLength(length: number, shape: readonly number[], name?: string, what = "data"): number {
  const n = checkShape(shape, name);
  if (length !== n) {
    throw new QuantError(
      "invalid-shape",
      `${where(name)}${what} has ${length} elements but shape [${shape.join(", ")}] needs ${n}`,
    );
  }
  return n;
}

/** The 2-D view `[prod(shape[:-1]), shape[-1]]` of a shape. */
export function view2d(shape: readonly number[]): [number, number] {
  const cols = shape[shape.length - 1];
  let rows = 1;
  for (let i = 0; i < shape.length - 1; i++) rows *= shape[i];
  return [rows, cols];
}

/** Validates a block spec and resolves it against a shape: `[rows, cols]` of one block. */
export function resolveBlock(shape: readonly number[], block: BlockSpec, name?: string): [number, number] {
  const [rows, cols] = view2d(shape);
  if (block === "tensor") return [Math.max(rows, 1), Math.max(cols, 1)];
  if (block === "row") return [1, Math.max(cols, 1)];
  checkBlock(block, name);
  return [block[0], block[1]];
}

/** Checks that a block is two positive integers. */
export function checkBlock(block: unknown, name?: string): asserts block is readonly [number, number] {
  if (
    !Array.isArray(block) ||
    block.length !== 2 ||
    !block.every((b) => Number.isSafeInteger(b) && (b as number) > 0)
  ) {
    throw new QuantError(
      "invalid-block",
      `${where(name)}block ${JSON.stringify(block)} must be [rows, cols] of positive integers, "row" or "tensor"`,
    );
  }
}

/**
 * The block rows of a tensor's 2-D view. Blocks of more than one row restart at every matrix of a
 * stacked tensor (the last two dimensions; `[experts, rows, cols]` MoE weights): no block straddles
 * two matrices, as in the checkpoints loaders read (`expectedScaleShape` of the checkpoint layer).
 * 1xK tiles and `"tensor"` blocks cover the view as a whole.
 */
export class BlockRows {
  /** Rows of one block. */
  readonly br: number;
  /** Rows of the view one matrix holds (all of them when blocks do not restart). */
  readonly matrixRows: number;
  /** Block rows per matrix, and in all. */
  readonly perMatrix: number;
  readonly count: number;

  constructor(shape: readonly number[], block: BlockSpec) {
    const [rows] = view2d(shape);
    const br = resolveBlock(shape, block)[0];
    this.br = br;
    const stacked = block !== "tensor" && br > 1 && shape.length >= 3;
    this.matrixRows = stacked ? shape[shape.length - 2] : rows;
    this.perMatrix = Math.ceil(this.matrixRows / br);
    this.count = this.matrixRows === 0 ? 0 : (rows / this.matrixRows) * this.perMatrix;
  }

  /** First row of block row `g`. */
  start(g: number): number {
    const m = Math.floor(g / this.perMatrix);
    return m * this.matrixRows + (g - m * this.perMatrix) * this.br;
  }

  /** One past the last row of block row `g`. */
  end(g: number): number {
    const m = Math.floor(g / this.perMatrix);
    return Math.min(this.start(g) + this.br, (m + 1) * this.matrixRows);
  }

  /** Block row of row `r`. */
  of(r: number): number {
    const m = Math.floor(r / this.matrixRows);
    return m * this.perMatrix + Math.floor((r - m * this.matrixRows) / this.br);
  }
}

/**
 * Number of blocks along each axis of the 2-D view, edge blocks included: `[block rows, ceil(cols /
 * block[1])]` (a [576, 7168] weight in 128x128 blocks: [5, 56]; [2, 192, 128] stacked experts: [4, 1]).
 */
export function scaleGrid(shape: readonly number[], block: BlockSpec): [number, number] {
  checkShape(shape);
  const [, cols] = view2d(shape);
  const [, bc] = resolveBlock(shape, block);
  return [new BlockRows(shape, block).count, Math.ceil(cols / bc)];
}

/**
 * Shape of the stored scale tensor. For 1xK tiles it keeps the leading dimensions
 * (`[..., shape[-1] / K]`, as torchao and DeepGEMM store activation scales); for blocks of more rows
 * it is the per-matrix grid, leading dimensions kept (`[..., ceil(rows / br), ceil(cols / bc)]`,
 * DeepSeek's `weight_scale_inv`); for `"tensor"` and rank-1 shapes the grid `[gr, gc]`.
 */
export function scaleShapeFor(shape: readonly number[], block: BlockSpec): number[] {
  const [br] = resolveBlock(shape, block);
  const [gr, gc] = scaleGrid(shape, block);
  if (br === 1) return [...shape.slice(0, -1), gc];
  if (block === "tensor" || shape.length < 3) return [gr, gc];
  return [...shape.slice(0, -2), new BlockRows(shape, block).perMatrix, gc];
}

/** Checks a scale tensor's shape and length against the grid a block layout needs. */
export function checkScaleShape(
  scaleShape: readonly number[],
  scaleLength: number,
  shape: readonly number[],
  block: BlockSpec,
  name?: string,
): void {
  const [gr, gc] = scaleGrid(shape, block);
  const expected = scaleShapeFor(shape, block);
  let n = 1;
  for (const d of scaleShape) n *= d;
  const okShape =
    Array.isArray(scaleShape) &&
    scaleShape.every((d) => Number.isSafeInteger(d) && d >= 0) &&
    n === gr * gc &&
    (scaleShape.length === 0 ? gr * gc === 1 : scaleShape[scaleShape.length - 1] === gc || gr * gc === 1);
  if (!okShape || scaleLength !== gr * gc) {
    throw new QuantError(
      "invalid-scales",
      `${where(name)}scale tensor of shape [${scaleShape.join(", ")}] (${scaleLength} values) does not match ` +
        `the block grid of shape [${shape.join(", ")}] in blocks [${resolveBlock(shape, block).join(", ")}]: ` +
        `expected [${expected.join(", ")}] (${gr * gc} values)`,
    );
  }
}
