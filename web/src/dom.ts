/** A few DOM helpers: the app builds its elements with these instead of a framework. */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined>;

/**
 * `h("td", { "data-testid": "x", class: "num" }, "42")`: an element with attributes (false, null and
 * undefined leave one out; true sets it empty) and children (strings become text nodes, falsy ones
 * are skipped).
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "number" ? String(c) : c);
  }
  return el;
}

/** The element with `data-testid` = `id` (the page's stable handles, also used by the tests). */
export function byTestId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.querySelector<T>(`[data-testid="${id}"]`);
  if (!el) throw new Error(`no element with data-testid="${id}"`);
  return el;
}

/** A table with a header row and body rows. */
export function table(testid: string, head: string[], rows: Child[][], className = ""): HTMLTableElement {
  return h(
    "table",
    { "data-testid": testid, class: className || null },
    h("thead", {}, h("tr", {}, ...head.map((x) => h("th", {}, x)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
  );
}

/** Two-column key/value table. */
export function summary(testid: string, rows: [string, Child, string?][]): HTMLTableElement {
  return h(
    "table",
    { "data-testid": testid, class: "summary" },
    h(
      "tbody",
      {},
      ...rows.map(([k, v, id]) => h("tr", {}, h("th", {}, k), h("td", { "data-testid": id ?? null }, v))),
    ),
  );
}

/** An error's message (fp8kit errors already name the file or URL). */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
