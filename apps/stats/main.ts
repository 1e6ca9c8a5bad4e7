/**
 * The stats page: the server's numbers, live, and a chart of publications/s and connections
 * over the last 2 minutes.
 *
 * The server publishes a snapshot on `stats:server` every statsIntervalMs (history: the last
 * 120). On (re)subscribe without recovery the page reads that history (newest first) to fill
 * the chart, then adds live publications; samples are keyed by offset, so one that arrives both
 * ways counts once. The chart is inline SVG built with DOM APIs and redrawn at most once per
 * animation frame.
 */
import { RealtimeClient, type Subscription } from "../../src/realtime/client/index.js";
import { subscriptionBadge } from "../shared/connection.js";
import { byId, realtimeUrl, svg } from "../shared/dom.js";
import { storedNickname } from "../shared/nickname.js";

const CHANNEL = "stats:server";
/** Width of the chart's time window. */
const WINDOW_MS = 120_000;
/** Samples kept at most (2 minutes at 10 per second). */
const MAX_SAMPLES = 1200;
const HISTORY_LIMIT = 120;
const MIB = 1024 * 1024;

/** What the server publishes (see `duplex serve`). */
interface Snapshot {
  readonly time: number;
  readonly uptimeSeconds: number;
  readonly connections: number;
  readonly channels: number;
  readonly publications: number;
  readonly publicationsPerSecond: number;
  readonly deliveriesPerSecond: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

const FIELDS = [
  "time",
  "uptimeSeconds",
  "connections",
  "channels",
  "publications",
  "publicationsPerSecond",
  "deliveriesPerSecond",
  "rssBytes",
  "heapUsedBytes",
] as const;

/** A snapshot when every field is a finite number; anything else is ignored. */
function snapshotOf(data: unknown): Snapshot | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const record = data as Record<string, unknown>;
  for (const field of FIELDS) {
    const v = record[field];
    if (typeof v !== "number" || !Number.isFinite(v)) return undefined;
  }
  return data as Snapshot;
}

// ---- formatting ------------------------------------------------------------------------------

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat(undefined, {
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});

function duration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const days = Math.floor(s / 86_400);
  const hours = Math.floor((s % 86_400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = s % 60;
  const two = (n: number): string => String(n).padStart(2, "0");
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return `${hours} h ${two(minutes)} min`;
  if (minutes > 0) return `${minutes} min ${two(seconds)} s`;
  return `${seconds} s`;
}

/** 1, 2 or 5 times a power of ten, at least `v` (and at least 1). */
function niceCeiling(v: number): number {
  if (!(v > 1)) return 1;
  const power = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * power >= v) return m * power;
  return 10 * power;
}

// ---- the numbers -----------------------------------------------------------------------------

const statusEl = byId("status");
const updatedEl = byId("updated");

function setNumber(id: string, value: number, text: string): void {
  const el = byId(id);
  el.dataset.value = String(value);
  el.textContent = text;
}

function renderNumbers(s: Snapshot): void {
  setNumber("connections", s.connections, integer.format(s.connections));
  setNumber("channels", s.channels, integer.format(s.channels));
  setNumber("publications", s.publicationsPerSecond, oneDecimal.format(s.publicationsPerSecond));
  setNumber("deliveries", s.deliveriesPerSecond, oneDecimal.format(s.deliveriesPerSecond));
  setNumber("rss", s.rssBytes, `${oneDecimal.format(s.rssBytes / MIB)} MiB`);
  setNumber("heap", s.heapUsedBytes, `${oneDecimal.format(s.heapUsedBytes / MIB)} MiB`);
  setNumber("uptime", s.uptimeSeconds, duration(s.uptimeSeconds));
  const at = new Date(s.time);
  updatedEl.setAttribute("datetime", at.toISOString());
  updatedEl.textContent = at.toLocaleTimeString();
}

// ---- the chart -------------------------------------------------------------------------------

const W = 640;
const H = 240;
const PAD = { top: 14, right: 46, bottom: 26, left: 46 } as const;
const PLOT_W = W - PAD.left - PAD.right;
const PLOT_H = H - PAD.top - PAD.bottom;

