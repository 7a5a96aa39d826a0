// The admin console (admin keys only; the menu shows it to no one else and the API
// refuses every call of a tenant key): nodes, the queue, tenants and their API keys.

import { api } from "./api.js";
import { h, clear, field, confirmDialog, announce } from "./dom.js";
import * as fmt from "./format.js";

const enc = encodeURIComponent;

export async function view(main, [tab = "nodes"], state) {
  const tabs = [["nodes", "Nodes"], ["queue", "Queue"], ["tenants", "Tenants and keys"]];
  const body = h("div", { class: "admin-body" });
  clear(main, h("section", { class: "page admin" },
    h("div", { class: "page-head" }, h("h1", {}, "Admin"),
      h("nav", { class: "tabs", "aria-label": "Admin sections" }, tabs.map(([id, label]) =>
        h("a", { href: `#/admin/${id}`, "aria-current": id === tab ? "page" : null }, label)))),
    body));
  const views = { nodes, queue, tenants };
  if (!views[tab]) { clear(body, h("p", { class: "empty" }, "No such section.")); return; }
  await views[tab](body, state);
}

// -- nodes ------------------------------------------------------------------------------

async function nodes(body, state) {
  const table = h("table", { class: "nodes cards-on-phone", id: "nodes-table" },
    h("caption", { class: "visually-hidden" }, "Render nodes"),
    h("thead", {}, h("tr", {}, ["Node", "State", "Current task", "Cores", "Last heartbeat",
      "Done / failed", "Crashes", "Actions"].map((c) => h("th", { scope: "col" }, c)))));
  const tbody = h("tbody", {});
  table.append(tbody);
  const detail = h("section", { class: "panel node-detail", id: "node-detail", hidden: true,
    "aria-live": "polite" });
  clear(body, h("div", { class: "table-wrap" }, table), detail);
  let selected = null;
  const rows = new Map();

  const refresh = async () => {
    const found = await api("/v1/admin/nodes");
    if (!found.length) {
      clear(tbody, h("tr", {}, h("td", { colspan: 8, class: "empty" },
        "No render nodes have registered. Start one with `framefarm worker`.")));
      rows.clear();
      return;
    }
    const seen = new Set();
    for (const n of found) {
      seen.add(n.id);
      let tr = rows.get(n.id);
      if (!tr) { tr = h("tr", { dataset: { id: n.id } }); rows.set(n.id, tr); }
      fillNode(tr, n, refresh, (id) => { selected = id; showDetail(detail, id); });
      tbody.append(tr);
    }
    for (const [id, tr] of rows) if (!seen.has(id)) { tr.remove(); rows.delete(id); }
    const empty = tbody.querySelector(".empty");
    if (empty) empty.parentElement.remove();
    if (selected && seen.has(selected)) showDetail(detail, selected, { quiet: true });
  };
  await refresh();
  const timer = setInterval(() => { if (!document.hidden) refresh().catch(() => {}); }, 3000);
  state.cleanup.push(() => clearInterval(timer));
}

function fillNode(tr, n, refresh, open) {
  const caps = n.capabilities || {};
  const act = (label, fn, cls = "small") => h("button", { type: "button", class: cls, onclick: fn,
    "aria-label": `${label} ${n.name}` }, label);
  const call = (path, method = "POST", done = "") => async () => {
    try {
      await api(`/v1/admin/nodes/${enc(n.id)}${path}`, { method });
      if (done) announce(done);
      await refresh();
    } catch (exc) { announce(exc.message, "error"); }
  };
  const forget = async () => {
    if (!await confirmDialog(`Forget ${n.name}?`, "Its work is requeued and it has to register " +
      "again.", "Forget")) return;
    await call("", "DELETE", `${n.name} forgotten.`)();
  };
  const draining = n.status === "draining";
  clear(tr,
    h("th", { scope: "row" }, h("button", { type: "button", class: "link", onclick: () => open(n.id) },
      n.name)),
    h("td", { "data-label": "State" }, h("span", { class: `state ${n.status}`,
      dataset: { status: n.status } }, n.status)),
    h("td", { class: "mono", "data-label": "Current task" }, n.current_task_id || "—"),
    h("td", { class: "num", "data-label": "Cores" }, caps.cores ?? "—"),
    h("td", { "data-label": "Last heartbeat" }, h("time", { datetime: n.last_heartbeat || "",
      title: fmt.dateTime(n.last_heartbeat) }, fmt.ago(n.last_heartbeat))),
    h("td", { class: "num", "data-label": "Done / failed" }, `${n.tasks_done} / ${n.tasks_failed}`),
    h("td", { class: "num", "data-label": "Crashes" }, String(n.crashes)),
    h("td", { class: "actions" },
      draining ? act("Undrain", call("/undrain", "POST", `${n.name} takes work again.`))
        : act("Drain", call("/drain", "POST", `${n.name} finishes its task, then takes no more.`)),
      act("Release", call("/release", "POST", `${n.name}'s task is requeued.`)),
      act("Forget", forget, "small danger")));
}

