// Talking to the framefarm API. The API key lives in this tab's sessionStorage only and
// travels in the Authorization header (and as the WebSocket's first message): never in a
// URL, so it cannot end up in an access log, a history entry or a Referer. Images and
// videos that need the key are fetched here and shown from blob: URLs; finished videos
// are played and downloaded through signed links, which carry a signature, not the key.

const STORE = "framefarm.studio.key";

export const session = {
  get key() { return sessionStorage.getItem(STORE); },
  set(key) { sessionStorage.setItem(STORE, key); },
  clear() { sessionStorage.removeItem(STORE); },
};

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function headers(extra = {}) {
  const found = { ...extra };
  if (session.key) found.Authorization = `Bearer ${session.key}`;
  return found;
}

async function failure(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  const error = body && body.error;
  if (response.status === 401) window.dispatchEvent(new CustomEvent("studio:unauthorized"));
  if (error) return new ApiError(response.status, error.code, error.message, error.details);
  const plain = {
    413: "This file is larger than the server accepts.",
    429: "Too many renders at once; wait for one to finish.",
    502: "The server could not be reached.", 503: "The server is not ready; try again soon.",
  }[response.status];
  return new ApiError(response.status, "http", plain || `The server answered ${response.status}.`);
}

/** JSON in, JSON out. `raw: true` returns the Response (for images). */
export async function api(path, { method = "GET", json, body, signal, raw = false } = {}) {
  const init = { method, headers: headers(), signal, cache: "no-store" };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, "network", "The server could not be reached. Check your connection.");
  }
  if (!response.ok) throw await failure(response);
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response;
}

/** An image or video that needs the key, as a blob: URL (revoke it when done). */
export async function blobUrl(path, init = {}) {
  const response = await api(path, { ...init, raw: true });
  if (response.status === 202) return null;
  const blob = await response.blob();
  return { url: URL.createObjectURL(blob), blob, response };
}

/** One file, with upload progress (fetch has none): resolves with the stored assets. */
export function upload(path, file, folder, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Authorization", `Bearer ${session.key}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) { resolve(xhr.response); return; }
      const error = xhr.response && xhr.response.error;
      const message = error ? error.message : {
        413: "This file is larger than the server accepts.",
        415: "The server does not accept this type of file.",
      }[xhr.status] || `The server refused this file (${xhr.status}).`;
      reject(new ApiError(xhr.status, error ? error.code : "http", message,
        error && error.details));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network",
      "The upload was interrupted: the server closed the connection or could not be reached.")));
    const form = new FormData();
    form.append("files", file, file.name);
    if (folder) form.append("folder", folder);
    xhr.send(form);
  });
}

/** Who is signed in: {tenant_id, tenant, admin}. */
export async function whoAmI() {
  try {
    return await api("/v1/me");
  } catch (exc) {
    if (exc.status !== 404) throw exc;
  }
  // An older server without /v1/me: the key works if projects answer, and it is an admin
  // key if the admin API answers.
  await api("/v1/projects");
  let admin = false;
  try { await api("/v1/admin/queue"); admin = true; } catch (exc) {
    if (exc.status !== 403) throw exc;
  }
  return { tenant_id: null, tenant: admin ? "admin" : "tenant", admin };
}

// -- live events of a render: WebSocket, else Server-Sent Events, else polling ---------------

function socketUrl(jobId) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/v1/renders/${encodeURIComponent(jobId)}/ws`;
}

/** Events of a render, as {event: "state"|"progress"|"preview"|"done", ...}, passed to
 * `onEvent`; `onTransport(name)` says which way they come. Returns a stop function. */
export function watch(jobId, { onEvent, onTransport, prefer = ["websocket", "sse", "polling"] }) {
  let stopped = false;
  let current = null;
  const order = [...prefer];

  const next = () => {
    if (stopped) return;
    const kind = order.shift();
    if (!kind) return;
    onTransport(kind);
    current = { websocket: viaSocket, sse: viaEvents, polling: viaPolling }[kind](jobId, {
      onEvent: (event) => { if (!stopped) onEvent(event); },
      onFail: () => { if (!stopped) next(); },
    });
  };
  next();
  return () => { stopped = true; if (current) current(); };
}

function viaSocket(jobId, { onEvent, onFail }) {
  let done = false;
  let opened = false;
  let ws;
  try {
    ws = new WebSocket(socketUrl(jobId));
  } catch {
    setTimeout(onFail, 0);
    return () => {};
  }
  ws.addEventListener("open", () => {
    opened = true;
    ws.send(JSON.stringify({ token: session.key }));
  });
  ws.addEventListener("message", (message) => {
    const event = JSON.parse(message.data);
    if (event.event === "done") done = true;
    onEvent(event);
  });
  ws.addEventListener("close", (close) => {
    if (done) return;
    if (close.code === 4401) window.dispatchEvent(new CustomEvent("studio:unauthorized"));
    // Closed before the render finished (a proxy without WebSockets, a restart): go on
    // another way; the stream reads the job again, so nothing is missed.
    onFail(opened ? "closed" : "refused");
  });
  return () => { done = true; ws.close(); };
}

function viaEvents(jobId, { onEvent, onFail }) {
  // EventSource cannot send a header, so the stream is read with fetch.
  const abort = new AbortController();
  let done = false;
  (async () => {
    try {
      const response = await fetch(`/v1/renders/${encodeURIComponent(jobId)}/events`,
        { headers: headers({ Accept: "text/event-stream" }), signal: abort.signal });
      if (!response.ok || !response.body) throw new Error(String(response.status));
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done: ended } = await reader.read();
        if (ended) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data: "))
            .map((l) => l.slice(6)).join("\n");
          if (!data) continue;
          const event = JSON.parse(data);
          if (event.event === "done") done = true;
          onEvent(event);
        }
      }
      if (!done) onFail();
    } catch (exc) {
      if (exc.name !== "AbortError" && !done) onFail();
    }
  })();
  return () => { done = true; abort.abort(); };
}

function viaPolling(jobId, { onEvent }) {
  let timer = null;
  let stopped = false;
  const last = {};
  const tick = async () => {
    try {
      const job = await api(`/v1/renders/${encodeURIComponent(jobId)}`);
      if (job.state !== last.state || job.step !== last.step) {
        onEvent({ event: "state", state: job.state, step: job.step });
      }
      if (job.percent !== last.percent) {
        onEvent({ event: "progress", percent: job.percent, frames: job.frames,
          eta_seconds: job.eta_seconds });
      }
      if (job.preview_url) onEvent({ event: "preview", url: job.preview_url });
      Object.assign(last, job);
      if (["succeeded", "failed", "cancelled"].includes(job.state)) {
        const done = { event: "done", state: job.state, error: job.error, export: job.export };
        if (job.export) {
          const link = await api(`/v1/exports/${job.export.id}/link`, { method: "POST" });
          done.download_url = link.url;
          done.download_expires_at = link.expires_at;
        }
        onEvent(done);
        return;
      }
    } catch { /* try again */ }
    if (!stopped) timer = setTimeout(tick, 1000);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}
