/**
 * Relabelling one band: the target holds the source's element codes as they are, so no value is
 * touched; only the block scales are re-encoded into the target's storage and spread over its block
 * (a 128x128 UE8M0 scale becomes the E8M0 byte of each 1x32 group inside it). The error statistics
 * are those of the source's values against themselves when every scale was stored exactly (same
 * codes, same multipliers), else of decoding both sides: a lossy relabel (`relabel.lossy`: a scale
 * rounded to the storage, e.g. float32 into BF16) reports what it changed. `--verify` decodes the
 * written file either way.
 */
import { valuesOf } from "../element-codes.js";
import { addPairs, emptyStats } from "../error-stats.js";
import { QuantError } from "../errors.js";
import { convertScales } from "../scale-storage.js";
import { bandScales, decodeBand } from "./decode-band.js";
import type { EncodedBand } from "./encode-band.js";
import { decodeIntChannel, int4ScaleBias, unpackInt4Rows } from "./encode-int-channel.js";
import { type BandSpec, blockOf, type IntChannelCodec, targetAsSource, targetScaleStorage } from "./types.js";

/** The element format a target codec holds. */
function targetElement(t: BandSpec["target"]): string | null {
  if (t.kind === "fp8-block") return "float8_e4m3fn";
  if (t.kind === "mx") return t.element;
  if (t.kind === "nvfp4") return "float4_e2m1fn";
  return null;
}

/**
 * Why `spec` cannot be relabelled (the target would not hold the source's codes, or a target block
 * would straddle two source blocks), or null when it can. The scale values are checked by
 * `relabelBand` itself.
 */
export function relabelRefusal(spec: Pick<BandSpec, "source" | "target" | "cols">): string | null {
  const { source: s, target: t, cols } = spec;
  if (s.kind === "int-channel") {
    // Ascend's integers into Ascend's integers of the same width: codes and per-row scales as they are.
    return t.kind === "int-channel" && t.bits === s.bits
      ? null
      : "integer codes relabel only into the same integers";
  }
  if (s.kind !== "block") return "only block-scaled codes can be relabelled";
  if (targetElement(t) !== s.element) return `the target does not hold ${s.element} codes`;
  const [sr, sc] = s.block;
  const [tr, tc] = blockOf(t);
  // Source block edges are multiples of sr x sc, so each target block lies inside one source block.
  if (sr % tr !== 0 || sc % tc !== 0)
    return `a ${tr}x${tc} target block does not fit inside the ${sr}x${sc} source blocks`;
  if ((t.kind === "mx" || t.kind === "nvfp4") && cols % tc !== 0)
    return `rows of ${cols} elements are not whole groups of ${tc}`;
  if (t.kind === "nvfp4" ? s.tensorScale === undefined : s.tensorScale !== undefined)
    return "per-tensor scalars are relabelled only between NVFP4 layouts";
  return null;
}

/**
 * Relabel a band (see the file header). The codes are returned as they are (packed FP4 bytes are
 * the same in every layout: element 2i in the low nibble). Scales: each target block takes the
 * float32 multiplier of the source block it lies in, stored in the target's storage; a value the
 * storage cannot hold is a `QuantError` unless `spec.relabel.lossy`. Between NVFP4 layouts the E4M3
 * block scales are kept and only the per-tensor scalar changes (`spec.outTensorScale`, computed by
 * the caller).
 */
