/**
 * NVFP4 quantization of a band by the rule of the producer whose dialect is written: E2M1 codes
 * packed two per byte (element 2i in the low nibble), one E4M3 scale per 16 along the row, and the
 * tensor's float32 scalar (`BandSpec.outTensorScale`, computed from the whole tensor's amax, or its
 * fusion group's, by `nvfp4TensorScale` before any band is encoded: convert/nvfp4-globals.ts).
 *
 * - `modelopt` (NVIDIA/Model-Optimizer `modelopt/torch/quantization/qtensor/nvfp4_tensor.py`,
 *   `NVFP4QTensor.get_weights_scaling_factor_2_from_quantizer`, `get_weights_scaling_factor`,
 *   `quantize`, `_cast_fp4`): `weight_scale_2` = fl32(amax / 2688); block scale
 *   s = fl32(bamax / fl32(6 * wsf2)), 0 -> 1.0, clamped below at 2^-9, E4M3 RNE (torch's cast: NaN
 *   from 480 up); elements x = fl32(w / fl32(s * wsf2)), E2M1 ties to even, |x| > 5 -> 6, the sign
 *   from x < 0 (so an exact -0.0 is code 0x0 and a negative value rounding to zero 0x8).
 * - `compressed-tensors` (vllm-project/compressed-tensors `quantization/utils/helpers.py`
 *   `generate_gparam`, `calculate_qparams`; `quantization/lifecycle/forward.py` `_quantize`;
 *   `compressors/nvfp4/helpers.py` `pack_fp4_to_uint8`): `weight_global_scale` =
 *   bf16(2688 / max(amax, 2^-126)), NaN/Inf -> 1 (`nan_to_num`), stored as F32; block scale
 *   s = fl32(bf16(bamax / 6) * global), clamped to +-448, E4M3 RNE, 0 -> 0.125 (`_get_dtype_eps`);
 *   elements q = fl32(x / fl32(s / global)), clamped to +-6, E2M1 ties to even, the sign from the
 *   sign bit (-0.0 -> 0x8).
 *
 * compressed-tensors computes `amax / 6` and `2688 / amax` in the weight's dtype, which for the
 * models it quantizes is BF16: both are rounded to BF16 here whatever the input dtype (bit-exact
 * for BF16 input; for F32 and F16 input this is compressed-tensors' rule on a BF16 model with the
 * input's exact values, not its F16/F32 arithmetic, where `2688 / amax` overflows F16 for
 * amax < 0.041). ModelOpt computes in float32 throughout, so its rule is exact for every input.
 *
 * Cases the producers do not handle, and what is written instead: an all-zero tensor (ModelOpt
 * divides 0 by 0) gets the scalar 1.0 in both dialects (compressed-tensors' own fallback); a block
 * whose scale is NaN (a NaN in it, or an Inf under ModelOpt's non-saturating E4M3 cast) stores the
 * E4M3 NaN code and every element the E2M1 NaN code of the codec, and decodes to NaN.
 */
import { float32BitsEncoder } from "../../formats/index.js";
import { amaxFromBits, bandAmaxBits, inputView } from "../block-amax.js";
import { addPairs, type ErrorStats, emptyStats } from "../error-stats.js";
import { QuantError } from "../errors.js";
import { NVFP4_GLOBAL_DIVISOR } from "../scale-rules.js";
import { outBytes } from "./buffers.js";
import { encodeNvfp4Wasm } from "./nvfp4-wasm.js";
import { bf16Round, E2M1_VALUES, E4M3_VALUES, e2m1FromBits, e2m1Nan } from "./tables.js";
import type { Nvfp4Rule, TargetCodec } from "./types.js";

/** Elements per NVFP4 block scale. */
const GROUP = 16;
/** E2M1's largest magnitude. */
const E2M1_MAX = 6;
/** E4M3's largest magnitude (compressed-tensors clamps its block scales to it). */
const E4M3_MAX = 448;
/** ModelOpt's lower clamp of a block scale: E4M3's smallest subnormal. */
const MODELOPT_SCALE_MIN = 2 ** -9;
/** `torch.finfo(torch.bfloat16).tiny`: compressed-tensors' floor of the tensor amax. */
const BF16_TINY = 2 ** -126;

