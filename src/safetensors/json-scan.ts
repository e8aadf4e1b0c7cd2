/**
 * A single pass over JSON text that `JSON.parse` has already accepted, finding what `JSON.parse`
 * hides: duplicate keys (it silently keeps the last one; the safetensors README forbids them) and
 * number tokens that are not plain non-negative integers (`3.0`, `1e2`, `-1` parse to numbers, but
 * the reference's serde types reject them; safetensors headers hold only unsigned integers).
 */
export type JsonScanProblem =
  | { kind: "duplicate-key"; key: string; topKey: string | null }
  | { kind: "bad-number"; text: string; topKey: string | null };

/** True for a JSON object (not an array, not null). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

interface Frame {
  object: boolean;
  expectKey: boolean;
  keys: Set<string> | null;
}

/** A JSON string token (the unrolled form, linear on any input). */
const STRING = /"[^"\\]*(?:\\.[^"\\]*)*"/y;
/** A number token; it is plain when it is digits only. */
const NUMBER = /[\d.eE+-]+/y;

/** Scan `text` (valid JSON) and return the first problem, or null when there is none. */
export function scanJson(text: string): JsonScanProblem | null {
  const stack: Frame[] = [];
  let topKey: string | null = null;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      STRING.lastIndex = i;
      const token = STRING.exec(text)![0];
      const top = stack[stack.length - 1];
      if (top?.object && top.expectKey) {
        const key: string = token.includes("\\") ? JSON.parse(token) : token.slice(1, -1);
        if (top.keys!.has(key))
          return { kind: "duplicate-key", key, topKey: stack.length === 1 ? null : topKey };
        top.keys!.add(key);
        if (stack.length === 1) topKey = key;
        top.expectKey = false;
      }
      i += token.length;
      continue;
    }
    if (c === 0x7b /* { */) stack.push({ object: true, expectKey: true, keys: new Set() });
    else if (c === 0x5b /* [ */) stack.push({ object: false, expectKey: false, keys: null });
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.object) top.expectKey = true;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const token = NUMBER.exec(text)![0];
      if (!/^\d+$/.test(token)) return { kind: "bad-number", text: token, topKey };
      i += token.length;
      continue;
    }
    i++;
  }
  return null;
}
