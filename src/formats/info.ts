import { formatState } from "./format-cache.js";
import type { FormatInfo, FormatName } from "./types.js";

const infos = new Map<FormatName, FormatInfo>();

/**
 * The traits of a format and the limits derived from them: max, min normal, min subnormal,
 * epsilon, emax (torchao's MAX_POW2), the Inf and NaN codes. Throws `unknown-format` for a name
 * that is not a format.
 */
export function formatInfo(format: FormatName): FormatInfo {
  const st = formatState(format);
  const cached = infos.get(st.traits.name);
  if (cached) return cached;
  const { traits: t, derived: d } = st;
  const f = new Float32Array(st.tableBits.buffer);
  const nanCodes: number[] = [];
  let infPos = -1;
  let infNeg = -1;
  let zeros = 0;
  for (let c = 0; c < 1 << t.bits; c++) {
    const v = f[c];
    if (Number.isNaN(v)) nanCodes.push(c);
    else if (v === Number.POSITIVE_INFINITY) infPos = c;
    else if (v === Number.NEGATIVE_INFINITY) infNeg = c;
    else if (v === 0) zeros++;
  }
  const one =
    t.specials === "tapered" ? 0x08 : t.specials === "e8m0" ? 127 : (t.bias << t.mantissaBits) >>> 0;
  const info: FormatInfo = Object.freeze({
    ...t,
    hasInf: infPos >= 0,
    hasNaN: nanCodes.length > 0,
    hasZero: zeros > 0,
    hasNegativeZero: zeros > 1,
    max: d.max,
    minNormal: d.minNormal,
    minSubnormal: d.minSubnormal,
    epsilon: f[one + 1] - 1,
    emax: d.emax,
    emin: d.emin,
    maxCode: d.maxCode,
    infCodes: infPos >= 0 ? ([infPos, infNeg] as const) : null,
    nanCodes: Object.freeze(nanCodes),
    codeCount: 1 << t.bits,
  });
  infos.set(t.name, info);
  return info;
}
