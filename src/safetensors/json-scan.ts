/**
 * A single pass over JSON text that `JSON.parse` has already accepted, finding what `JSON.parse`
 * hides: duplicate keys (it silently keeps the last one; the safetensors README forbids them) and
 * number tokens that are not plain non-negative integers (`3.0`, `1e2`, `-1` parse to numbers, but
 * the reference's serde types reject them; safetensors headers hold only unsigned integers).
 */
export type JsonScanProblem =
  | { kind: "duplicate-key"; key: string; topKey: string | null }
  | { kind: "bad-number"; text: string; topKey: string | null };

interface Frame {
  object: boolean;
  expectKey: boolean;
  keys: Set<string> | null;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function decodeKey(text: string, start: number, end: number, escaped: boolean): string {
  return escaped ? (JSON.parse(text.slice(start, end + 1)) as string) : text.slice(start + 1, end);
}

/** Scan `text` (valid JSON) and return the first problem, or null when there is none. */
export function scanJson(text: string): JsonScanProblem | null {
  const stack: Frame[] = [];
  let topKey: string | null = null;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Find the closing quote; a quote preceded by an odd number of backslashes is escaped.
      let j = i + 1;
      let escaped = false;
      for (;;) {
        j = text.indexOf('"', j);
        if (j < 0) return null; // unreachable for valid JSON
        let k = j - 1;
        while (text.charCodeAt(k) === BACKSLASH) k--;
        if ((j - 1 - k) % 2 === 0) break;
        escaped = true;
        j++;
      }
      if (!escaped) escaped = text.slice(i + 1, j).includes("\\");
      const top = stack[stack.length - 1];
      if (top?.object && top.expectKey) {
        const key = decodeKey(text, i, j, escaped);
        if (top.keys!.has(key))
          return { kind: "duplicate-key", key, topKey: stack.length === 1 ? null : topKey };
        top.keys!.add(key);
        if (stack.length === 1) topKey = key;
        top.expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === 0x7b /* { */) stack.push({ object: true, expectKey: true, keys: new Set() });
    else if (c === 0x5b /* [ */) stack.push({ object: false, expectKey: false, keys: null });
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.object) top.expectKey = true;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      let plain = c !== 0x2d;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d >= 0x30 && d <= 0x39) j++;
        else if (d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) {
          plain = false;
          j++;
        } else break;
      }
      if (!plain) return { kind: "bad-number", text: text.slice(i, j), topKey };
      i = j;
      continue;
    }
    i++;
  }
  return null;
}