export function relabelBand(spec: BandSpec, data: Uint8Array, scale: Uint8Array | null): EncodedBand {
  const why = relabelRefusal(spec);
  if (why !== null) throw new QuantError("invalid-scheme", `cannot relabel: ${why}`);
  if (scale === null) throw new QuantError("invalid-scales", "a relabelled band needs its scale bytes");
  if (spec.source.kind === "int-channel") return relabelIntBand(spec, data, scale);
  const src = spec.source as Extract<BandSpec["source"], { kind: "block" }>;
  const { target: t, rows, cols } = spec;
  let outScale: Uint8Array;
  // Every scale stored exactly: the codes are the same bytes, so every value is the same.
  let exact = false;
  if (t.kind === "nvfp4") {
    outScale = scale.slice(0, Math.ceil(rows / src.block[0]) * Math.ceil(cols / src.block[1]));
  } else {
    const s = bandScales(src, scale, rows, cols, spec.tensorScale);
    const [sr, sc] = src.block;
    const [tr, tc] = blockOf(t);
    const sCols = Math.ceil(cols / sc);
    const tRows = Math.ceil(rows / tr);
    const tCols = Math.ceil(cols / tc);
    const spread = new Float32Array(tRows * tCols);
    for (let i = 0; i < tRows; i++) {
      const si = Math.floor((i * tr) / sr) * sCols;
      for (let j = 0; j < tCols; j++) spread[i * tCols + j] = s[si + Math.floor((j * tc) / sc)];
    }
    const storage = targetScaleStorage(t)!;
    const conv = convertScales(spread, "f32", storage, spec.relabel?.lossy ? { rounding: "nearest" } : {});
    outScale = new Uint8Array(conv.scales.buffer, conv.scales.byteOffset, conv.scales.byteLength);
    exact = conv.rounded === 0;
  }
  const st = emptyStats();
  const x = decodeBand(src, data, scale, rows, cols, spec.tensorScale);
  const y = exact ? x : decodeBand(targetAsSource(t), data, outScale, rows, cols, spec.outTensorScale);
  for (let i = 0; i < x.length; i++) addPairs(st, x[i], y[i], 1);
  // A copy: the caller may hand input and output buffers on (a worker transfers both).
  return { data: data.slice(), scale: outScale.slice(), stats: st };
}

/**
 * An integer (Ascend) band relabelled into the same integers: the codes and the float32 row scales
 * are copied; W4A8's `scale_bias` is computed again from them (the same values its producer derives
 * from the codes and scales, `int4ScaleBias`). Every value is the input's: the statistics are those
 * of the values against themselves.
 */
function relabelIntBand(spec: BandSpec, data: Uint8Array, scale: Uint8Array): EncodedBand {
  const { rows, cols, target: t } = spec;
  const bits = (spec.source as IntChannelCodec).bits;
  const x = decodeIntChannel(bits, data, scale, rows, cols);
  const st = emptyStats();
  for (let i = 0; i < x.length; i++) addPairs(st, x[i], x[i], 1);
  const outScale = scale.slice(0, rows * 4);
  let aux: Uint8Array | null = null;
  if (t.kind === "int-channel" && t.bits === 4 && t.scaleBias !== undefined) {
    const codes = unpackInt4Rows(data, rows, cols);
    const sb = int4ScaleBias(codes, new Float32Array(outScale.buffer), rows, cols, t.scaleBias);
    aux = new Uint8Array(sb.buffer);
  }
  return { data: data.slice(), scale: outScale, aux, stats: st };
}

/** Every positive finite E4M3 value (codes 1..126): the block scales an NVFP4 tensor can hold. */
const E4M3_SCALES: readonly number[] = Array.from(valuesOf("float8_e4m3fn").subarray(1, 127));

/** The float32 multiplier of block scale `s` under per-tensor scalar `t` combined by `mode`. */
const combine = (s: number, t: number, mode: "multiply" | "divide") =>
  Math.fround(mode === "multiply" ? s * t : s / t);

/**
 * The per-tensor scalar of an NVFP4 relabel: the target's scalar `u` that gives every block scale
 * the same float32 multiplier the source's `t` gives it (ModelOpt multiplies by `weight_scale_2`,
 * compressed-tensors divides by `weight_global_scale` = its reciprocal). The reciprocal fl32(1/t) and
 * its float32 neighbours are tried against all 126 positive E4M3 scales; `exact` is false when none
 * matches all of them (then `value` is the reciprocal, and some multipliers move by one float32 ulp).
 */
export function relabelTensorScale(
  t: number,
  from: "multiply" | "divide",
  to: "multiply" | "divide",
): { value: number; exact: boolean } {
  const t32 = Math.fround(t);
  if (from === to) return { value: t32, exact: true };
  const r = Math.fround(1 / t32);
  const fits = (u: number) => E4M3_SCALES.every((s) => combine(s, u, to) === combine(s, t32, from));
  for (const u of [r, ...neighbours(r)]) if (fits(u)) return { value: u, exact: true };
  return { value: r, exact: false };
}

/** The float32 values 1 and 2 ulp either side of positive finite `x`. */
function neighbours(x: number): number[] {
  const b = new Float32Array([x]);
  const u = new Uint32Array(b.buffer);
  const at = (d: number) => {
    const c = new Uint32Array([u[0] + d]);
    return new Float32Array(c.buffer)[0];
  };
  return [at(1), at(-1), at(2), at(-2)].filter((v) => Number.isFinite(v) && v > 0);
}
