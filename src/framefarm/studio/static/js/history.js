// History: the tenant's renders, newest first, filterable by state and project; running
// ones update live; each offers what can be done with it next.

import { api, watch } from "./api.js";
import { h, clear, field, confirmDialog, announce } from "./dom.js";
import { copyLink, progressModal } from "./render.js";
import * as fmt from "./format.js";

const enc = encodeURIComponent;
const RUNNING = ["queued", "running"];

export async function view(main, _args, state) {
  const projects = await api("/v1/projects");
  const names = new Map(projects.map((p) => [p.id, p.name]));
  const stateFilter = h("select", { name: "state", id: "filter-state" },
    h("option", { value: "" }, "All states"),
    Object.entries(fmt.STATE_LABELS).map(([v, l]) => h("option", { value: v }, l)));
  const projectFilter = h("select", { name: "project", id: "filter-project" },
    h("option", { value: "" }, "All projects"),
    projects.map((p) => h("option", { value: p.id }, p.name)));
  const list = h("ul", { class: "history", id: "history-list", "aria-label": "Renders",
    "aria-live": "off" });
  const more = h("button", { type: "button", hidden: true }, "Show older renders");
  clear(main, h("section", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "History"),
      h("form", { class: "filters", "aria-label": "Filter renders" },
        field("State", stateFilter), field("Project", projectFilter))),
    list, more));

  const rows = new Map(); // job id -> {element, job, stop, update}
  let next = null;
  let alive = true;
  state.cleanup.push(() => {
    alive = false;
    for (const row of rows.values()) if (row.stop) row.stop();
  });

  const query = (before) => {
    const params = new URLSearchParams({ limit: "30" });
    if (stateFilter.value) params.set("state", stateFilter.value);
    if (before) params.set("before", before);
    const base = projectFilter.value ? `/v1/projects/${enc(projectFilter.value)}/renders`
      : "/v1/renders";
    return api(`${base}?${params}`).catch(async (exc) => {
      // A server without per-project listing: filter the tenant's list here.
      if (exc.status !== 404 || !projectFilter.value) throw exc;
      const page = await api(`/v1/renders?${params}`);
      return { ...page, items: page.items.filter((j) => j.project_id === projectFilter.value) };
    });
  };

  const refresh = async ({ reset = false } = {}) => {
    const page = await query();
    if (!alive) return;
    if (reset) {
      for (const row of rows.values()) if (row.stop) row.stop();
      rows.clear();
      clear(list);
      next = page.next;
    }
    const ids = page.items.map((j) => j.id);
    // Newest first: new renders go on top, known ones are updated in place (no jumps).
    let anchor = null;
    for (const job of page.items) {
      const known = rows.get(job.id);
      if (known) { known.update(job); anchor = known.element; continue; }
      const row = makeRow(job, names, refresh);
      rows.set(job.id, row);
      if (anchor) anchor.after(row.element); else list.prepend(row.element);
      anchor = row.element;
    }
    if (reset) more.hidden = !next;
    if (!rows.size) {
      clear(list, h("li", { class: "empty" }, stateFilter.value || projectFilter.value
        ? "No renders match these filters." : "No renders yet. Open a template and press Render."));
    } else {
      const empty = list.querySelector(".empty");
      if (empty) empty.remove();
    }
    return ids;
  };
  more.addEventListener("click", async () => {
    const page = await query(next);
    for (const job of page.items) {
      if (rows.has(job.id)) continue;
      const row = makeRow(job, names, refresh);
      rows.set(job.id, row);
      list.append(row.element);
    }
    next = page.next;
    more.hidden = !next;
  });
  stateFilter.addEventListener("change", () => refresh({ reset: true }));
  projectFilter.addEventListener("change", () => refresh({ reset: true }));
  await refresh({ reset: true });
  // New renders (from anyone with this tenant's keys) appear without a reload.
  const timer = setInterval(() => {
    if (alive && !document.hidden) refresh().catch(() => {}); // not for a tab in the background
  }, 2000);
  state.cleanup.push(() => clearInterval(timer));
}

