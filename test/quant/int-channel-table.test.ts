/**
 * The INT8/INT4 per-channel kernel looks a long row's codes up in a per-row table of BF16 patterns
 * (src/quant/kernels/encode-int-channel.ts `codeTable`) and computes a short row's directly. Both
 * must give msModelSlim's codes (test/convert/ascend-reference.ts, an independent transcription):
 * here on rows holding EVERY BF16 magnitude up to their amax, both signs (every table entry is
 * used), for amax values across the exponent range, including subnormal and eps-floored scales,
 * and on short rows of the same values (the direct path).
 */
import { describe, expect, it } from "vitest";
import { quantizeIntChannel } from "../../src/quant/kernels/encode-int-channel.js";
import { bf16, refRow } from "../convert/ascend-reference.js";
import { mulberry32 } from "../safetensors/helpers.js";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const ofBf16Pattern = (p: number) => {
  u32[0] = p << 16;
  return f32[0];
};

/** Every BF16 magnitude from 0 to `amax` (a BF16 pattern), each with both signs, then `amax`. */
function everyValueUpTo(top: number): Float32Array {
  const out = new Float32Array(2 * (top + 1));
  for (let p = 0; p <= top; p++) {
    out[2 * p] = ofBf16Pattern(p);
    out[2 * p + 1] = -ofBf16Pattern(p);
  }
  return out;
}

function expectCodes(x: Float32Array, bits: 8 | 4, what: string): void {
  const got = quantizeIntChannel(x, 1, x.length, bits);
  const ref = refRow(x, bits);
  expect(got.scales[0], `${what}: scale`).toBe(ref.s);
  let diff = 0;
  let first = -1;
  for (let i = 0; i < x.length; i++)
    if (got.codes[i] !== ref.q[i]) {
      diff++;
      if (first < 0) first = i;
    }
  expect({ diff, first, value: first < 0 ? null : x[first] }, what).toEqual({
    diff: 0,
    first: -1,
    value: null,
  });
}

describe("per-row code table = direct computation = msModelSlim's steps", () => {
  // amax patterns: subnormal, tiny (eps floor), around 1, large, near the top of the BF16 range.
  const tops = [0x0001, 0x0040, 0x2000, 0x3380, 0x3400, 0x3c00, 0x3f80, 0x3fff, 0x4300, 0x5f00, 0x7f7f];
  for (const bits of [8, 4] as const) {
    it(`INT${bits}: rows of every BF16 value up to amax (lookup path)`, () => {
      for (const top of tops) expectCodes(everyValueUpTo(top), bits, `amax pattern 0x${top.toString(16)}`);
    });
  }

  it("short rows (direct path) of random values give the same codes as the reference", () => {
    const rnd = mulberry32(7);
    for (let k = 0; k < 400; k++) {
      const n = 1 + Math.floor(rnd() * 60);
      const scale = 2 ** Math.floor(rnd() * 60 - 40);
      const x = Float32Array.from({ length: n }, () => bf16((rnd() * 2 - 1) * scale));
      expectCodes(x, 8, `row ${k}`);
    }
  });

  it("long rows of random float32 values (not BF16: rounded first) with outliers", () => {
    const rnd = mulberry32(11);
    for (let k = 0; k < 20; k++) {
      const x = Float32Array.from({ length: 4096 }, () => (rnd() * 2 - 1) * 0.02);
      for (let j = 0; j < 8; j++) x[Math.floor(rnd() * x.length)] = (rnd() * 2 - 1) * 0.5;
      expectCodes(x, 8, `row ${k}`);
      expectCodes(x, 4, `row ${k} INT4 scale`);
    }
  });
});