async function showDetail(detail, nodeId, { quiet = false } = {}) {
  const [health, crashes] = await Promise.all([
    api(`/v1/admin/nodes/${enc(nodeId)}/health?limit=300`),
    api(`/v1/admin/nodes/${enc(nodeId)}/crashes`)]);
  const n = health.node;
  const caps = n.capabilities || {};
  detail.hidden = false;
  clear(detail,
    h("h2", {}, n.name),
    h("p", { class: "meta" }, [caps.host, caps.cores && `${caps.cores} cores`,
      caps.memory_bytes && fmt.bytes(caps.memory_bytes), caps.ffmpeg && `FFmpeg ${caps.ffmpeg}`]
      .filter(Boolean).join(" · ")),
    n.last_error ? h("p", { class: "error" }, `Last error: ${n.last_error}`) : null,
    h("h3", {}, "Health"), chart(health.samples, caps.memory_bytes),
    h("h3", {}, "Crashes"),
    crashes.length ? h("ul", { class: "crashes" }, crashes.map((c) => h("li", {},
      h("time", { datetime: c.at }, fmt.dateTime(c.at)), " ", h("strong", {}, c.kind), " ",
      c.error ? h("pre", { class: "mono" }, c.error) : null)))
      : h("p", { class: "hint" }, "No crashes recorded."));
  if (!quiet) detail.scrollIntoView({ block: "nearest" });
}

/** Load and memory over the kept samples, as an SVG line chart with a text summary. */
function chart(samples, memoryTotal) {
  if (!samples.length) return h("p", { class: "hint" }, "No heartbeats recorded yet.");
  const ordered = [...samples].sort((a, b) => a.at.localeCompare(b.at));
  const W = 600;
  const H = 160;
  const loads = ordered.map((s) => s.load ?? 0);
  const maxLoad = Math.max(1, ...loads);
  const mems = ordered.map((s) => s.memory_used ?? 0);
  const maxMem = memoryTotal || Math.max(1, ...mems);
  const x = (i) => (ordered.length === 1 ? W / 2 : (i * W) / (ordered.length - 1));
  const line = (values, max) => values.map((v, i) => `${x(i).toFixed(1)},${(H - (v / max) * (H - 8) - 4).toFixed(1)}`).join(" ");
  const svg = h("svg:svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": `Load peaked at ${fmt.number(maxLoad, 2)}; memory in use peaked at ` +
      `${fmt.bytes(Math.max(...mems))}, over ${ordered.length} heartbeats.` },
  h("svg:polyline", { points: line(loads, maxLoad), class: "load" }),
  h("svg:polyline", { points: line(mems, maxMem), class: "memory" }));
  const last = ordered[ordered.length - 1];
  return h("figure", { class: "chart-box" }, svg,
    h("figcaption", {}, h("span", { class: "key load" }, `Load (max ${fmt.number(maxLoad, 2)})`),
      h("span", { class: "key memory" }, `Memory in use (of ${fmt.bytes(maxMem)})`),
      h("span", { class: "hint" }, `From ${fmt.timeOnly(ordered[0].at)} to ${fmt.timeOnly(last.at)}`)));
}

// -- the queue --------------------------------------------------------------------------