/** float32 bits -> E4M3 code, RNE, NaN from 480 up: torch's `.to(torch.float8_e4m3fn)`. */
const e4m3Torch = float32BitsEncoder("float8_e4m3fn");
/** compressed-tensors' replacement for a zero block scale: E4M3's eps, 0.125. */
const CT_ZERO_SCALE = e4m3Torch(0x3e000000);

/**
 * The float32 per-tensor scalar `rule` stores for a tensor (or fusion group) whose largest finite
 * magnitude is `amax`: ModelOpt's `weight_scale_2` = fl32(amax / 2688), compressed-tensors'
 * `weight_global_scale` = bf16(2688 / max(amax, 2^-126)). Where the producer would store 0, NaN or
 * Inf (an all-zero tensor), 1.0 (see the file header).
 */
export function nvfp4TensorScale(rule: Nvfp4Rule, amax: number): number {
  const a = Math.fround(Math.abs(amax));
  if (rule === "modelopt") {
    const w = Math.fround(a / NVFP4_GLOBAL_DIVISOR);
    return w > 0 && Number.isFinite(w) ? w : 1;
  }
  // `448.0 * 6.0 / amax` with a BF16 tensor amax: PyTorch evaluates a number divided by a tensor as
  // `amax.reciprocal() * 2688` (torch/_tensor.py `__rtruediv__`), each step rounded to BF16.
  // The amax of a BF16 weight is a BF16 value (other inputs reach this rule through BF16).
  const g = bf16Round(bf16Round(1 / Math.max(bf16Round(a), BF16_TINY)) * NVFP4_GLOBAL_DIVISOR);
  return Number.isFinite(g) && g > 0 ? g : 1;
}

const tmp = new Float32Array(1);
const tmpBits = new Uint32Array(tmp.buffer);

/** The E4M3 code of ModelOpt's block scale for block amax `bamax` under `weight_scale_2` = `w`. */
function modeloptScaleCode(bamax: number, w: number): number {
  let s = Math.fround(bamax / Math.fround(6 * w));
  if (s === 0) s = 1;
  if (s < MODELOPT_SCALE_MIN) s = MODELOPT_SCALE_MIN; // NaN passes, as through torch.clamp
  tmp[0] = s;
  return e4m3Torch(tmpBits[0]);
}

/** The E4M3 code of compressed-tensors' block scale for block amax `bamax` under global `g`. */
function ctScaleCode(bamax: number, g: number): number {
  let s = Math.fround(bf16Round(bamax / 6) * g);
  if (s > E4M3_MAX) s = E4M3_MAX; // NaN passes, as through torch.clamp
  tmp[0] = s;
  const code = e4m3Torch(tmpBits[0]);
  return E4M3_VALUES[code] === 0 ? CT_ZERO_SCALE : code;
}

/**
 * Encode float32 values (`rows * cols`, `cols` a multiple of 16) into NVFP4 by `t.rule` with the
 * per-tensor scalar `tensorScale` (see the file header), fused with the error statistics of the
 * conversion. Each output value is the one `decodeBand` gives for the written bytes:
 * fl32(e2m1 * fl32(e4m3 * t)) (ModelOpt) or fl32(e2m1 * fl32(e4m3 / t)) (compressed-tensors).
 * Returns an `EncodedBand` (spelled out: encode-band.ts imports this file).
 *
 * The loop below is the specification. Where WebAssembly SIMD is available, ./nvfp4-wasm.ts runs
 * the element loop instead, with the scale codes still derived here (`multipliers`) and the groups
 * it does not take (NaN/Inf elements, NaN scales, extreme multipliers) encoded by `encodeGroup`:
 * the same bytes, the sums in another order (test/quant/kernels/nvfp4-wasm.test.ts).
 */
export function encodeNvfp4(
  t: Extract<TargetCodec, { kind: "nvfp4" }>,
  x: Float32Array,
  rows: number,
  cols: number,
  tensorScale: number | undefined,
): EncodedNvfp4 {
  return encodeNvfp4From(t, x, rows, cols, tensorScale)!;
}

