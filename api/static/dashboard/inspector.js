// The token inspector: a token's metadata (the public token routes), its cached thumbnail and
// its fetch history (GET .../history, an admin route). Everything it shows came from outside:
// strings go in as text, and an image is shown only from an http(s) URL.

import { getJson } from "./api.js";
import { el, formatTime, muted, table } from "./dom.js";

const BASE = "/metadata/v1";
const JOB_FIELDS = [
  "status",
  "retry_count",
  "retry_after",
  "frozen",
  "update_mode",
  "next_refresh_at",
  "host_rate_limited_until",
];
const ATTEMPT_FIELDS = [
  "at",
  "kind",
  "trigger",
  "url",
  "http_status",
  "bytes",
  "duration_ms",
  "outcome",
  "reason_code",
];

function tokenPath(kind, principal, tokenId) {
  const contract = `${BASE}/${encodeURIComponent(kind)}/${encodeURIComponent(principal)}`;
  return kind === "ft" ? contract : `${contract}/${encodeURIComponent(tokenId)}`;
}

// An absolute http(s) URL (a relative one is resolved against this page), or null.
export function httpUrl(value) {
  if (typeof value !== "string" || value === "") return null;
  try {
    const url = new URL(value, window.location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function cachedImage(body) {
  const metadata = body.metadata ?? {};
  return (
    metadata.cached_thumbnail_image ??
    body.image_thumbnail_uri ??
    metadata.cached_image ??
    body.image_uri ??
    null
  );
}

function thumbnail(body) {
  const raw = cachedImage(body);
  if (raw === null) return muted("No cached image.");
  const url = httpUrl(raw);
  if (url === null) return muted(`Cached image not shown (not an http(s) URL): ${raw}`);
  const image = el("img", { id: "inspect-thumbnail", alt: "cached thumbnail" });
  image.referrerPolicy = "no-referrer";
  image.src = url;
  return el("div", { class: "thumbnail" }, image, el("div", { class: "muted mono", text: url }));
}

function metadataView(status, body) {
  if (status !== 200 || body === null) {
    const message = body?.message ? `${body.error}: ${body.message}` : body?.error;
    return el("p", { id: "inspect-error", class: "error", text: message ?? `HTTP ${status}` });
  }
  const metadata = body.metadata ?? {};
  const rows = [
    ["name", metadata.name ?? body.name ?? ""],
    ["description", metadata.description ?? body.description ?? ""],
    ["token_uri", body.token_uri ?? ""],
    ["image", metadata.image ?? body.image_canonical_uri ?? ""],
  ];
  return el(
    "div",
    { class: "inspection" },
    el(
      "div",
      { id: "inspect-metadata" },
      table(["field", "value"], rows),
      el("h3", { text: "Answer" }),
      el("pre", { text: JSON.stringify(body, null, 2) }),
    ),
    thumbnail(body),
  );
}

function historyView(status, body) {
  if (status === 404) {
    // No such route (this server has no history yet) answers Fastify's body, with statusCode.
    const routeMissing = body === null || body.statusCode === 404;
    return muted(routeMissing ? "History not available." : `History: ${body.error}`);
  }
  if (status !== 200 || body === null) {
    return el("p", { class: "error", text: `History: HTTP ${status}` });
  }
  const job = body.job ?? {};
  const attempts = body.attempts ?? [];
  return el(
    "div",
    { id: "inspect-history" },
    el("h3", { text: "Job" }),
    table(
      ["field", "value"],
      JOB_FIELDS.map((name) => [name, job[name] ?? ""]),
    ),
    el("h3", { text: `Fetch attempts (${attempts.length})` }),
    attempts.length === 0
      ? muted("No fetch attempt recorded.")
      : table(
          ATTEMPT_FIELDS,
          attempts.map((a) => ATTEMPT_FIELDS.map((f) => (f === "at" ? formatTime(a[f]) : a[f]))),
          [4, 5, 6],
        ),
  );
}

export async function inspectToken(container, kind, principal, tokenId) {
  if (kind !== "ft" && !/^[0-9]+$/.test(tokenId)) {
    container.replaceChildren(el("p", { class: "error", text: "A token id is a number." }));
    return;
  }
  container.replaceChildren(muted("Loading..."));
  const path = tokenPath(kind, principal, tokenId);
  const [token, history] = await Promise.all([getJson(path), getJson(`${path}/history`)]);
  container.replaceChildren(
    metadataView(token.status, token.body),
    el("h3", { text: "Fetch history" }),
    historyView(history.status, history.body),
  );
}
