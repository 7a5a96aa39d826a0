// Projects: the list (create, rename, delete), and one project: its assets (drag and drop
// uploads with per-file progress) and its document in the editor.

import { api, blobUrl, upload } from "./api.js";
import { h, clear, field, confirmDialog, announce } from "./dom.js";
import { JsonEditor } from "./editor.js";
import * as fmt from "./format.js";

let schemaPromise = null;
export function documentSchema() {
  schemaPromise = schemaPromise || api("/v1/studio/schema").catch((exc) => {
    schemaPromise = null;
    throw exc;
  });
  return schemaPromise;
}

const enc = encodeURIComponent;

export async function list(main) {
  const items = h("ul", { class: "cards projects", "aria-label": "Projects" });
  const name = h("input", { type: "text", name: "name", maxlength: 200, required: true,
    autocomplete: "off" });
  const create = h("form", { class: "inline-form", "aria-label": "New project" },
    field("Name of a new project", name), h("button", { type: "submit", class: "primary" }, "Create"));
  create.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = name.value.trim();
    if (!value) { announce("Give the project a name.", "error"); name.focus(); return; }
    try {
      const made = await api("/v1/projects", { method: "POST", json: { name: value } });
      name.value = "";
      announce(`Created “${made.name}”.`);
      await refresh();
    } catch (exc) { announce(exc.message, "error"); }
  });
  clear(main, h("section", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "Projects"), create), items));

  async function refresh() {
    const projects = await api("/v1/projects");
    if (!projects.length) {
      clear(items, h("li", { class: "empty" }, h("p", {}, "No projects yet."),
        h("p", {}, "A project holds a document and its pictures, sounds and clips. " +
          "Name one above to start.")));
      return;
    }
    clear(items, projects.map((p) => projectCard(p, refresh)));
  }
  await refresh();
}

function projectCard(project, refresh) {
  const title = h("a", { href: `#/projects/${enc(project.id)}`, class: "card-title" },
    project.name);
  const card = h("li", { class: "card", dataset: { id: project.id } });
  const rename = () => {
    const input = h("input", { type: "text", value: project.name, maxlength: 200,
      "aria-label": `New name for ${project.name}` });
    const form = h("form", { class: "inline-form" }, input,
      h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", onclick: () => refresh() }, "Cancel"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api(`/v1/projects/${enc(project.id)}`, { method: "PATCH",
          json: { name: input.value.trim() } });
        announce("Renamed.");
        await refresh();
      } catch (exc) { announce(exc.message, "error"); }
    });
    title.replaceWith(form);
    input.focus();
    input.select();
  };
  const remove = async () => {
    if (!await confirmDialog("Delete this project?",
      `“${project.name}”, its document and its assets will be deleted. Renders already ` +
      "made are kept.")) return;
    try {
      await api(`/v1/projects/${enc(project.id)}`, { method: "DELETE" });
      announce("Project deleted.");
      await refresh();
    } catch (exc) { announce(exc.message, "error"); }
  };
  return clear(card, title,
    h("p", { class: "meta" }, `Created ${fmt.dateTime(project.created_at)}`),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: rename, "aria-label": `Rename ${project.name}` },
        "Rename"),
      h("button", { type: "button", class: "danger", onclick: remove,
        "aria-label": `Delete ${project.name}` }, "Delete")));
}

// -- one project ------------------------------------------------------------------------