/** An NVFP4 band (an `EncodedBand`): packed E2M1 codes, E4M3 scales, statistics. */
export interface EncodedNvfp4 {
  data: Uint8Array;
  scale: Uint8Array;
  stats: ErrorStats;
}

/**
 * `encodeNvfp4` of a BF16 band given as its bits: the WebAssembly kernel widens each chunk itself,
 * so the float32 band is never made in JavaScript. The same bytes and statistics as decoding it
 * and calling `encodeNvfp4`; null where WebAssembly SIMD does not run (the caller decodes).
 */
export function encodeNvfp4Bf16(
  t: Extract<TargetCodec, { kind: "nvfp4" }>,
  bits: Uint16Array,
  rows: number,
  cols: number,
  tensorScale: number | undefined,
): EncodedNvfp4 | null {
  return encodeNvfp4From(t, bits, rows, cols, tensorScale);
}

function encodeNvfp4From(
  t: Extract<TargetCodec, { kind: "nvfp4" }>,
  x: Float32Array | Uint16Array,
  rows: number,
  cols: number,
  tensorScale: number | undefined,
): EncodedNvfp4 | null {
  if (tensorScale === undefined || !(tensorScale > 0) || !Number.isFinite(tensorScale)) {
    throw new QuantError(
      "invalid-scales",
      `NVFP4 encoding needs the tensor's positive finite float32 scalar, got ${tensorScale}`,
    );
  }
  if (cols % GROUP !== 0) {
    throw new QuantError("invalid-block", `NVFP4 rows must be whole groups of ${GROUP}, got ${cols} columns`);
  }
  const ts = Math.fround(tensorScale);
  const modelopt = t.rule === "modelopt";
  const groups = cols / GROUP;
  const data = outBytes((rows * cols) / 2);
  const scale = new Uint8Array(rows * groups);
  const st = emptyStats();
  // A BF16 band's groups that the WebAssembly loop leaves to TypeScript are widened one at a time.
  const one = new Float32Array(GROUP);
  const oneBits = new Uint32Array(one.buffer);
  const fallback =
    x instanceof Float32Array
      ? (i: number) => encodeGroup(x, i * GROUP, i * GROUP, scale[i], ts, modelopt, data, st)
      : (i: number) => {
          for (let k = 0; k < GROUP; k++) oneBits[k] = x[i * GROUP + k] << 16;
          encodeGroup(one, 0, i * GROUP, scale[i], ts, modelopt, data, st);
        };
  // Rows are whole groups, so group i of the band is scale i, elements 16i..16i+15 and bytes
  // 8i..8i+7, whatever the row length: the WebAssembly loop sees a flat run of groups.
  newMemo();
  const viaWasm = encodeNvfp4Wasm(
    x,
    rows * groups,
    {
      multipliers: (first, bits, amax, sv) => multipliers(t.rule, ts, first, bits, amax, sv, scale),
      fallback,
    },
    data,
    st,
  );
  if (viaWasm) return { data, scale, stats: st };
  if (!(x instanceof Float32Array)) return null;
  const view = inputView(x, [rows, cols]);
  const amaxBits = new Uint32Array(groups);
  for (let r = 0; r < rows; r++) {
    bandAmaxBits(view, cols, r, r + 1, GROUP, amaxBits);
    for (let g = 0; g < groups; g++) {
      const bamax = amaxFromBits(view, amaxBits[g]);
      const sc = modelopt ? modeloptScaleCode(bamax, ts) : ctScaleCode(bamax, ts);
      scale[r * groups + g] = sc;
      const o = r * cols + g * GROUP;
      encodeGroup(x, o, o, sc, ts, modelopt, data, st);
    }
  }
  return { data, scale, stats: st };
}

/**
 * A memo of (scale code, multiplier) by the BF16 pattern of a group amax, for one tensor scalar and
 * rule: the amax of a BF16 input is a BF16 value, so a band's groups take at most 32768 distinct
 * amax and the codec's E4M3 encoder runs once for each. Entries are valid where their stamp is the
 * current `memoStamp` (a new stamp per band, instead of clearing the table).
 */
