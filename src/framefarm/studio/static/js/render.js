// Rendering: the options a person expects, then a modal that follows the render live
// (WebSocket, else Server-Sent Events, else polling) until it can be played and
// downloaded, or says what failed and offers Retry.

import { api, blobUrl, watch } from "./api.js";
import { h, clear, field, announce } from "./dom.js";
import * as fmt from "./format.js";

const CHOICES = {
  quality: [["draft", "Draft (fastest)"], ["low", "Low"], ["medium", "Medium"], ["high", "High"],
    ["max", "Maximum"], ["lossless", "Lossless"]],
  size: [["360p", "360p"], ["480p", "480p"], ["720p", "720p (HD)"], ["1080p", "1080p (Full HD)"],
    ["1440p", "1440p"], ["2160p", "2160p (4K)"]],
  aspect: [["16:9", "16:9 landscape"], ["9:16", "9:16 vertical"], ["1:1", "1:1 square"],
    ["4:5", "4:5 portrait"]],
  fps: [["24", "24 fps"], ["25", "25 fps"], ["30", "30 fps"], ["50", "50 fps"], ["60", "60 fps"]],
  format: [["mp4", "MP4 (H.264)"], ["webm", "WebM (VP9)"], ["gif", "GIF"]],
};

function select(name, current) {
  return h("select", { name }, CHOICES[name].map(([value, label]) =>
    h("option", { value, selected: String(current) === value }, label)));
}