export async function detail(main, [projectId], state) {
  const project = await api(`/v1/projects/${enc(projectId)}`);
  const heading = h("h1", {}, project.name);
  const assetsList = h("ul", { class: "assets", "aria-label": "Assets" });
  const uploads = h("ul", { class: "uploads", "aria-label": "Uploads", "aria-live": "polite" });
  const picker = h("input", { type: "file", multiple: true, class: "visually-hidden",
    id: "asset-files" });
  const folder = h("input", { type: "text", value: "media", maxlength: 60, autocomplete: "off",
    class: "short" });
  const choose = h("button", { type: "button", "aria-describedby": "drop-hint",
    onclick: () => picker.click() }, "Choose files…");
  const drop = h("div", { class: "dropzone" },
    h("p", {}, h("strong", {}, "Drop files here"), " or ", choose),
    h("p", { class: "hint", id: "drop-hint" },
      "Pictures, sounds, clips, fonts and captions, each uploaded with its own progress."),
    h("label", { for: "asset-files", class: "visually-hidden" }, "Files to upload"), picker);
  drop.addEventListener("click", (e) => { if (e.target === drop) picker.click(); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    send([...e.dataTransfer.files]);
  });
  picker.addEventListener("change", () => { send([...picker.files]); picker.value = ""; });

  const urls = [];
  state.cleanup.push(() => urls.forEach((u) => URL.revokeObjectURL(u)));

  async function send(files) {
    await Promise.all(files.map(async (file) => {
      if (!USABLE.test(file.name)) {
        uploads.prepend(h("li", { class: "upload refused" }, h("span", { class: "name" }, file.name),
          h("span", { class: "size" }, fmt.bytes(file.size)),
          h("span", { class: "status", role: "alert" }, "Refused: a video document cannot use " +
            "this type of file. Upload pictures, sounds, clips, fonts or captions.")));
        return;
      }
      const bar = h("progress", { max: 1, value: 0, "aria-label": `Uploading ${file.name}` });
      const status = h("span", { class: "status" }, "Uploading…");
      const row = h("li", { class: "upload" }, h("span", { class: "name" }, file.name),
        h("span", { class: "size" }, fmt.bytes(file.size)), bar, status);
      uploads.prepend(row);
      try {
        await upload(`/v1/projects/${enc(projectId)}/assets`, file, folder.value.trim(),
          (fraction) => { bar.value = fraction; status.textContent = fmt.percent(fraction * 100); });
        bar.value = 1;
        status.textContent = "Uploaded";
        row.classList.add("ok");
      } catch (exc) {
        row.classList.add("refused");
        bar.remove();
        status.textContent = `Refused: ${refusal(exc, file)}`;
        status.setAttribute("role", "alert");
      }
    }));
    await refreshAssets();
  }

  async function refreshAssets() {
    const assets = await api(`/v1/projects/${enc(projectId)}/assets`);
    if (!assets.length) {
      clear(assetsList, h("li", { class: "empty" }, "No assets yet: drop some files above."));
      return;
    }
    clear(assetsList, assets.map((a) => assetCard(projectId, a, urls, refreshAssets)));
  }

  const schema = await documentSchema().catch(() => null);
  const editor = new JsonEditor({ label: "Document (JSON)", schema,
    value: JSON.stringify(project.document || { scenes: [{ duration: 3, layers: [] }] }, null, 2) });
  const saved = h("p", { class: "status", role: "status" });
  const save = async () => {
    saved.textContent = "";
    if (!editor.check()) { saved.textContent = "The JSON is not valid; see the mark."; return; }
    try {
      await api(`/v1/projects/${enc(projectId)}/document`, { method: "PUT",
        json: JSON.parse(editor.value) });
      editor.showProblems([]);
      saved.textContent = `Saved at ${fmt.timeOnly(new Date().toISOString())}.`;
    } catch (exc) {
      if (exc.details && Array.isArray(exc.details)) {
        editor.showProblems(exc.details);
        saved.textContent = `The server found ${exc.details.length} problem(s); each is marked.`;
      } else {
        saved.textContent = exc.message;
      }
    }
  };
  const render = async () => {
    const { openRender } = await import("./render.js");
    openRender({ title: project.name, projectId, document: null });
  };
  clear(main, h("section", { class: "page" },
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "#/projects" }, "Projects"), " / ", h("span", {}, project.name)),
    h("div", { class: "page-head" }, heading),
    h("section", { "aria-labelledby": "assets-title", class: "panel" },
      h("h2", { id: "assets-title" }, "Assets"), field("Upload into folder", folder), drop,
      uploads, assetsList),
    h("section", { "aria-labelledby": "doc-title", class: "panel" },
      h("h2", { id: "doc-title" }, "Document"), editor.element,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "primary", onclick: save }, "Save document"),
        h("button", { type: "button", onclick: render }, "Render…")), saved)));
  await refreshAssets();
}

