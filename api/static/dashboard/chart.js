// The throughput chart: one SVG bar per minute, drawn here (no chart library).

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const HEIGHT = 200;
const LEFT = 44;
const BOTTOM = 22;
const TOP = 8;

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

// `minutes`: [{at, tokens}], oldest first.
export function throughputChart(minutes) {
  const chart = svg("svg", {
    id: "throughput-chart",
    class: "chart",
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
  });
  const total = minutes.reduce((sum, minute) => sum + minute.tokens, 0);
  chart.append(svg("title", {}, `${total} tokens fetched in the last ${minutes.length} minutes`));
  const peak = Math.max(1, ...minutes.map((minute) => minute.tokens));
  const plotHeight = HEIGHT - BOTTOM - TOP;
  const step = (WIDTH - LEFT) / Math.max(1, minutes.length);
  minutes.forEach((minute, i) => {
    const height = (minute.tokens / peak) * plotHeight;
    const bar = svg("rect", {
      class: "bar",
      x: (LEFT + i * step + 1).toFixed(1),
      y: (TOP + plotHeight - height).toFixed(1),
      width: Math.max(1, step - 2).toFixed(1),
      height: height.toFixed(1),
      "data-tokens": minute.tokens,
    });
    const when = new Date(minute.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    bar.append(svg("title", {}, `${when}: ${minute.tokens} tokens`));
    chart.append(bar);
  });
  const baseline = TOP + plotHeight;
  chart.append(svg("line", { class: "axis", x1: LEFT, x2: WIDTH, y1: baseline, y2: baseline }));
  chart.append(svg("line", { class: "axis", x1: LEFT, x2: LEFT, y1: TOP, y2: baseline }));
  chart.append(svg("text", { x: LEFT - 4, y: TOP + 10, "text-anchor": "end" }, String(peak)));
  chart.append(svg("text", { x: LEFT - 4, y: baseline, "text-anchor": "end" }, "0"));
  chart.append(svg("text", { x: LEFT, y: HEIGHT - 6 }, `-${minutes.length} min`));
  chart.append(svg("text", { x: WIDTH, y: HEIGHT - 6, "text-anchor": "end" }, "now"));
  return chart;
}
