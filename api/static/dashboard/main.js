// The operator dashboard (docs/dashboard.md): log in with the admin token, then show what
// GET /metadata/v1/admin/dashboard reads, refreshed every few seconds.

import { Unauthorized, adminToken, getJson, isUsableToken } from "./api.js";
import { inspectToken } from "./inspector.js";
import * as sections from "./sections.js";

const DASHBOARD_URL = "/metadata/v1/admin/dashboard";
const REFRESH_MS = 5000;
let refreshTimer = null;

const byId = (id) => document.getElementById(id);

function showLogin(message = "") {
  window.clearTimeout(refreshTimer);
  refreshTimer = null;
  adminToken.clear();
  byId("dashboard").hidden = true;
  byId("logout").hidden = true;
  byId("updated").textContent = "";
  byId("login-section").hidden = false;
  byId("login-message").textContent = message;
  byId("token-input").value = "";
  byId("token-input").focus();
}

function showDashboard() {
  byId("login-section").hidden = true;
  byId("login-message").textContent = "";
  byId("dashboard").hidden = false;
  byId("logout").hidden = false;
}

// Any data route answering 401 ends the session: back to the login form.
export function whenUnauthorized(error) {
  if (!(error instanceof Unauthorized)) return false;
  showLogin("The admin token was refused: log in again.");
  return true;
}

function render(data) {
  byId("overview").replaceChildren(sections.overview(data.index));
  byId("backfill").replaceChildren(sections.backfill(data.contracts));
  byId("throughput").replaceChildren(sections.throughput(data.throughput));
  byId("failures").replaceChildren(sections.failures(data.failures));
  byId("rate-limited").replaceChildren(sections.rateLimited(data.rate_limited_hosts));
  byId("host-slots").replaceChildren(sections.hostSlots(data.host_slots));
  byId("queues").replaceChildren(sections.queues(data.queues));
  byId("updated").textContent = `updated ${new Date(data.generated_at).toLocaleTimeString()}`;
}

// On the login form while it is shown (the token just typed), else above the sections.
function showLoadError(message) {
  byId("load-error").textContent = message;
  if (!byId("login-section").hidden) byId("login-message").textContent = message;
  else showDashboard();
}

async function refresh() {
  refreshTimer = null;
  try {
    const { status, body } = await getJson(DASHBOARD_URL);
    if (status !== 200 || body === null) {
      showLoadError(`The dashboard route answered ${status}.`);
    } else {
      byId("load-error").textContent = "";
      showDashboard();
      render(body);
    }
  } catch (error) {
    if (whenUnauthorized(error)) return;
    showLoadError(`Could not load the dashboard: ${error.message}`);
  }
  if (adminToken.get() !== null) refreshTimer = window.setTimeout(refresh, REFRESH_MS);
}

function onLogin(event) {
  event.preventDefault();
  const token = byId("token-input").value.trim();
  if (!isUsableToken(token)) {
    byId("login-message").textContent = "A token is printable ASCII without spaces.";
    return;
  }
  adminToken.save(token);
  byId("token-input").value = "";
  refresh();
}

function onInspect(event) {
  event.preventDefault();
  inspectToken(
    byId("inspector"),
    byId("inspect-kind").value,
    byId("inspect-principal").value.trim(),
    byId("inspect-token-id").value.trim(),
  ).catch((error) => {
    if (!whenUnauthorized(error)) throw error;
  });
}

function start() {
  byId("login-form").addEventListener("submit", onLogin);
  byId("inspector-form").addEventListener("submit", onInspect);
  byId("logout").addEventListener("click", () => showLogin());
  if (adminToken.get() === null) showLogin();
  else refresh();
}

start();
