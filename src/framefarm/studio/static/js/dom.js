// Building the page: every element is made with the DOM, and every piece of text a
// person or the server wrote goes in as a text node. Nothing here parses markup, so a
// project called <img src=x onerror=alert(1)> is shown as exactly those characters.

const PROPS = new Set(["value", "checked", "disabled", "hidden", "selected", "open", "min",
  "max", "step", "multiple", "required", "readOnly", "indeterminate"]);

/** h("button", {class: "primary", onclick: fn}, "Save") */
export function h(tag, attrs = {}, ...children) {
  const el = tag.includes(":") ? document.createElementNS("http://www.w3.org/2000/svg",
    tag.split(":")[1]) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "text") {
      el.textContent = String(value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (PROPS.has(name)) {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A unique id for label/aria wiring. */
let counter = 0;
export function uid(prefix = "f") {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** The required mark: a star to see, words to hear. */
export const REQUIRED = () => [h("span", { class: "required", "aria-hidden": "true" }, " *"),
  h("span", { class: "visually-hidden" }, " (required)")];

/** A labelled field: label, control, optional hint and error slot. */
export function field(label, control, { hint, required } = {}) {
  const id = control.id || uid("field");
  control.id = id;
  const parts = [h("label", { for: id }, label, required ? REQUIRED() : null)];
  if (required) control.setAttribute("aria-required", "true");
  parts.push(control);
  if (hint) {
    const hintId = `${id}-hint`;
    parts.push(h("p", { class: "hint", id: hintId }, hint));
    control.setAttribute("aria-describedby", hintId);
  }
  return h("div", { class: "field" }, parts);
}

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** A confirmation in a modal dialog; resolves true or false. */
export function confirmDialog(title, message, action = "Delete") {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" });
    const done = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    append(dialog, [
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, message),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => done(false) }, "Keep it"),
        h("button", { type: "button", class: "danger", onclick: () => done(true) }, action)),
    ]);
    dialog.addEventListener("cancel", () => done(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A short message in the polite live region (and as a toast). */
export function announce(message, kind = "info") {
  const region = document.getElementById("toasts");
  if (!region) return;
  const toast = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
    message);
  region.append(toast);
  setTimeout(() => toast.remove(), kind === "error" ? 8000 : 4000);
}
