/**
 * Tensor-name globs for `--include` / `--exclude`: `*` matches any run of characters except `.`,
 * `**` matches anything (dots included), `?` one character; everything else is literal. Globs match
 * the whole name: `**.experts.**` selects every routed-expert tensor, `model.layers.*.mlp.gate.weight`
 * every router.
 */
const cache = new Map<string, RegExp>();

/** The regular expression a glob compiles to (anchored at both ends). */
export function globToRegExp(glob: string): RegExp {
  let re = cache.get(glob);
  if (re) return re;
  let src = "";
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === "*") {
      if (glob[i + 1] === "*") {
        src += ".*";
        i++;
      } else {
        src += "[^.]*";
      }
    } else if (ch === "?") {
      src += ".";
    } else {
      src += ch.replace(/[\\^$+.()|{}[\]]/g, "\\$&");
    }
  }
  re = new RegExp(`^${src}$`);
  cache.set(glob, re);
  return re;
}

/** True when `name` matches `glob` (see `globToRegExp`). */
export function matchGlob(name: string, glob: string): boolean {
  return globToRegExp(glob).test(name);
}

/** True when `name` matches any of `globs`. */
export function matchAny(name: string, globs: readonly string[]): boolean {
  for (const g of globs) if (matchGlob(name, g)) return true;
  return false;
}
