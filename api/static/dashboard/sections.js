// One function per dashboard section: GET /metadata/v1/admin/dashboard's JSON in, nodes out.

import { throughputChart } from "./chart.js";
import { el, formatDuration, formatRate, formatTime, muted, table } from "./dom.js";

function figure(label, value) {
  return el("div", {}, el("strong", { text: value }), label);
}

function share(finished, total) {
  return total > 0 ? `${((100 * finished) / total).toFixed(1)} %` : "-";
}

export function overview(index) {
  const { total, finished } = index.tokens;
  return el(
    "div",
    { class: "figures" },
    figure("tokens finished", `${finished} / ${total} (${share(finished, total)})`),
    figure(`over the last ${index.window_s} s`, formatRate(index.tokens_per_second)),
    figure("time left", formatDuration(index.seconds_left)),
  );
}

export function backfill(contracts) {
  if (contracts.length === 0) return muted("No contract has tokens waiting to be fetched.");
  return el("div", {}, ...contracts.map(contractBar));
}

function contractBar(contract) {
  const { total } = contract.tokens;
  const bar = el("progress", { max: String(Math.max(total, 1)), value: String(contract.finished) });
  bar.setAttribute("aria-label", `${contract.contract_id}: ${share(contract.finished, total)}`);
  const enumerating = ["pending", "queued"].includes(contract.contract_job);
  const figures = [
    `${contract.finished} / ${total} tokens (${share(contract.finished, total)})`,
    formatRate(contract.tokens_per_second),
    `time left: ${enumerating ? "enumerating tokens" : formatDuration(contract.seconds_left)}`,
    `pending ${contract.tokens.pending ?? 0}, queued ${contract.tokens.queued ?? 0}`,
  ];
  return el(
    "div",
    { class: "contract", "data-contract": contract.contract_id },
    el("div", { class: "name", text: `${contract.contract_id} (${contract.sip})` }),
    bar,
    el("div", { class: "muted", text: figures.join(" · ") }),
  );
}

export function throughput(data) {
  return el("div", {}, throughputChart(data.minutes), muted(`${data.total} tokens in the last hour`));
}

export function failures(data) {
  if (data.total === 0) return muted("No failed or invalid job.");
  return el(
    "div",
    {},
    muted(`${data.total} failed or invalid jobs`),
    el("h3", { text: "By reason" }),
    table(
      ["status", "code", "reason", "jobs"],
      data.by_reason.map((r) => [r.status, r.code ?? "", r.message, r.jobs]),
      [3],
    ),
    el("h3", { text: "By metadata host" }),
    data.by_host.length === 0
      ? muted("Only contract jobs failed.")
      : table(["host", "jobs"], data.by_host.map((h) => [h.host, h.jobs]), [1]),
  );
}

export function rateLimited(data) {
  if (data.total === 0) return muted("No host is rate limited.");
  return el(
    "div",
    {},
    muted(`${data.total} hosts left alone after a 429`),
    table(
      ["host", "until", "left"],
      data.hosts.map((h) => [h.hostname, formatTime(h.until), formatDuration(h.seconds_left)]),
      [2],
    ),
  );
}

export function hostSlots(data) {
  if (data.busy === null) return el("p", { class: "error", text: `Unreadable: ${data.error}` });
  if (data.busy.length === 0) return muted("No fetch in flight.");
  return table(
    ["host", "slots held", "processes waiting"],
    data.busy.map((h) => [h.host, h.slots_held, h.processes_waiting]),
    [1, 2],
  );
}

export function queues(data) {
  const broker =
    data.broker === null
      ? el("p", { class: "error", text: `Broker unreadable: ${data.broker_error}` })
      : table(["queue", "messages"], Object.entries(data.broker), [1]);
  const statuses = Object.keys(data.token_jobs);
  const jobs = table(
    ["status", "token jobs", "contract jobs"],
    statuses.map((s) => [s, data.token_jobs[s], data.contract_jobs[s] ?? 0]),
    [1, 2],
  );
  return el(
    "div",
    {},
    el("h3", { text: "Broker (Redis)" }),
    broker,
    el("h3", { text: "Jobs by status" }),
    jobs,
  );
}
