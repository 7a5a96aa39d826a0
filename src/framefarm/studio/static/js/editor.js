// The document editor: a plain textarea (so every keyboard, screen reader and browser
// feature works) over a backdrop that marks the places the server found problems, with
// completion from the document's JSON Schema (Ctrl+Space, or typing a quote where a key
// goes). The schema is walked here; nothing is compiled or evaluated, so it runs under
// a CSP without 'unsafe-eval'.

import { h, clear, uid } from "./dom.js";

// -- JSON with positions ----------------------------------------------------------------

/** Parse JSON, recording where each value (and each key) sits: path string -> [from, to].
 * Throws {message, at} on a syntax error. */
export function locate(text) {
  const spans = new Map();
  let i = 0;
  const fail = (message) => { const e = new Error(message); e.at = i; throw e; };
  const ws = () => { while (i < text.length && " \t\n\r".includes(text[i])) i += 1; };
  const string = () => {
    const start = i;
    i += 1;
    while (i < text.length && text[i] !== '"') { i += text[i] === "\\" ? 2 : 1; }
    if (i >= text.length) fail("a string is not closed");
    i += 1;
    return JSON.parse(text.slice(start, i));
  };
  const value = (path) => {
    ws();
    const start = i;
    const c = text[i];
    if (c === "{") {
      i += 1; ws();
      if (text[i] === "}") { i += 1; } else {
        for (;;) {
          ws();
          if (text[i] !== '"') fail("expected a key in quotes");
          const keyStart = i;
          const key = string();
          const sub = path ? `${path}.${key}` : key;
          spans.set(`key:${sub}`, [keyStart, i]);
          ws();
          if (text[i] !== ":") fail("expected ':' after a key");
          i += 1;
          value(sub);
          ws();
          if (text[i] === ",") { i += 1; continue; }
          if (text[i] === "}") { i += 1; break; }
          fail("expected ',' or '}'");
        }
      }
    } else if (c === "[") {
      i += 1; ws();
      if (text[i] === "]") { i += 1; } else {
        for (let n = 0; ; n += 1) {
          value(`${path}[${n}]`);
          ws();
          if (text[i] === ",") { i += 1; continue; }
          if (text[i] === "]") { i += 1; break; }
          fail("expected ',' or ']'");
        }
      }
    } else if (c === '"') {
      string();
    } else {
      const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
      if (!m) fail("expected a value");
      i += m[0].length;
    }
    spans.set(path || "(document)", [start, i]);
  };
  value("");
  ws();
  if (i < text.length) fail("unexpected text after the document");
  return spans;
}

/** Where a server-reported path sits: the key if there is one, else the value, else the
 * nearest parent that exists (a missing field is shown at its object). */
export function spanOf(spans, path) {
  let p = path;
  for (;;) {
    if (spans.has(`key:${p}`)) return spans.get(`key:${p}`);
    if (spans.has(p)) return spans.get(p);
    const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
    if (cut <= 0) return spans.get("(document)") || [0, 0];
    p = p.slice(0, cut);
  }
}

/** The container stack at `pos` in possibly unfinished JSON: [{kind, key, index}], and
 * whether a key or a value is expected there. */
export function contextAt(text, pos) {
  const stack = [];
  let i = 0;
  let lastString = null;
  while (i < pos) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      i += 1;
      while (i < pos && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      if (i >= pos) return { stack, inString: true, stringStart: start, expectKey: top()?.expectKey };
      lastString = text.slice(start + 1, i);
      const t = top();
      if (t && t.kind === "object" && t.expectKey) t.pendingKey = lastString;
    } else if (c === "{") {
      stack.push({ kind: "object", expectKey: true, key: null });
    } else if (c === "[") {
      stack.push({ kind: "array", index: 0 });
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === ":") {
      const t = top();
      if (t && t.kind === "object") { t.expectKey = false; t.key = t.pendingKey; }
    } else if (c === ",") {
      const t = top();
      if (t && t.kind === "object") { t.expectKey = true; t.key = null; t.pendingKey = null; }
      if (t && t.kind === "array") t.index += 1;
    }
    i += 1;
  }
  function top() { return stack[stack.length - 1]; }
  return { stack, inString: false, expectKey: top() ? top().expectKey : false };
}

// -- the schema -------------------------------------------------------------------------

function resolve(schema, root) {
  let s = schema;
  let guard = 0;
  while (s && s.$ref && guard < 20) {
    const name = s.$ref.replace("#/$defs/", "");
    s = root.$defs ? root.$defs[name] : null;
    guard += 1;
  }
  return s || {};
}

/** Every alternative a schema allows, references followed. */
function alternatives(schema, root, depth = 0) {
  const s = resolve(schema, root);
  if (depth > 8) return [s];
  const found = [];
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    if (s[key]) for (const sub of s[key]) found.push(...alternatives(sub, root, depth + 1));
  }
  if (s.discriminator && s.discriminator.mapping) {
    for (const ref of Object.values(s.discriminator.mapping)) {
      found.push(...alternatives({ $ref: ref }, root, depth + 1));
    }
  }
  return found.length ? found : [s];
}

