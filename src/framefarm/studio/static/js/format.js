// Numbers and times shown the way the reader's locale writes them.

const locale = navigator.language || undefined;

export function dateTime(iso) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" })
    .format(new Date(iso));
}

export function timeOnly(iso) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(locale, { timeStyle: "medium" }).format(new Date(iso));
}

export function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
  const abs = Math.abs(seconds);
  if (abs < 60) return rtf.format(seconds, "second");
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), "hour");
  return rtf.format(Math.round(seconds / 86400), "day");
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["byte", "kilobyte", "megabyte", "gigabyte"];
  let i = 0;
  let value = n;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i += 1; }
  return new Intl.NumberFormat(locale, { style: "unit", unit: units[i], unitDisplay: "short",
    maximumFractionDigits: i === 0 ? 0 : 1 }).format(value);
}

export function seconds(s, digits = 1) {
  if (s === null || s === undefined || Number.isNaN(s)) return "—";
  return new Intl.NumberFormat(locale, { style: "unit", unit: "second", unitDisplay: "short",
    maximumFractionDigits: digits, minimumFractionDigits: digits }).format(s);
}

export function duration(s) {
  if (s === null || s === undefined) return "—";
  if (s < 60) return seconds(s, s < 10 ? 1 : 0);
  const m = Math.floor(s / 60);
  const rest = Math.round(s % 60);
  return `${m}:${String(rest).padStart(2, "0")}`;
}

export function number(n, digits = 0) {
  if (n === null || n === undefined) return "—";
  return new Intl.NumberFormat(locale, { maximumFractionDigits: digits }).format(n);
}

export function percent(p) {
  return new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 0 })
    .format((p || 0) / 100);
}

export const STATE_LABELS = {
  queued: "Queued", running: "Rendering", succeeded: "Done", failed: "Failed",
  cancelled: "Cancelled",
};

/** A job's step ("render", "audio", "assemble"...) as words. */
export const STEP_LABELS = {
  queued: "Waiting for a render node", snapshot: "Rendering the frame",
  render: "Rendering frames", audio: "Mixing the sound", assemble: "Joining the parts",
  done: "Done", failed: "Failed", cancelled: "Cancelled",
};

export function step(state, name) {
  if (state === "queued") return STEP_LABELS.queued;
  return STEP_LABELS[name] || STATE_LABELS[state] || name || state;
}