/** A refusal in words for people (the server's own words stay for the rest). */
function refusal(exc, file) {
  if (exc.status === 413) {
    const limit = /(\d{4,})\s*bytes/.exec(exc.message || "");
    return `this file (${fmt.bytes(file.size)}) is larger than the server accepts` +
      (limit ? ` (${fmt.bytes(Number(limit[1]))} a file).` : ".");
  }
  if (exc.code === "invalid_asset_name") {
    return "the server does not accept this file name: use letters, digits, '.', '_' and '-'.";
  }
  return exc.message;
}

// What the engine can use: pictures, clips, sounds, fonts, captions.
const USABLE = /\.(jpe?g|png|webp|gif|bmp|tiff?|mp4|mov|webm|mkv|m4v|avi|m4a|mp3|wav|aac|ogg|opus|flac|ttf|otf|srt|vtt)$/i;

const KINDS = [
  ["image", /\.(jpe?g|png|webp|gif|bmp|tiff?)$/i],
  ["video", /\.(mp4|mov|webm|mkv|m4v|avi)$/i],
  ["audio", /\.(m4a|mp3|wav|aac|ogg|opus|flac)$/i],
];
export function kindOf(name) {
  const found = KINDS.find(([, re]) => re.test(name));
  return found ? found[0] : "file";
}

function assetCard(projectId, asset, urls, refresh) {
  const kind = kindOf(asset.name);
  const thumb = h("div", { class: `thumb ${kind}` }, h("span", { class: "kind" }, kind));
  const extra = h("span", { class: "meta" }, fmt.bytes(asset.size));
  const path = `/v1/projects/${enc(projectId)}/assets/${asset.name.split("/").map(enc).join("/")}`;
  if (kind !== "file") {
    blobUrl(path).then((found) => {
      if (!found) return;
      urls.push(found.url);
      if (kind === "image") {
        clear(thumb, h("img", { src: found.url, alt: `Thumbnail of ${asset.name}`,
          loading: "lazy" }));
      } else if (kind === "video") {
        const video = h("video", { src: found.url, muted: true, preload: "metadata",
          "aria-label": `First frame of ${asset.name}` });
        video.muted = true;
        video.addEventListener("loadedmetadata", () => {
          extra.textContent = `${fmt.bytes(asset.size)} · ${fmt.duration(video.duration)}`;
          video.currentTime = Math.min(0.1, video.duration / 2);
        });
        clear(thumb, video);
      } else {
        const audio = new Audio();
        audio.preload = "metadata";
        audio.addEventListener("loadedmetadata", () => {
          extra.textContent = `${fmt.bytes(asset.size)} · ${fmt.duration(audio.duration)}`;
          extra.dataset.duration = String(audio.duration);
        });
        audio.src = found.url;
        clear(thumb, h("span", { class: "kind" }, "♪ audio"));
      }
    }).catch(() => clear(thumb, h("span", { class: "kind" }, "no preview")));
  }
  const remove = async () => {
    if (!await confirmDialog("Delete this asset?", `“${asset.name}” will be removed from ` +
      "the project.")) return;
    try {
      await api(path, { method: "DELETE" });
      await refresh();
    } catch (exc) { announce(exc.message, "error"); }
  };
  return h("li", { class: "asset", dataset: { name: asset.name } }, thumb,
    h("span", { class: "name" }, asset.name), extra,
    h("button", { type: "button", class: "ghost small", onclick: remove,
      "aria-label": `Delete ${asset.name}` }, "Delete"));
}