interface Chart {
  readonly root: SVGSVGElement;
  readonly desc: SVGDescElement;
  readonly publications: SVGPathElement;
  readonly connections: SVGPathElement;
  readonly publicationsMax: SVGTextElement;
  readonly connectionsMax: SVGTextElement;
}

function createChart(container: HTMLElement): Chart {
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart-svg",
    role: "img",
    "aria-labelledby": "chart-title",
    "aria-describedby": "chart-desc",
    "data-testid": "chart",
    "data-samples": 0,
  });
  root.setAttribute(
    "aria-label",
    "Chart of publications per second and connections over the last 2 minutes",
  );
  const title = svg(
    "title",
    { id: "chart-title" },
    "Publications per second and connections over the last 2 minutes",
  );
  const desc = svg("desc", { id: "chart-desc" }, "No data yet.");
  const grid = svg("g", { class: "grid", "aria-hidden": "true" });
  for (const f of [0, 0.5, 1]) {
    const y = PAD.top + PLOT_H * f;
    grid.append(svg("line", { x1: PAD.left, x2: PAD.left + PLOT_W, y1: y, y2: y }));
  }
  for (let s = 0; s <= WINDOW_MS / 1000; s += 30) {
    const x = PAD.left + PLOT_W * (s / (WINDOW_MS / 1000));
    grid.append(svg("line", { x1: x, x2: x, y1: PAD.top, y2: PAD.top + PLOT_H }));
  }
  const labels = svg("g", { class: "labels", "aria-hidden": "true" });
  const bottom = PAD.top + PLOT_H;
  labels.append(
    svg("text", { x: PAD.left, y: bottom + 18, "text-anchor": "start" }, "−2 min"),
    svg("text", { x: PAD.left + PLOT_W / 2, y: bottom + 18, "text-anchor": "middle" }, "−1 min"),
    svg("text", { x: PAD.left + PLOT_W, y: bottom + 18, "text-anchor": "end" }, "now"),
    svg("text", { x: PAD.left - 6, y: bottom, "text-anchor": "end", class: "publications" }, "0"),
    svg(
      "text",
      { x: PAD.left + PLOT_W + 6, y: bottom, "text-anchor": "start", class: "connections" },
      "0",
    ),
  );
  const publicationsMax = svg(
    "text",
    { x: PAD.left - 6, y: PAD.top + 8, "text-anchor": "end", class: "publications" },
    "1",
  );
  const connectionsMax = svg(
    "text",
    { x: PAD.left + PLOT_W + 6, y: PAD.top + 8, "text-anchor": "start", class: "connections" },
    "1",
  );
  labels.append(publicationsMax, connectionsMax);
  const publications = svg("path", {
    class: "line publications",
    "data-testid": "chart-publications",
    d: "",
  });
  const connections = svg("path", {
    class: "line connections",
    "data-testid": "chart-connections",
    d: "",
  });
  root.append(title, desc, grid, labels, connections, publications);
  container.replaceChildren(root);
  return { root, desc, publications, connections, publicationsMax, connectionsMax };
}

/**
 * Path data for one series: time on x (the newest sample at the right edge), value on y
 * (0..max). The line breaks where samples are missing (a gap of 4 typical intervals).
 */
function pathData(
  points: readonly Snapshot[],
  value: (s: Snapshot) => number,
  max: number,
  end: number,
  gap: number,
): string {
  let d = "";
  let previous: number | undefined;
  for (const p of points) {
    const x = PAD.left + PLOT_W * (1 - (end - p.time) / WINDOW_MS);
    const y = PAD.top + PLOT_H * (1 - Math.min(1, Math.max(0, value(p) / max)));
    const move = previous === undefined || p.time - previous > gap;
    d += `${d === "" ? "" : " "}${move ? "M" : "L"}${x.toFixed(1)} ${y.toFixed(1)}`;
    previous = p.time;
  }
  return d;
}

