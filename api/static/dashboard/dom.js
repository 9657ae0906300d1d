// DOM helpers. Every string reaches the page as a text node (append / textContent), never as
// HTML: token metadata, host names and error messages come from the outside world.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

export function table(headers, rows, numeric = []) {
  const head = el("tr", {}, ...headers.map((h, i) => el("th", numberClass(numeric, i), h)));
  const body = rows.map((row) =>
    el("tr", {}, ...row.map((cell, i) => el("td", numberClass(numeric, i), String(cell ?? "")))),
  );
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

function numberClass(numeric, index) {
  return numeric.includes(index) ? { class: "number" } : {};
}

export function muted(text) {
  return el("p", { class: "muted", text });
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  let left = Math.round(seconds);
  const hours = Math.floor(left / 3600);
  left -= hours * 3600;
  const minutes = Math.floor(left / 60);
  const secs = left - minutes * 60;
  if (hours > 0) return `${hours}h ${String(minutes).padStart(2, "0")}m`;
  if (minutes > 0) return `${minutes}m ${String(secs).padStart(2, "0")}s`;
  return `${secs}s`;
}

export function formatRate(perSecond) {
  return `${perSecond.toFixed(perSecond < 10 ? 2 : 1)} tokens/s`;
}

export function formatTime(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? String(iso) : when.toLocaleTimeString();
}