/** The schemas of the value at `stack` (a path of keys and indexes). */
function schemasAt(root, steps) {
  let current = [root];
  for (const step of steps) {
    const next = [];
    for (const s of current) {
      for (const alt of alternatives(s, root)) {
        if (typeof step === "number") {
          if (alt.items) next.push(alt.items);
          if (alt.prefixItems) next.push(...alt.prefixItems);
        } else if (alt.properties && alt.properties[step]) {
          next.push(alt.properties[step]);
        } else if (alt.additionalProperties && typeof alt.additionalProperties === "object") {
          next.push(alt.additionalProperties);
        }
      }
    }
    current = next;
  }
  return current;
}

/** Completions at the cursor: keys of the object, or the allowed values. */
export function completions(schema, text, pos) {
  const ctx = contextAt(text, pos);
  const steps = [];
  ctx.stack.forEach((frame, n) => {
    if (n === 0) return;
    const parent = ctx.stack[n - 1];
    steps.push(parent.kind === "array" ? parent.index : parent.key);
  });
  const here = ctx.stack[ctx.stack.length - 1];
  if (!here) return { items: [], ctx };
  const out = new Map();
  if (here.kind === "object" && ctx.expectKey) {
    for (const s of schemasAt(schema, steps)) {
      for (const alt of alternatives(s, schema)) {
        for (const [key, prop] of Object.entries(alt.properties || {})) {
          if (!out.has(key)) {
            const p = resolve(prop, schema);
            out.set(key, { label: key, insert: `"${key}": `, detail: p.description || p.title || "" });
          }
        }
      }
    }
  } else {
    const valueSteps = here.kind === "array" ? [...steps, here.index] : [...steps, here.key];
    for (const s of schemasAt(schema, valueSteps)) {
      for (const alt of alternatives(s, schema)) {
        const values = alt.enum || (alt.const !== undefined ? [alt.const] : []);
        for (const v of values) {
          out.set(JSON.stringify(v), { label: JSON.stringify(v), insert: JSON.stringify(v),
            detail: alt.description || "" });
        }
        if (alt.type === "boolean") {
          for (const v of ["true", "false"]) out.set(v, { label: v, insert: v, detail: "" });
        }
      }
    }
  }
  return { items: [...out.values()], ctx };
}

// -- the widget -------------------------------------------------------------------------

export class JsonEditor {
  constructor({ label, schema = null, value = "" }) {
    this.schema = schema;
    this.problems = [];
    const id = uid("editor");
    this.listId = `${id}-completions`;
    this.textarea = h("textarea", { id, class: "code", spellcheck: "false", autocomplete: "off",
      "aria-autocomplete": "list", "aria-controls": this.listId,
      autocapitalize: "off", wrap: "off", rows: 18 });
    this.textarea.value = value;
    this.backdrop = h("pre", { class: "code backdrop", "aria-hidden": "true" });
    this.gutter = h("div", { class: "gutter", "aria-hidden": "true" });
    this.list = h("ul", { id: this.listId, class: "completions", role: "listbox", hidden: true,
      "aria-label": "Suggestions" });
    this.errors = h("ul", { class: "problems", "aria-live": "polite" });
    this.element = h("div", { class: "json-editor" },
      h("label", { for: id }, label),
      h("p", { class: "hint", id: `${id}-hint` },
        "Press Ctrl+Space for suggestions from the document schema."),
      h("div", { class: "editor-frame" }, this.gutter,
        h("div", { class: "editor-body" }, this.backdrop, this.textarea), this.list),
      this.errors);
    this.textarea.setAttribute("aria-describedby", `${id}-hint`);
    this.textarea.addEventListener("input", () => this.onInput());
    this.textarea.addEventListener("scroll", () => this.sync());
    this.textarea.addEventListener("keydown", (e) => this.onKey(e));
    // Late, so a click on a suggestion lands first; not if the focus came back meanwhile.
    this.textarea.addEventListener("blur", () => setTimeout(() => {
      if (document.activeElement !== this.textarea) this.closeList();
    }, 150));
    this.active = 0;
    this.items = [];
    this.paint();
  }

  get value() { return this.textarea.value; }
  set value(text) { this.textarea.value = text; this.problems = []; this.paint(); }

  onInput() {
    this.problems = []; // what the server said was about the text before this edit
    this.paint();
    const pos = this.textarea.selectionStart;
    if (this.textarea.value[pos - 1] === '"' && contextAt(this.textarea.value, pos - 1).expectKey) {
      this.openList();
    } else if (!this.list.hidden) {
      this.openList();
    }
  }

