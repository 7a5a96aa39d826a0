// Templates: the gallery (each with a poster frame), and one template: a form made from
// its variables, a live frame-exact preview with a scrubber and scene markers, and Render.

import { api, blobUrl, upload } from "./api.js";
import { h, clear, field, debounce, uid, announce, REQUIRED } from "./dom.js";
import { kindOf } from "./projects.js";
import { renderPanel } from "./render.js";
import * as fmt from "./format.js";

const enc = encodeURIComponent;

/** Values good enough for a poster frame: defaults, and a stand-in for required ones. */
function sampleData(variables) {
  const data = {};
  for (const [name, spec] of Object.entries(variables)) {
    if (spec.default !== null && spec.default !== undefined) continue;
    if (!spec.required) continue;
    if (spec.type === "text") data[name] = name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
    else if (spec.type === "number") data[name] = 1;
    else if (spec.type === "color") data[name] = "#ff5a00";
    else if (spec.type === "boolean") data[name] = false;
    else return null;
  }
  return data;
}

export async function gallery(main, _args, state) {
  const templates = await api("/v1/templates");
  const grid = h("ul", { class: "cards gallery", "aria-label": "Templates" });
  clear(main, h("section", { class: "page" },
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Templates"),
      h("p", { class: "lede" }, "Pick a template, fill it in, watch the preview, render."))),
    grid));
  if (!templates.length) {
    clear(grid, h("li", { class: "empty" }, h("p", {}, "No templates yet."),
      h("p", {}, "A template is a document with variables. Save one with POST /v1/templates, " +
        "or ask your operator for one.")));
    return;
  }
  const urls = [];
  state.cleanup.push(() => urls.forEach((u) => URL.revokeObjectURL(u)));
  let alive = true;
  state.cleanup.push(() => { alive = false; });
  const posters = [];
  clear(grid, templates.map((t) => {
    const poster = h("div", { class: "poster" }, h("span", { class: "hint" }, "Rendering poster…"));
    const names = Object.keys(t.variables);
    posters.push([t, poster]);
    return h("li", { class: "card template-card" },
      h("a", { href: `#/templates/${enc(t.id)}`, class: "card-link" }, poster,
        h("span", { class: "card-title" }, t.name)),
      h("p", { class: "meta" }, names.length
        ? `${names.length} field${names.length > 1 ? "s" : ""}: ${names.join(", ")}`
        : "No fields"));
  }));
  // One at a time: each poster is a snapshot a render node makes (cached afterwards).
  for (const [t, poster] of posters) {
    if (!alive) return;
    const data = sampleData(t.variables);
    if (data === null) { clear(poster, h("span", { class: "hint" }, "No poster")); continue; }
    try {
      const found = await snapshot({ template_id: t.id, data, scene: 0 });
      if (!found || !alive) continue;
      urls.push(found.url);
      clear(poster, h("img", { src: found.url, alt: `Poster frame of ${t.name}` }));
    } catch (exc) {
      clear(poster, h("span", { class: "hint" }, `No poster: ${exc.message}`));
    }
  }
}

/** A snapshot as a blob URL, waiting for a node if it is not cached: {url, frame, cache}. */
export async function snapshot(body, signal) {
  const response = await api("/v1/snapshots", { method: "POST", raw: true, signal,
    json: { format: "jpeg", wait: 20, ...body } });
  let image = response;
  if (response.status === 202) {
    const { job_id: jobId } = await response.json();
    for (;;) {
      await new Promise((r) => setTimeout(r, 400));
      if (signal && signal.aborted) throw new DOMException("stale", "AbortError");
      image = await api(`/v1/snapshots/${enc(jobId)}`, { raw: true, signal });
      if (image.status !== 202) break;
    }
  }
  return { url: URL.createObjectURL(await image.blob()), frame: response.headers.get("X-Frame"),
    cache: response.headers.get("X-Cache") || "miss" };
}

// -- one template -----------------------------------------------------------------------

function isLong(spec) {
  const d = typeof spec.default === "string" ? spec.default : "";
  return spec.type === "longtext" || d.includes("\n") || d.length > 80;
}