/** Typical time between samples (the median), for telling a gap from a slow tick. */
function typicalInterval(points: readonly Snapshot[]): number {
  const deltas: number[] = [];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    if (a !== undefined && b !== undefined) deltas.push(b.time - a.time);
  }
  deltas.sort((a, b) => a - b);
  return deltas[Math.floor(deltas.length / 2)] ?? 1000;
}

function renderChart(chart: Chart, points: readonly Snapshot[]): void {
  const last = points.at(-1);
  if (last === undefined) {
    chart.publications.setAttribute("d", "");
    chart.connections.setAttribute("d", "");
    chart.root.dataset.samples = "0";
    chart.desc.textContent = "No data yet.";
    return;
  }
  const end = last.time;
  const shown = points.filter((p) => end - p.time <= WINDOW_MS);
  const pubMax = niceCeiling(Math.max(...shown.map((p) => p.publicationsPerSecond)));
  const connMax = niceCeiling(Math.max(...shown.map((p) => p.connections)));
  const gap = Math.max(4 * typicalInterval(shown), 1);
  chart.publications.setAttribute(
    "d",
    pathData(shown, (p) => p.publicationsPerSecond, pubMax, end, gap),
  );
  chart.connections.setAttribute(
    "d",
    pathData(shown, (p) => p.connections, connMax, end, gap),
  );
  chart.publicationsMax.textContent = integer.format(pubMax);
  chart.connectionsMax.textContent = integer.format(connMax);
  chart.root.dataset.samples = String(shown.length);
  chart.root.dataset.first = String(shown[0]?.time ?? end);
  chart.desc.textContent =
    `${shown.length} samples. Now ${oneDecimal.format(last.publicationsPerSecond)} ` +
    `publications per second (scale up to ${pubMax}) and ${last.connections} connections ` +
    `(scale up to ${connMax}).`;
}

// ---- the subscription ------------------------------------------------------------------------

const chart = createChart(byId("chart"));
/** Samples by offset in the current stream. */
const samples = new Map<number, Snapshot>();
let frame = 0;
let historyRequest = 0;

function sorted(): Snapshot[] {
  const list = [...samples.entries()].sort((a, b) => a[0] - b[0]);
  if (list.length > MAX_SAMPLES) {
    for (const [offset] of list.slice(0, list.length - MAX_SAMPLES)) samples.delete(offset);
  }
  return list.slice(-MAX_SAMPLES).map(([, s]) => s);
}

function render(): void {
  frame = 0;
  const points = sorted();
  const last = points.at(-1);
  if (last !== undefined) renderNumbers(last);
  renderChart(chart, points);
}

function scheduleRender(): void {
  if (frame === 0) frame = requestAnimationFrame(render);
}

function add(offset: number, data: unknown): void {
  const snapshot = snapshotOf(data);
  if (snapshot === undefined) return;
  samples.set(offset, snapshot);
  if (samples.size > MAX_SAMPLES * 1.25) sorted(); // trims, even while the tab is hidden
  scheduleRender();
}

// Anonymous connections need a name: the shared nickname when there is one.
const client = new RealtimeClient(realtimeUrl(), { data: { name: storedNickname() ?? "stats" } });
const sub: Subscription<Snapshot> = client.channel<Snapshot>(CHANNEL);

async function loadHistory(): Promise<void> {
  const request = ++historyRequest;
  try {
    const page = await sub.history({ limit: HISTORY_LIMIT, reverse: true });
    if (request !== historyRequest) return;
    for (const p of page.publications) add(p.offset, p.data);
  } catch (error) {
    console.warn("stats: history failed", error);
  }
}

const renderStatus = subscriptionBadge(statusEl, client, sub);

sub.on("subscribed", (e) => {
  // recovered: false — a new stream (the server restarted): its offsets start again.
  if (e.recovered === false) samples.clear();
  if (!e.resubscribed || e.recovered === false) void loadHistory();
  renderStatus();
});
sub.on("publication", (p) => add(p.offset, p.data));
sub.on("state", renderStatus);
sub.on("error", (error) => console.warn("stats:", error.message));
client.on("state", renderStatus);
client.on("error", (error) => console.warn("stats:", error.message));

renderStatus();
sub.subscribe();
client.connect();