/** The Render options and button, for a template (or a project's document). */
export function renderPanel(source) {
  const output = source.output || {};
  const controls = {
    quality: select("quality", output.quality || "high"),
    size: select("size", output.size || "1080p"),
    aspect: select("aspect", output.aspect || "16:9"),
    fps: select("fps", output.fps || 30),
    format: select("format", ["mp4", "webm", "gif"].includes(output.format) ? output.format : "mp4"),
  };
  const button = h("button", { type: "submit", class: "primary big", id: "render-button" },
    "Render");
  const form = h("form", { class: "render-options", "aria-label": "Render options" },
    h("div", { class: "option-grid" },
      field("Quality", controls.quality), field("Size", controls.size),
      field("Aspect", controls.aspect), field("Frame rate", controls.fps),
      field("Format", controls.format)),
    button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const options = { quality: controls.quality.value, size: controls.size.value,
      fps: Number(controls.fps.value), format: controls.format.value };
    const data = source.data ? source.data() : undefined;
    if (source.validate && !source.validate()) return;
    button.disabled = true;
    try {
      const job = await submit(source, options, controls.aspect.value, data);
      if (source.onStarted) source.onStarted();
      progressModal(job, source.title);
    } catch (exc) {
      if (source.onError) source.onError(exc); else announce(exc.message, "error");
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

async function submit(source, options, aspect, data) {
  const sameAspect = aspect === ((source.output || {}).aspect || "16:9");
  if (source.templateId && sameAspect) {
    return api(`/v1/templates/${encodeURIComponent(source.templateId)}/renders`,
      { method: "POST", json: { data: data || {}, options } });
  }
  if (source.templateDocument) {
    // The aspect is part of the document's output (not a render option): send the
    // template's document with it, and the template's project for the assets.
    const document = structuredClone(source.templateDocument);
    document.output = { ...(document.output || {}), aspect };
    return api("/v1/renders", { method: "POST", json: { document, data: data || {},
      project_id: source.projectId || null, options } });
  }
  if (!sameAspect) {
    const project = await api(`/v1/projects/${encodeURIComponent(source.projectId)}`);
    const document = { ...project.document, output: { ...(project.document.output || {}), aspect } };
    return api("/v1/renders", { method: "POST", json: { document, project_id: source.projectId,
      options } });
  }
  return api("/v1/renders", { method: "POST", json: { project_id: source.projectId, options } });
}

/** For a project's document: a dialog with the options, then the progress modal. */
export async function openRender({ title, projectId }) {
  const project = await api(`/v1/projects/${encodeURIComponent(projectId)}`);
  const dialog = h("dialog", { class: "modal", "aria-labelledby": "options-title" });
  const shut = () => { dialog.close(); dialog.remove(); };
  const panel = renderPanel({ title, projectId, output: (project.document || {}).output,
    onStarted: shut });
  clear(dialog, h("h2", { id: "options-title" }, `Render “${title}”`), panel,
    h("button", { type: "button", class: "ghost", onclick: shut }, "Close"));
  dialog.addEventListener("cancel", (e) => { e.preventDefault(); shut(); });
  document.body.append(dialog);
  dialog.showModal();
}

// -- the progress modal -----------------------------------------------------------------

export function progressModal(job, title, { prefer } = {}) {
  const dialog = h("dialog", { class: "modal progress-modal", id: "render-modal",
    "aria-labelledby": "render-title", dataset: { jobId: job.id, state: job.state } });
  const heading = h("h2", { id: "render-title" }, `Rendering “${title}”`);
  const stepText = h("p", { class: "step", id: "render-step" }, "Queued");
  const bar = h("progress", { max: 100, value: 0, id: "render-bar", "aria-labelledby": "render-step" });
  const pct = h("span", { class: "pct num", id: "render-percent" }, fmt.percent(0));
  const frames = h("dd", { class: "num", id: "render-frames" }, "—");
  const speed = h("dd", { class: "num", id: "render-speed" }, "—");
  const eta = h("dd", { class: "num", id: "render-eta" }, "—");
  const preview = h("img", { class: "live-preview", id: "render-preview", alt: "The latest " +
    "frame rendered", hidden: true });
  const previewBox = h("div", { class: "preview-box", id: "render-preview-box" }, preview,
    h("p", { class: "hint waiting" }, "The first frames appear here as they are rendered."));
  const logs = h("ol", { class: "logs", id: "render-logs", "aria-label": "Log", tabindex: "0" });
  const result = h("div", { class: "result", id: "render-result" });
  const cancel = h("button", { type: "button", class: "danger", id: "render-cancel" }, "Cancel render");
  const close = h("button", { type: "button", id: "render-close" }, "Close");
  const actions = h("div", { class: "actions" }, cancel, close);
  const live = h("p", { class: "visually-hidden", "aria-live": "polite" });
  clear(dialog, heading,
    h("div", { class: "progress-line" }, bar, pct), stepText,
    h("dl", { class: "stats" },
      h("div", {}, h("dt", {}, "Frames"), frames), h("div", {}, h("dt", {}, "Speed"), speed),
      h("div", {}, h("dt", {}, "Time left"), eta)),
    previewBox, result, h("details", { class: "log-box", open: true },
      h("summary", {}, "Log"), logs), actions, live);
  document.body.append(dialog);
  dialog.showModal();

  let current = job;
  let stop = () => {};
  let previewUrl = null;
  let previews = 0;
  let samples = [];
  let logTimer = null;
  let seenLogs = 0;

  const fetchLogs = async () => {
    try {
      const lines = await api(`/v1/renders/${encodeURIComponent(current.id)}/logs`);
      for (const line of lines.slice(seenLogs)) {
        logs.append(h("li", { class: line.level }, h("time", { datetime: line.at },
          fmt.timeOnly(line.at)), " ", line.message));
      }
      seenLogs = lines.length;
      logs.scrollTop = logs.scrollHeight;
    } catch { /* the next event tries again */ }
  };
  const logsSoon = () => {
    if (logTimer) return;
    logTimer = setTimeout(() => { logTimer = null; fetchLogs(); }, 400);
  };

  let previewHash = null;
  const showPreview = async (url) => {
    try {
      const found = await blobUrl(new URL(url, location.href).pathname);
      if (!found) return;
      // Every change of the job says "preview"; show (and count) only a new picture.
      const hash = fnv(new Uint8Array(await found.blob.arrayBuffer()));
      if (hash === previewHash) { URL.revokeObjectURL(found.url); return; }
      previewHash = hash;
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = found.url;
      preview.src = previewUrl;
      preview.hidden = false;
      previews += 1;
      dialog.dataset.previews = String(previews);
      previewBox.classList.add("has-image");
    } catch { /* keep the last one */ }
  };

  const onEvent = (event) => {
    if (event.event === "state") {
      stepText.textContent = fmt.step(event.state, event.step);
      dialog.dataset.state = event.state;
      logsSoon();
    } else if (event.event === "progress") {
      const p = event.percent || 0;
      bar.value = p;
      pct.textContent = fmt.percent(p);
      dialog.dataset.percent = String(p);
      const f = event.frames || {};
      frames.textContent = `${fmt.number(f.done)} / ${fmt.number(f.total)}`;
      const now = performance.now() / 1000;
      samples.push([now, f.done || 0]);
      samples = samples.filter(([t]) => now - t < 6);
      if (samples.length > 1) {
        const [t0, d0] = samples[0];
        const rate = (f.done - d0) / Math.max(0.001, now - t0);
        speed.textContent = rate > 0 ? `${fmt.number(rate, 1)} fps` : "—";
      }
      eta.textContent = event.eta_seconds ? fmt.duration(event.eta_seconds) : "—";
      live.textContent = `${fmt.percent(p)} done`;
      logsSoon();
    } else if (event.event === "preview") {
      showPreview(event.url);
    } else if (event.event === "done") {
      finish(event);
    }
  };

  const begin = (found) => {
    current = found;
    dialog.dataset.jobId = found.id;
    dialog.dataset.state = found.state;
    seenLogs = 0;
    clear(logs);
    clear(result);
    previewBox.hidden = false;
    bar.value = 0;
    pct.textContent = fmt.percent(0);
    heading.textContent = `Rendering “${title}”`;
    cancel.hidden = false;
    stop = watch(found.id, {
      onEvent,
      onTransport: (name) => { dialog.dataset.transport = name; },
      prefer,
    });
  };

  const finish = async (event) => {
    stop();
    await fetchLogs();
    cancel.hidden = true;
    dialog.dataset.state = event.state;
    if (event.state === "succeeded") {
      bar.value = 100;
      pct.textContent = fmt.percent(100);
      dialog.dataset.percent = "100";
      heading.textContent = `“${title}” is ready`;
      previewBox.hidden = true; // the player takes its place
      stepText.textContent = "Done";
      const exp = event.export;
      const video = h("video", { controls: true, src: event.download_url, class: "player",
        id: "render-video", preload: "metadata", "aria-label": `The rendered video of ${title}` });
      const copy = h("button", { type: "button", id: "render-copy" }, "Copy link");
      copy.addEventListener("click", () => copyLink(exp.id, copy));
      clear(result,
        exp.format === "gif" ? h("img", { src: event.download_url, alt: `The rendered GIF of ${title}`,
          class: "player" }) : video,
        h("p", { class: "meta", id: "render-meta" },
          `${fmt.bytes(exp.size)} · ${fmt.duration(exp.duration)} · ${exp.width}×${exp.height}`),
        h("div", { class: "actions" },
          h("a", { href: event.download_url, download: "", class: "button primary",
            id: "render-download" }, "Download"), copy));
    } else if (event.state === "failed") {
      heading.textContent = `“${title}” did not render`;
      if (!previews) previewBox.hidden = true; // nothing was rendered to show
      const job = await api(`/v1/renders/${encodeURIComponent(current.id)}`).catch(() => current);
      stepText.textContent = job.failed_step
        ? `Failed while ${fmt.step("running", job.failed_step).toLowerCase()}` : "Failed";
      const retry = h("button", { type: "button", class: "primary", id: "render-retry" }, "Retry");
      retry.addEventListener("click", async () => {
        retry.disabled = true;
        try { begin(await api(`/v1/renders/${encodeURIComponent(current.id)}/retry`,
          { method: "POST" })); } catch (exc) { announce(exc.message, "error"); retry.disabled = false; }
      });
      clear(result, h("div", { class: "failure", role: "alert" },
        h("p", { id: "render-error" }, event.error || job.error || "The render failed."),
        job.failed_step ? h("p", { class: "meta", id: "render-failed-step" },
          `Failed step: ${fmt.step("running", job.failed_step)} (${job.failed_step})`) : null),
      h("div", { class: "actions" }, retry));
    } else {
      heading.textContent = `“${title}” was cancelled`;
      stepText.textContent = "Cancelled";
      const retry = h("button", { type: "button", id: "render-retry" }, "Render again");
      retry.addEventListener("click", async () => {
        try { begin(await api(`/v1/renders/${encodeURIComponent(current.id)}/retry`,
          { method: "POST" })); } catch (exc) { announce(exc.message, "error"); }
      });
      clear(result, h("p", { role: "status" }, "Nothing was kept of this render."),
        h("div", { class: "actions" }, retry));
    }
    window.dispatchEvent(new CustomEvent("studio:render-finished", { detail: current.id }));
  };

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      await api(`/v1/renders/${encodeURIComponent(current.id)}/cancel`, { method: "POST" });
    } catch (exc) { announce(exc.message, "error"); }
    cancel.disabled = false;
  });
  const shut = () => {
    stop();
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    dialog.close();
    dialog.remove();
  };
  close.addEventListener("click", shut);
  dialog.addEventListener("cancel", (e) => { e.preventDefault(); shut(); });
  begin(job);
  return dialog;
}

function fnv(bytes) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i += 1) {
    hash ^= bytes[i];
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

export async function copyLink(exportId, button) {
  try {
    const link = await api(`/v1/exports/${encodeURIComponent(exportId)}/link`, { method: "POST" });
    try {
      await navigator.clipboard.writeText(link.url);
      announce(`Link copied; it works until ${fmt.dateTime(link.expires_at)}.`);
    } catch {
      window.prompt("Copy this link:", link.url);
    }
    if (button) button.dataset.link = link.url;
    return link.url;
  } catch (exc) {
    announce(exc.message, "error");
    return null;
  }
}
