import { describe, expect, it } from "vitest";
import { derive } from "../../src/formats/codec.js";
import { buildEncodeTable, encodeTableKey } from "../../src/formats/fast.js";
import { FORMAT_NAMES, FORMATS } from "../../src/formats/registry.js";
import type { Overflow } from "../../src/formats/types.js";

// `buildEncodeTable` encodes only the keys of float32 exponent rows where the code changes and
// fills the rest from the run structure; this checks every key of every table against the one-key
// rule (`encodeScalar` on the key's representative), for every byte format and overflow mode.
describe("encode tables of the byte formats", () => {
  const byteFormats = FORMAT_NAMES.filter((f) => FORMATS[f].bits <= 8);
  it("cover the formats that use them", () => {
    expect(byteFormats).toEqual(expect.arrayContaining(["float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu"]));
  });
  for (const name of byteFormats) {
    for (const overflow of ["nonfinite", "saturate"] as Overflow[]) {
      it(`${name}, overflow ${overflow}: every key equals the one-key rule`, () => {
        const t = FORMATS[name];
        const d = derive(t);
        const table = buildEncodeTable(t, d, overflow);
        const bad: string[] = [];
        for (let key = 0; key < table.length; key++) {
          const want = encodeTableKey(t, d, overflow, key);
          if (table[key] !== want && bad.length < 5) bad.push(`key ${key}: ${table[key]} != ${want}`);
        }
        expect(bad).toEqual([]);
      });
    }
  }
});
