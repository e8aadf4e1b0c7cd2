/**
 * Splitting a converted tensor into bands of whole block rows: the unit of work of the pool and of
 * `--verify`. A band is contiguous in the input and in the output (C order), and so are its scale rows.
 */
import { decodeBand } from "../quant/kernels/decode-band.js";
import { blockOf, rowBytes, scaleBytes } from "../quant/kernels/types.js";
import type { Checkpoint } from "../safetensors/index.js";
import type { TensorOp } from "./plan.js";

/** Elements per band (16 MB of float32 values in flight per band). */
export const BAND_ELEMENTS = 1 << 22;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

/** A band of rows of one op: where its bytes come from and go to. */
export interface Band {
  rows: number;
  inData: [number, number];
  inScale: [number, number] | null;
  outData: number;
  outScale: number | null;
  /** Where the band's rows start in the op's auxiliary output (W4A8's `scale_bias`), or null. */
  outAux: number | null;
}

/** Rows that must stay together in a band: INT4 codes pack rows in pairs. */
const rowPairs = (c: TensorOp["source"] | TensorOp["target"]) =>
  c?.kind === "int-channel" && c.bits === 4 ? 2 : 1;

/** Split a transform op into bands of whole block rows (see quant/kernels/decode-band.ts). */
export function bandsOf(op: TensorOp, bandElements = BAND_ELEMENTS): { cols: number; bands: Band[] } {
  const src = op.source!;
  const tgt = op.target!;
  const shape = op.shape;
  const cols = shape[shape.length - 1];
  const total = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const [sbr, sbc] = blockOf(src);
  const [tbr, tbc] = blockOf(tgt);
  const unit = lcm(lcm(sbr, tbr), lcm(rowPairs(src), rowPairs(tgt)));
  // Rows per matrix: all rows when no block spans rows and nothing is transposed.
  const whole = op.transpose || op.transposeInput;
  const R = (unit === 1 && !whole) || shape.length < 2 ? total : shape[shape.length - 2];
  const B = total / R;
  // A transposed output needs whole matrices (its rows are the input's columns).
  const bandRows = whole ? R : Math.max(unit, Math.floor(bandElements / Math.max(1, cols) / unit) * unit);
  const sRow = rowBytes(src, cols);
  const tRow = rowBytes(tgt, cols);
  const sSC = Math.ceil(cols / sbc) * scaleBytes(src);
  const tSC = Math.ceil(cols / tbc) * scaleBytes(tgt);
  const sSR = Math.ceil(R / sbr);
  const tSR = Math.ceil(R / tbr);
  const auxRow = op.output.aux ? op.output.aux.byteLength / total : 0;
  const bands: Band[] = [];
  for (let b = 0; b < B; b++) {
    for (let r0 = 0; r0 < R; r0 += bandRows) {
      const rows = Math.min(bandRows, R - r0);
      const row = b * R + r0;
      bands.push({
        rows,
        inData: [row * sRow, rows * sRow],
        inScale:
          src.kind === "block" || src.kind === "int-channel"
            ? [(b * sSR + r0 / sbr) * sSC, Math.ceil(rows / sbr) * sSC]
            : null,
        outData: row * tRow,
        outScale: tgt.kind !== "plain" ? (b * tSR + r0 / tbr) * tSC : null,
        outAux: op.output.aux ? row * auxRow : null,
      });
    }
  }
  return { cols, bands };
}

/**
 * The float32 input values of `band` of `op`: its code (or plain) bytes and block scales read from
 * `input`, decoded by the op's source codec with its per-tensor scalar (`tensorScale`).
 */
export async function readBandValues(
  input: Checkpoint,
  op: TensorOp,
  band: Band,
  cols: number,
  tensorScale: number | undefined,
): Promise<Float32Array> {
  const data = await input.readRange(op.input.data, band.inData[0], band.inData[1]);
  const scale =
    band.inScale && op.input.scale
      ? await input.readRange(op.input.scale, band.inScale[0], band.inScale[1])
      : null;
  return decodeBand(op.source!, data, scale, band.rows, cols, tensorScale);
}