const memoStamps = new Uint32Array(32768);
const memoCodes = new Uint8Array(32768);
const memoSv = new Float32Array(32768);
let memoStamp = 0;

/** Forgets the memo (a band with another tensor scalar or rule may come next). */
function newMemo(): void {
  memoStamp = (memoStamp + 1) >>> 0;
  if (memoStamp === 0) {
    memoStamps.fill(0);
    memoStamp = 1;
  }
}

/**
 * `encodeNvfp4Wasm`'s per-group step (nvfp4-wasm.ts): the scale codes of groups `first + j` from
 * their amax, and the multipliers the SIMD loop may use, else 0. Its conditions: finite elements,
 * and 0 < sv with fl32(6 sv) finite, so every quotient codes by its RNE boundaries and every y is
 * finite. A NaN sv (a NaN scale code) fails them.
 */
function multipliers(
  rule: Nvfp4Rule,
  ts: number,
  first: number,
  bits: Uint32Array,
  amax: Float32Array,
  sv: Float32Array,
  scale: Uint8Array,
): void {
  const modelopt = rule === "modelopt";
  for (let j = 0; j < amax.length; j++) {
    const b = bits[j];
    const key = b >>> 16;
    if ((b & 0xffff) === 0 && memoStamps[key] === memoStamp) {
      scale[first + j] = memoCodes[key];
      sv[j] = memoSv[key];
      continue;
    }
    const bamax = amax[j];
    const sc = modelopt ? modeloptScaleCode(bamax, ts) : ctScaleCode(bamax, ts);
    scale[first + j] = sc;
    const e4 = E4M3_VALUES[sc];
    const m = Math.fround(modelopt ? e4 * ts : e4 / ts);
    const ok = Number.isFinite(bamax) && m > 0 && Math.fround(E2M1_MAX * m) < Number.POSITIVE_INFINITY;
    sv[j] = ok ? m : 0;
    if ((b & 0xffff) === 0) {
      memoStamps[key] = memoStamp;
      memoCodes[key] = sc;
      memoSv[key] = sv[j];
    }
  }
}

/**
 * The 16 elements `x[xo..]` of the group whose first element is element `o` of the band, under E4M3
 * block scale code `sc`: their packed codes (at byte o / 2) and statistics.
 */
function encodeGroup(
  x: Float32Array,
  xo: number,
  o: number,
  sc: number,
  ts: number,
  modelopt: boolean,
  data: Uint8Array,
  st: ErrorStats,
): void {
  const e4 = E4M3_VALUES[sc];
  if (Number.isNaN(e4)) {
    data.fill(e2m1Nan() | (e2m1Nan() << 4), o >> 1, (o + GROUP) >> 1);
    for (let i = 0; i < GROUP; i++) addPairs(st, x[xo + i], Number.NaN, 1);
    return;
  }
  // The block's multiplier exactly as decodeBand forms it.
  const sv = Math.fround(modelopt ? e4 * ts : e4 / ts);
  for (let i = 0; i < GROUP; i += 2) {
    const lo = encodeElement(x[xo + i], sv, modelopt, st);
    const hi = encodeElement(x[xo + i + 1], sv, modelopt, st);
    data[(o + i) >> 1] = lo | (hi << 4);
  }
}

/** One element's E2M1 code under block multiplier `sv`, its error added to `st`. */
function encodeElement(v: number, sv: number, modelopt: boolean, st: ErrorStats): number {
  tmp[0] = v / sv;
  const q = tmp[0];
  // A scaled -0.0 is code 0x0 in both: ModelOpt takes the sign from x < 0, compressed-tensors'
  // `cast_to_fp4` multiplies by torch.sign(x), which is +0 there. In ModelOpt a NaN here is 0 / 0
  // (fl32(s * wsf2) underflowed to 0 for a zero element): a zero. Otherwise RNE, saturating at +-6.
  const zero = tmpBits[0] === 0x80000000 || (modelopt && Number.isNaN(q));
  const code = zero ? 0 : e2m1FromBits(tmpBits[0]);
  if (Math.abs(q) > E2M1_MAX && Number.isFinite(v)) st.saturated++;
  addPairs(st, v, Math.fround(E2M1_VALUES[code] * sv), 1);
  return code;
}