  /** Problems from the server: [{path, message}] (or "path: message" strings). */
  showProblems(problems) {
    let spans = null;
    try { spans = locate(this.value); } catch { spans = null; }
    this.problems = problems.map((p) => {
      const item = typeof p === "string" ? splitProblem(p) : p;
      return { ...item, span: spans ? spanOf(spans, item.path) : [0, 0] };
    });
    this.paint();
  }

  /** A local syntax check; true when the text is valid JSON. */
  check() {
    try {
      locate(this.value);
      return true;
    } catch (exc) {
      this.problems = [{ path: "(syntax)", message: exc.message, span: [exc.at, exc.at + 1] }];
      this.paint();
      return false;
    }
  }

  paint() {
    const text = this.value;
    const lines = text.split("\n").length;
    const bad = new Set(this.problems.map((p) => lineOf(text, p.span[0])));
    clear(this.gutter, Array.from({ length: lines }, (_, n) =>
      h("span", { class: bad.has(n + 1) ? "bad" : null }, String(n + 1))));
    const marks = [...this.problems].map((p) => p.span).sort((a, b) => a[0] - b[0]);
    const parts = [];
    let at = 0;
    for (const [from, to] of marks) {
      if (from < at) continue;
      parts.push(text.slice(at, from), h("mark", {}, text.slice(from, Math.max(to, from + 1)) || " "));
      at = Math.max(to, from + 1);
    }
    parts.push(text.slice(at), "\n");
    clear(this.backdrop, parts);
    clear(this.errors, this.problems.map((p) => h("li", {},
      h("button", { type: "button", class: "link", onclick: () => this.select(p.span),
        "aria-label": `Show ${p.path} in the editor` }, h("code", {}, p.path)), ": ", p.message)));
    this.textarea.setAttribute("aria-invalid", this.problems.length ? "true" : "false");
    this.sync();
  }

  sync() {
    this.backdrop.scrollTop = this.textarea.scrollTop;
    this.backdrop.scrollLeft = this.textarea.scrollLeft;
    this.gutter.scrollTop = this.textarea.scrollTop;
  }

  select([from, to]) {
    this.textarea.focus();
    this.textarea.setSelectionRange(from, to);
    const line = lineOf(this.value, from);
    const height = this.textarea.scrollHeight / Math.max(1, this.value.split("\n").length);
    this.textarea.scrollTop = Math.max(0, (line - 3) * height);
  }

  onKey(event) {
    if ((event.ctrlKey || event.metaKey) && event.key === " ") {
      event.preventDefault();
      this.openList();
      return;
    }
    if (this.list.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      this.move(event.key === "ArrowDown" ? 1 : -1);
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      this.choose(this.items[this.active]);
    } else if (event.key === "Escape") {
      event.preventDefault();
      this.closeList();
    }
  }

  openList() {
    if (!this.schema) return;
    const pos = this.textarea.selectionStart;
    const { items, ctx } = completions(this.schema, this.value, pos);
    const typed = ctx.inString ? this.value.slice(ctx.stringStart + 1, pos) : "";
    this.replaceFrom = ctx.inString ? ctx.stringStart : pos;
    this.items = items.filter((it) => it.label.replace(/^"/, "").startsWith(typed)).slice(0, 50);
    if (!this.items.length) { this.closeList(); return; }
    this.active = 0;
    clear(this.list, this.items.map((it, n) => h("li", {
      role: "option", id: `${this.listId}-${n}`, "aria-selected": n === 0 ? "true" : "false",
      onmousedown: (e) => { e.preventDefault(); this.choose(it); },
    }, h("code", {}, it.label), it.detail ? h("span", { class: "detail" }, it.detail) : null)));
    this.list.hidden = false;
    this.textarea.setAttribute("aria-activedescendant", `${this.listId}-0`);
  }

  move(delta) {
    this.active = (this.active + delta + this.items.length) % this.items.length;
    [...this.list.children].forEach((li, n) =>
      li.setAttribute("aria-selected", n === this.active ? "true" : "false"));
    this.textarea.setAttribute("aria-activedescendant", `${this.listId}-${this.active}`);
    this.list.children[this.active].scrollIntoView({ block: "nearest" });
  }

  choose(item) {
    if (!item) return;
    const pos = this.textarea.selectionStart;
    let end = pos;
    // Inside a key already quoted on both sides: replace up to and including its end quote.
    if (this.value[end] === '"') end += 1;
    if (this.value.slice(end).startsWith(": ")) end += 2;
    this.textarea.setRangeText(item.insert, this.replaceFrom, end, "end");
    this.closeList();
    this.paint();
  }

  closeList() {
    this.list.hidden = true;
    this.textarea.removeAttribute("aria-activedescendant");
  }
}

function lineOf(text, pos) {
  let n = 1;
  for (let i = 0; i < pos && i < text.length; i += 1) if (text[i] === "\n") n += 1;
  return n;
}

export function splitProblem(text) {
  const cut = text.indexOf(": ");
  if (cut < 0) return { path: "(document)", message: text };
  return { path: text.slice(0, cut), message: text.slice(cut + 2) };
}