function makeRow(job, names, refresh) {
  const element = h("li", { class: "job", dataset: { id: job.id } });
  const row = { element, job, stop: null, update: null };
  const stateBadge = h("span", { class: "state" });
  const bar = h("progress", { max: 100, value: 0, "aria-label": "Progress" });
  const pct = h("span", { class: "num pct" });
  const meta = h("p", { class: "meta" });
  const error = h("p", { class: "error" });
  const actions = h("div", { class: "actions" });
  const logs = h("ol", { class: "logs", hidden: true, tabindex: "0", "aria-label": "Log" });
  const title = job.project_id && names.get(job.project_id)
    ? names.get(job.project_id) : (job.kind === "snapshot" ? "Snapshot" : "Render");
  clear(element,
    h("div", { class: "job-head" }, h("span", { class: "job-title" }, title,
      h("span", { class: "job-id mono", title: job.id }, job.id.slice(-8))), stateBadge),
    h("div", { class: "progress-line" }, bar, pct), meta, error, actions, logs);

  const live = () => {
    if (row.stop) return;
    row.stop = watch(row.job.id, {
      onTransport: (name) => { element.dataset.transport = name; },
      onEvent: (event) => {
        if (event.event === "progress") {
          update({ ...row.job, percent: event.percent, frames: event.frames,
            eta_seconds: event.eta_seconds });
        } else if (event.event === "state") {
          update({ ...row.job, state: event.state, step: event.step });
        } else if (event.event === "done") {
          row.stop = null;
          api(`/v1/renders/${enc(row.job.id)}`).then(update).catch(() => {});
        }
      },
    });
  };

  function update(j) {
    row.job = j;
    element.dataset.state = j.state;
    stateBadge.textContent = fmt.STATE_LABELS[j.state] || j.state;
    stateBadge.className = `state ${j.state}`;
    bar.value = j.state === "succeeded" ? 100 : (j.percent || 0);
    pct.textContent = fmt.percent(bar.value);
    element.dataset.percent = String(bar.value);
    const o = j.options || {};
    const parts = [`Started ${fmt.dateTime(j.created_at)}`,
      [o.size, o.quality, o.format].filter(Boolean).join(" ") || null].filter(Boolean);
    if (RUNNING.includes(j.state)) {
      parts.push(fmt.step(j.state, j.step));
      if (j.frames) parts.push(`${fmt.number(j.frames.done)} / ${fmt.number(j.frames.total)} frames`);
      if (j.eta_seconds) parts.push(`${fmt.duration(j.eta_seconds)} left`);
    }
    if (j.export) {
      parts.push(`${fmt.bytes(j.export.size)} · ${fmt.duration(j.export.duration)}`);
      parts.push(`kept until ${fmt.dateTime(j.export.expires_at)}`);
    }
    meta.textContent = parts.join(" · ");
    error.textContent = j.state === "failed" ? `${j.failed_step ? `${j.failed_step}: ` : ""}${j.error || "failed"}` : "";
    drawActions(j);
    if (RUNNING.includes(j.state)) live();
  }
  row.update = update;

  function drawActions(j) {
    const buttons = [];
    const act = (label, fn, cls) => h("button", { type: "button", class: cls || "small",
      onclick: fn }, label);
    if (RUNNING.includes(j.state)) {
      buttons.push(act("Watch", () => progressModal(j, title)));
      buttons.push(act("Cancel", async () => {
        try { update(await api(`/v1/renders/${enc(j.id)}/cancel`, { method: "POST" })); } catch (exc) { announce(exc.message, "error"); }
      }, "small danger"));
    }
    if (["failed", "cancelled"].includes(j.state)) {
      buttons.push(act("Retry", async () => {
        try {
          const again = await api(`/v1/renders/${enc(j.id)}/retry`, { method: "POST" });
          announce("Queued again.");
          await refresh();
          progressModal(again, title);
        } catch (exc) { announce(exc.message, "error"); }
      }));
    }
    buttons.push(act("Log", async () => {
      if (!logs.hidden) { logs.hidden = true; return; }
      const lines = await api(`/v1/renders/${enc(j.id)}/logs`);
      clear(logs, lines.length ? lines.map((l) => h("li", { class: l.level },
        h("time", { datetime: l.at }, fmt.timeOnly(l.at)), " ", l.message))
        : h("li", {}, "Nothing logged yet."));
      logs.hidden = false;
    }));
    if (j.export) {
      const exp = j.export;
      buttons.push(act("Download", async () => {
        const link = await api(`/v1/exports/${enc(exp.id)}/link`, { method: "POST" });
        const a = h("a", { href: link.url, download: "" });
        document.body.append(a);
        a.click();
        a.remove();
      }, "small primary"));
      buttons.push(act("Copy link", (e) => copyLink(exp.id, e.currentTarget)));
      buttons.push(act("Keep 7 more days", async () => {
        try {
          const found = await api(`/v1/exports/${enc(exp.id)}/extend`, { method: "POST", json: { days: 7 } });
          update({ ...row.job, export: found });
          announce(`Kept until ${fmt.dateTime(found.expires_at)}.`);
        } catch (exc) { announce(exc.message, "error"); }
      }));
      buttons.push(act("Delete video", async () => {
        if (!await confirmDialog("Delete this video?", "The file is deleted now; links to it stop working.")) return;
        try {
          await api(`/v1/exports/${enc(exp.id)}`, { method: "DELETE" });
          update({ ...row.job, export: null });
          announce("Video deleted.");
        } catch (exc) { announce(exc.message, "error"); }
      }, "small danger"));
    }
    clear(actions, buttons);
  }
  update(job);
  return row;
}
