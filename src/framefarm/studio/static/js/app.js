// The studio's shell: signing in and out, the menu, and the views behind #/ routes.

import { api, session, whoAmI, ApiError } from "./api.js";
import { h, clear, field, announce } from "./dom.js";
import * as projects from "./projects.js";
import * as templates from "./templates.js";
import * as historyView from "./history.js";
import * as admin from "./admin.js";

const main = document.getElementById("main");
const top = document.getElementById("top");
export const state = { me: null, cleanup: cleanups() };

/** What a view leaves running (timers, sockets, blob URLs), stopped when the next view
 * starts; a view that is still loading when it is replaced stops its late additions at
 * once. */
function cleanups() {
  const fns = [];
  let closed = false;
  return {
    push(fn) { if (closed) fn(); else fns.push(fn); },
    run() { closed = true; for (const fn of fns.splice(0)) fn(); },
  };
}

const ROUTES = [
  { path: /^#\/templates$/, view: templates.gallery, nav: "templates" },
  { path: /^#\/templates\/([^/]+)$/, view: templates.editor, nav: "templates" },
  { path: /^#\/projects$/, view: projects.list, nav: "projects" },
  { path: /^#\/projects\/([^/]+)$/, view: projects.detail, nav: "projects" },
  { path: /^#\/history$/, view: historyView.view, nav: "history" },
  { path: /^#\/admin(?:\/([a-z]+))?$/, view: admin.view, nav: "admin", admin: true },
];

function signInView(message) {
  top.hidden = true;
  const input = h("input", { type: "password", name: "key", autocomplete: "off",
    spellcheck: "false", required: true, placeholder: "ff_…" });
  const error = h("p", { class: "error", role: "alert", id: "sign-in-error" }, message || "");
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "sign-in card", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "framefarm studio"),
    h("p", {}, "Render videos from templates, watch them progress and download them."),
    field("API key", input, { hint: "The key framefarm serve printed at its first start, or " +
      "one your operator gave you. It is kept in this tab only, never in a link." }),
    error, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) { error.textContent = "Enter your API key."; input.focus(); return; }
    button.disabled = true;
    error.textContent = "";
    session.set(key);
    try {
      state.me = await whoAmI();
      input.value = "";
      window.history.replaceState(null, "", "#/templates");
      await route();
    } catch (exc) {
      session.clear();
      error.textContent = exc instanceof ApiError && exc.status === 401
        ? "This key is unknown or has been revoked. Check it and try again."
        : exc.message;
      button.disabled = false;
      input.focus();
    }
  });
  clear(main, h("div", { class: "centre" }, form));
  input.focus();
}

function signOut(message) {
  session.clear();
  state.me = null;
  state.cleanup.run();
  window.history.replaceState(null, "", location.pathname);
  signInView(message);
}

function menu(active) {
  const link = (name, label, href) => h("a", { href, class: "nav-link",
    "aria-current": active === name ? "page" : null }, label);
  const links = [link("templates", "Templates", "#/templates"),
    link("projects", "Projects", "#/projects"), link("history", "History", "#/history")];
  if (state.me.admin) links.push(link("admin", "Admin", "#/admin"));
  clear(top,
    h("a", { class: "brand", href: "#/templates" }, h("img", { src: "/studio/icon.svg", alt: "",
      width: 24, height: 24 }), h("span", {}, "framefarm studio")),
    h("nav", { "aria-label": "Main" }, links),
    h("div", { class: "who" },
      h("span", { class: "tenant", title: "Signed in as" }, state.me.tenant || ""),
      state.me.admin ? h("span", { class: "badge" }, "admin") : null,
      h("button", { type: "button", class: "ghost", id: "sign-out", onclick: () => signOut() },
        "Sign out")));
  top.hidden = false;
}

export async function route() {
  state.cleanup.run();
  state.cleanup = cleanups();
  if (!session.key) { signInView(); return; }
  if (!state.me) {
    try { state.me = await whoAmI(); } catch (exc) {
      signOut(exc.status === 401 ? "Your key is no longer accepted; sign in again." : exc.message);
      return;
    }
  }
  const hash = location.hash || "#/templates";
  const found = ROUTES.find((r) => r.path.test(hash));
  if (!found || (found.admin && !state.me.admin)) {
    menu(null);
    clear(main, h("section", { class: "empty" }, h("h1", {}, "Nothing here"),
      h("p", {}, "This page does not exist, or your key may not see it."),
      h("a", { href: "#/templates" }, "Go to the templates")));
    return;
  }
  menu(found.nav);
  const args = hash.match(found.path).slice(1).map((x) => x && decodeURIComponent(x));
  // Each view draws into its own box: one replaced while it loads draws into a box that
  // is no longer on the page.
  const box = h("div", { class: "view" }, h("p", { class: "loading", role: "status" }, "Loading…"));
  clear(main, box);
  const view = { ...state, cleanup: state.cleanup };
  try {
    await found.view(box, args, view);
  } catch (exc) {
    if (exc.name === "AbortError") return;
    clear(box, h("section", { class: "empty error-state", role: "alert" },
      h("h1", {}, "Something went wrong"), h("p", {}, exc.message),
      h("button", { type: "button", onclick: () => route() }, "Try again")));
  }
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
window.addEventListener("studio:unauthorized", () => {
  // Only for a session that was working: a wrong key at sign-in is the form's to explain.
  if (session.key && state.me) signOut("Your key is no longer accepted; sign in again.");
});
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  if (reason && reason.name === "AbortError") return;
  announce(reason && reason.message ? reason.message : "Something went wrong.", "error");
});
export { api };
route();