async function queue(body, state) {
  const tasks = h("dl", { class: "counts", id: "queue-tasks" });
  const table = h("table", { id: "queue-tenants" });
  clear(body, h("section", { class: "panel" }, h("h2", {}, "Tasks by state"), tasks),
    h("section", { class: "panel" }, h("h2", {}, "Unfinished renders by tenant"),
      h("div", { class: "table-wrap" }, table)));
  const refresh = async () => {
    const [overview, byTenant] = await Promise.all([api("/v1/admin/queue"),
      api("/v1/admin/queue/tenants").catch(() => null)]);
    const entries = Object.entries(overview.tasks);
    clear(tasks, entries.length ? entries.map(([s, n]) => h("div", { class: "count" },
      h("dt", {}, s), h("dd", { class: "num" }, fmt.number(n)))) : h("p", { class: "hint" }, "The queue is empty."));
    if (!byTenant) { clear(table, h("caption", {}, "Not available on this server.")); return; }
    clear(table, h("caption", { class: "visually-hidden" }, "Unfinished renders by tenant"),
      h("thead", {}, h("tr", {}, ["Tenant", "Queued or running", "Limit"].map((c) =>
        h("th", { scope: "col" }, c)))),
      h("tbody", {}, byTenant.map((t) => h("tr", {}, h("th", { scope: "row" }, t.name),
        h("td", { class: "num" }, fmt.number(t.unfinished)),
        h("td", { class: "num" }, t.max_concurrent_jobs ?? "server default")))));
  };
  await refresh();
  const timer = setInterval(() => { if (!document.hidden) refresh().catch(() => {}); }, 3000);
  state.cleanup.push(() => clearInterval(timer));
}

// -- tenants and keys -------------------------------------------------------------------

async function tenants(body) {
  const list = h("ul", { class: "tenants", id: "tenant-list" });
  const reveal = h("div", { class: "reveal", role: "status", "aria-live": "polite" });
  const name = h("input", { type: "text", maxlength: 200, required: true, autocomplete: "off" });
  const isAdmin = h("input", { type: "checkbox", id: "new-tenant-admin" });
  const form = h("form", { class: "inline-form", "aria-label": "New tenant" },
    field("Name of a new tenant", name),
    h("div", { class: "field check" }, isAdmin, h("label", { for: "new-tenant-admin" }, "Admin")),
    h("button", { type: "submit", class: "primary" }, "Create tenant"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await api("/v1/admin/tenants", { method: "POST",
        json: { name: name.value.trim(), admin: isAdmin.checked } });
      name.value = "";
      showKey(reveal, `${made.name}'s API key`, made.api_key);
      await refresh();
    } catch (exc) { announce(exc.message, "error"); }
  });
  clear(body, h("section", { class: "panel" }, form, reveal, list));

  async function refresh() {
    const found = await api("/v1/admin/tenants");
    clear(list, found.map((t) => tenantItem(t, reveal)));
  }
  await refresh();
}

function showKey(reveal, label, key) {
  const input = h("input", { type: "text", readOnly: true, value: key, class: "mono key",
    "aria-label": label, id: "revealed-key" });
  clear(reveal, h("p", {}, h("strong", {}, label), " — shown only now; copy it somewhere safe."),
    input, h("button", { type: "button", onclick: async () => {
      try { await navigator.clipboard.writeText(key); announce("Key copied."); } catch { input.select(); }
    } }, "Copy"));
}

function tenantItem(t, reveal) {
  const keys = h("ul", { class: "keys" });
  const item = h("li", { class: "tenant card", dataset: { id: t.id } });
  const loadKeys = async () => {
    const found = await api(`/v1/admin/tenants/${enc(t.id)}/keys`);
    clear(keys, found.map((k) => h("li", { dataset: { id: k.id } },
      h("span", { class: "mono" }, k.id), " ",
      k.admin ? h("span", { class: "badge" }, "admin") : null, " ",
      h("span", { class: "meta" }, `created ${fmt.dateTime(k.created_at)}`),
      k.revoked_at ? h("span", { class: "state failed" }, `revoked ${fmt.dateTime(k.revoked_at)}`)
        : h("button", { type: "button", class: "small danger", "aria-label": `Revoke key ${k.id}`,
          onclick: async () => {
            if (!await confirmDialog("Revoke this key?", "Every request with it is refused from now on.",
              "Revoke")) return;
            try { await api(`/v1/admin/keys/${enc(k.id)}/revoke`, { method: "POST" }); await loadKeys(); } catch (exc) { announce(exc.message, "error"); }
          } }, "Revoke"))));
  };
  clear(item, h("h3", {}, t.name),
    h("p", { class: "meta" }, `Created ${fmt.dateTime(t.created_at)}` +
      (t.max_concurrent_jobs ? ` · up to ${t.max_concurrent_jobs} renders at once` : "")),
    keys,
    h("button", { type: "button", class: "small", onclick: async () => {
      try {
        const made = await api(`/v1/admin/tenants/${enc(t.id)}/keys`, { method: "POST" });
        showKey(reveal, `A new key for ${t.name}`, made.api_key);
        await loadKeys();
      } catch (exc) { announce(exc.message, "error"); }
    } }, "New key"));
  loadKeys().catch(() => {});
  return item;
}