function control(name, spec, assets, onUpload) {
  const id = uid("var");
  const required = Boolean(spec.required);
  const value = spec.default;
  const hint = spec.description || undefined;
  const label = name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
  const choices = spec.choices;
  let input;
  let read;
  if (Array.isArray(choices)) {
    input = h("select", { id, name }, !required ? h("option", { value: "" }, "—") : null,
      choices.map((c) => h("option", { value: String(c), selected: c === value }, String(c))));
    read = () => (input.value === "" ? undefined : choices.find((c) => String(c) === input.value));
  } else if (spec.type === "number") {
    input = h("input", { id, name, type: "number", step: "any", inputmode: "decimal",
      value: value ?? "" });
    read = () => (input.value === "" ? undefined : Number(input.value));
  } else if (spec.type === "boolean") {
    input = h("input", { id, name, type: "checkbox", checked: Boolean(value) });
    read = () => input.checked;
    const wrap = h("div", { class: "field check" }, input, h("label", { for: id }, label,
      required ? REQUIRED() : null),
    hint ? h("p", { class: "hint" }, hint) : null);
    return { element: wrap, read, input };
  } else if (spec.type === "color") {
    const text = h("input", { type: "text", value: value || "", "aria-label": `${label} (hex)`,
      pattern: "#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?", class: "hex", size: 9, name: `${name}-hex` });
    const picker = h("input", { id, name, type: "color",
      value: /^#[0-9a-f]{6}/i.test(value || "") ? value.slice(0, 7) : "#000000" });
    picker.addEventListener("input", () => { text.value = picker.value; });
    text.addEventListener("input", () => {
      if (/^#[0-9a-f]{6}$/i.test(text.value)) picker.value = text.value;
    });
    input = picker;
    read = () => (text.value === "" ? undefined : text.value);
    const f = field(label, picker, { hint, required });
    f.classList.add("colour");
    f.append(text);
    return { element: f, read, input, also: text };
  } else if (["image", "audio", "video"].includes(spec.type)) {
    const options = assets.filter((a) => kindOf(a.name) === spec.type);
    input = h("select", { id, name },
      h("option", { value: "" }, options.length ? "— choose —" : "— no assets yet —"),
      options.map((a) => h("option", { value: a.name, selected: a.name === value }, a.name)));
    read = () => (input.value === "" ? undefined : input.value);
    const file = h("input", { type: "file", class: "visually-hidden", id: `${id}-file`,
      accept: `${spec.type}/*` });
    file.addEventListener("change", async () => {
      const chosen = file.files[0];
      if (chosen) await onUpload(chosen, input);
      file.value = "";
    });
    const f = field(label, input, { hint, required });
    f.append(h("label", { for: `${id}-file`, class: "button small" }, `Upload ${spec.type}…`), file);
    return { element: f, read, input };
  } else if (isLong(spec)) {
    input = h("textarea", { id, name, rows: 3 });
    input.value = value ?? "";
    read = () => (input.value === "" ? undefined : input.value);
  } else {
    input = h("input", { id, name, type: "text", value: value ?? "", autocomplete: "off" });
    read = () => (input.value === "" ? undefined : input.value);
  }
  return { element: field(label, input, { hint, required }), read, input };
}

export async function editor(main, [templateId], state) {
  const template = await api(`/v1/templates/${enc(templateId)}`);
  const projectId = template.project_id;
  let assets = projectId ? await api(`/v1/projects/${enc(projectId)}/assets`) : [];
  const variables = template.variables || {};
  const fields = {};
  const problems = h("div", { class: "form-problems", role: "alert", id: "template-problems" });

  const onUpload = async (file, select) => {
    if (!projectId) { announce("This template has no project to keep uploads in.", "error"); return; }
    try {
      announce(`Uploading ${file.name}…`);
      const [stored] = await upload(`/v1/projects/${enc(projectId)}/assets`, file, "media", () => {});
      assets = await api(`/v1/projects/${enc(projectId)}/assets`);
      select.append(h("option", { value: stored.name }, stored.name));
      select.value = stored.name;
      select.dispatchEvent(new Event("change", { bubbles: true }));
      announce(`Uploaded ${stored.name}.`);
    } catch (exc) { announce(`Refused: ${exc.message}`, "error"); }
  };
  const form = h("form", { class: "variables", "aria-label": "Template fields" });
  form.addEventListener("submit", (e) => e.preventDefault());
  for (const [name, spec] of Object.entries(variables)) {
    fields[name] = control(name, spec, assets, onUpload);
    form.append(fields[name].element);
  }
  if (!Object.keys(variables).length) form.append(h("p", { class: "hint" }, "This template has no fields."));

  const data = () => {
    const found = {};
    for (const [name, f] of Object.entries(fields)) {
      const v = f.read();
      if (v !== undefined) found[name] = v;
    }
    return found;
  };
  const missing = () => Object.entries(variables)
    .filter(([name, spec]) => spec.required && (spec.default === null || spec.default === undefined)
      && data()[name] === undefined).map(([name]) => name);

  // The preview.
  const image = h("img", { class: "preview-image", id: "preview-image", alt: "Preview frame",
    hidden: true });
  const note = h("p", { class: "stage-note", id: "preview-note", role: "status" },
    "Preparing the preview…");
  const stage = h("div", { class: "stage", id: "preview-stage" }, image, note);
  const scrubber = h("input", { type: "range", min: 0, max: 0, step: 1, value: 0,
    id: "scrubber", class: "scrubber" });
  const at = h("output", { for: "scrubber", class: "num", id: "preview-at" }, "—");
  const markers = h("div", { class: "markers", id: "scene-markers", role: "group",
    "aria-label": "Scenes" });
  const cacheNote = h("span", { class: "hint num", id: "preview-cache" });
  let tl = null;
  let seq = 0;
  let shown = null;
  let controller = null;

  const label = () => {
    if (!tl) return;
    const frame = Number(scrubber.value);
    at.textContent = `${fmt.seconds(frame / tl.fps, 2)} · frame ${frame + 1} of ${tl.frames}`;
    scrubber.setAttribute("aria-valuetext", at.textContent);
  };

  const refreshFrame = async () => {
    if (!tl) return;
    const frame = Number(scrubber.value);
    const mine = ++seq;
    if (controller) controller.abort();
    controller = new AbortController();
    stage.classList.add("busy");
    try {
      const found = await snapshot({ template_id: templateId, data: data(), frame }, controller.signal);
      if (mine !== seq) { URL.revokeObjectURL(found.url); return; }
      if (shown) URL.revokeObjectURL(shown);
      shown = found.url;
      image.src = shown;
      image.hidden = false;
      image.dataset.frame = String(frame);
      image.dataset.version = String(mine);
      stage.dataset.state = "ready";
      note.textContent = "";
      cacheNote.textContent = found.cache === "hit" ? "from the cache" : "freshly rendered";
    } catch (exc) {
      if (exc.name === "AbortError" || mine !== seq) return;
      stage.dataset.state = "error";
      note.textContent = `No preview: ${exc.message}`;
    } finally {
      if (mine === seq) stage.classList.remove("busy");
    }
  };

  const refreshTimeline = async () => {
    problems.textContent = "";
    const absent = missing();
    if (absent.length) {
      stage.dataset.state = "waiting";
      note.textContent =
        `Fill in ${absent.join(", ")} to see the preview.`;
      image.hidden = true;
      return;
    }
    try {
      tl = await api("/v1/studio/timeline", { method: "POST",
        json: { template_id: templateId, data: data() } });
    } catch (exc) {
      stage.dataset.state = "error";
      image.hidden = true;
      note.textContent = "The preview cannot be made yet.";
      problems.textContent = Array.isArray(exc.details) && exc.details.length
        ? exc.details.join("\n") : exc.message;
      return;
    }
    const keep = Math.min(Number(scrubber.value), tl.frames - 1);
    scrubber.max = String(tl.frames - 1);
    scrubber.value = String(shown ? keep : tl.scenes[0].key_frame);
    clear(markers, tl.scenes.map((s) => {
      const b = h("button", { type: "button", class: "marker",
        "aria-label": `Scene ${s.index + 1}, from ${fmt.seconds(s.start / tl.fps, 2)}`,
        onclick: () => { scrubber.value = String(s.key_frame); label(); refreshFrame(); } },
      String(s.index + 1));
      b.style.left = `${(100 * s.start) / Math.max(1, tl.frames - 1)}%`;
      return b;
    }));
    label();
    await refreshFrame();
  };

  const changed = debounce(refreshTimeline, 350);
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  const scrub = debounce(refreshFrame, 120);
  scrubber.addEventListener("input", () => { label(); scrub(); });
  state.cleanup.push(() => { changed.cancel(); scrub.cancel(); if (controller) controller.abort();
    if (shown) URL.revokeObjectURL(shown); });

  const panel = renderPanel({
    title: template.name, templateId, templateDocument: template.document, projectId,
    output: (template.document || {}).output, data,
    onError: (exc) => {
      problems.textContent = Array.isArray(exc.details) && exc.details.length
        ? `${exc.message}\n${exc.details.join("\n")}` : exc.message;
      problems.scrollIntoView({ block: "nearest" });
    },
    validate: () => {
      const absent = missing();
      if (!absent.length) return true;
      problems.textContent = `Fill in ${absent.join(", ")} first.`;
      const first = fields[absent[0]];
      if (first) first.input.focus();
      return false;
    },
  });

  clear(main, h("section", { class: "page template-page" },
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "#/templates" }, "Templates"), " / ", h("span", {}, template.name)),
    h("div", { class: "page-head" }, h("h1", {}, template.name)),
    h("div", { class: "template-layout" },
      h("section", { class: "panel", "aria-labelledby": "fields-title" },
        h("h2", { id: "fields-title" }, "Fields"),
        h("p", { class: "hint" }, h("span", { class: "required", "aria-hidden": "true" }, "*"),
          " marks a required field."), form, problems),
      h("section", { class: "panel preview-panel", "aria-labelledby": "preview-title" },
        h("h2", { id: "preview-title" }, "Preview"),
        h("p", { class: "engine-note" }, "Rendered by framefarm’s own engine: this is exactly " +
          "the frame the video will have at this point, not an approximation."),
        stage,
        h("div", { class: "scrub" }, h("label", { for: "scrubber" }, "Position"), scrubber,
          markers, h("div", { class: "scrub-meta" }, at, cacheNote))),
      h("section", { class: "panel", "aria-labelledby": "render-title-h" },
        h("h2", { id: "render-title-h" }, "Render"), panel))));
  await refreshTimeline();
}
