import type { FormatTraits } from "./types.js";

/** What a format's file states: its name, specials and provenance, plus any trait off the defaults. */
type Special = Pick<FormatTraits, "name" | "specials" | "quietNaN" | "source"> & Partial<FormatTraits>;

/**
 * A format's traits from what is special about it. The widths come from an ml_dtypes name
 * (`float<bits>_e<E>m<M>...`); the defaults are a sign bit, the IEEE bias 2^(E-1)-1 (one more for
 * fnuz, as ml_dtypes has it) and round-to-nearest-even.
 */
export function minifloat(t: Special): FormatTraits {
  const [, bits, e, m] = /^float(\d+)_e(\d)m(\d)/.exec(t.name) ?? [];
  const exponentBits = t.exponentBits ?? Number(e);
  return {
    name: t.name,
    bits: t.bits ?? (Number(bits) as FormatTraits["bits"]),
    exponentBits,
    mantissaBits: t.mantissaBits ?? Number(m),
    bias: t.bias ?? 2 ** (exponentBits - 1) - 1 + (t.specials === "fnuz" ? 1 : 0),
    signed: t.signed ?? true,
    specials: t.specials,
    quietNaN: t.quietNaN,
    defaultRounding: t.defaultRounding ?? "rne",
    source: t.source,
  };
}
