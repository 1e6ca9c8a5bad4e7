/**
 * What `duplex bench` hands back: the results table for stdout, the JSON report (results plus the
 * machine they were measured on) and an SVG chart of it, hand-built: one bar per scenario for
 * the rates, then each scenario's latency percentiles. The SVG is plain XML (every element is
 * closed, text is escaped) with a <title>, so browsers, viewers and XML parsers all take it.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import { join, resolve } from "node:path";
import type { ScenarioName, ScenarioResult } from "./scenarios.js";

export interface MachineInfo {
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
  readonly arch: string;
  readonly release: string;
  readonly cpuModel: string;
  /** CPUs this process may use (os.availableParallelism). */
  readonly cores: number;
  readonly memoryBytes: number;
}

/** CPU used during a measurement, in % of one core. */
export interface CpuUse {
  /** This process: the load generator (its client, progress bar and bookkeeping). */
  readonly load: number;
  /** The built-in server process; null for --url or where /proc is missing. */
  readonly server: number | null;
}

export interface MeasuredScenario extends ScenarioResult {
  readonly cpuPercent: CpuUse | null;
}

export interface BenchReport {
  readonly tool: "duplex bench";
  readonly version: string;
  /** ISO 8601, when the run started. */
  readonly date: string;
  readonly target: {
    readonly url: string;
    /** built-in: servers started by the command; external: --url. */
    readonly server: "built-in" | "external";
    /** CPUs of the server(s) and of the load generator, when pinned. */
    readonly pinning: { readonly server: number; readonly load: number } | null;
  };
  readonly options: {
    readonly scenarios: readonly ScenarioName[];
    readonly connections: number;
    readonly durationS: number;
    readonly size: number;
  };
  readonly machine: MachineInfo;
  /** Stopped early by SIGINT: the results hold what was measured until then. */
  readonly interrupted: boolean;
  readonly results: readonly MeasuredScenario[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: os.platform(),
    arch: os.arch(),
    release: os.release(),
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
  };
}

/** The package version, read from the package.json two folders up (src/ or dist/). */
export function packageVersion(): string {
  try {
    const text = readFileSync(new URL("../../../package.json", import.meta.url), "utf8");
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}

const round = (n: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

/** The result with its numbers rounded for people: rates to 0.1, times to the microsecond. */
export function rounded<T extends ScenarioResult>(r: T): T {
  const l = r.latencyMs;
  return {
    ...r,
    durationS: round(r.durationS, 3),
    rate: round(r.rate, 1),
    latencyMs: {
      count: l.count,
      min: round(l.min, 3),
      mean: round(l.mean, 3),
      p50: round(l.p50, 3),
      p90: round(l.p90, 3),
      p99: round(l.p99, 3),
      max: round(l.max, 3),
    },
  };
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function formatRate(r: ScenarioResult): string {
  return `${integer.format(r.rate)} ${r.unit}`;
}

export function formatMs(ms: number): string {
  if (ms < 10) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return ms.toFixed(0);
}

const COLUMNS = [
  "scenario",
  "connections",
  "rate",
  "p50 ms",
  "p90 ms",
  "p99 ms",
  "max ms",
  "errors",
] as const;

/** The results as an aligned text table (text columns left, numbers right). */
export function formatTable(report: BenchReport): string {
  const rows = report.results.map((r) => {
    const l = r.latencyMs;
    const none = l.count === 0;
    const ms = (n: number): string => (none ? "-" : formatMs(n));
    return [
      r.interrupted ? `${r.scenario}*` : r.scenario,
      String(r.connections),
      formatRate(r),
      ms(l.p50),
      ms(l.p90),
      ms(l.p99),
      ms(l.max),
      String(r.errors),
    ];
  });
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((row) => row[i]!.length)));
  const leftAligned = new Set([0, 2]);
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (leftAligned.has(i) ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  const out = [line(COLUMNS), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
  const cut = report.results.find((r) => r.interrupted);
  if (cut !== undefined) {
    out.push(`* interrupted: measured for ${cut.durationS.toFixed(1)} s`);
  }
  if (report.results.length === 0) out.push("(interrupted before any measurement)");
  out.push(...cpuNotes(report));
  return out.join("\n");
}

/** Load limit: past this share of its core, the load generator is what bounds the rate. */
const SATURATED = 90;

function cpuText(c: CpuUse): string {
  return `load ${c.load} %${c.server === null ? "" : ` · server ${c.server} %`}`;
}

/** CPU per scenario while measuring, and a note where the load generator was the limit. */
export function cpuNotes(report: BenchReport): string[] {
  const measured = report.results.filter((r) => r.cpuPercent !== null);
  if (measured.length === 0) return [];
  const external = measured.every((r) => r.cpuPercent!.server === null);
  const pair = (c: CpuUse): string => (c.server === null ? `${c.load}` : `${c.load}/${c.server}`);
  const lines = [
    `CPU, % of one core (${external ? "load generator" : "load generator/server"}): ${measured.map((r) => `${r.scenario} ${pair(r.cpuPercent!)}`).join(", ")}`,
  ];
  const bound = measured.filter((r) => {
    const c = r.cpuPercent!;
    return c.load >= SATURATED && (c.server === null || c.server < SATURATED);
  });
  if (bound.length > 0) {
    lines.push(
      `Client-bound: ${bound.map((r) => r.scenario).join(", ")}: the load generator used its whole core${external ? ", so the server may take more" : ", the server had CPU to spare"}.`,
    );
  }
  return lines;
}

/** One line about where and how it was measured. */
export function describeSetup(report: BenchReport): string {
  const m = report.machine;
  const where =
    report.target.server === "external"
      ? `server: ${report.target.url}`
      : report.target.pinning === null
        ? "server: built-in Duplex (not pinned)"
        : `server: built-in Duplex on CPU ${report.target.pinning.server}, load generator on CPU ${report.target.pinning.load}`;
  return `Node ${m.node} · ${m.cpuModel} · ${m.cores} cores · ${where}`;
}

/** Write the JSON report and its chart into dir; returns their paths. */
export function writeReport(report: BenchReport, dir: string): { json: string; svg: string } {
  const absolute = resolve(dir);
  mkdirSync(absolute, { recursive: true });
  const stamp = report.date.replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "");
  const base = join(absolute, `duplex-bench-${stamp}`);
  const json = `${base}.json`;
  const svg = `${base}.svg`;
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(svg, renderSvg(report));
  return { json, svg };
}

// ---- SVG ------------------------------------------------------------------------------------

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

const LATENCY_LABEL: Readonly<Record<ScenarioName, string>> = {
  echo: "round trip",
  broadcast: "send to delivery",
  handshake: "connect (until open)",
};

const WIDTH = 760;
const LABEL_X = 24;
const BAR_X = 196;
const BAR_MAX = 380;
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const RATE_COLOUR = "#2563eb";
const RATE_CPU_STYLE = { "font-size": 10.5, fill: "#555" } as const;
const PERCENTILE_COLOURS = ["#93c5fd", "#60a5fa", "#2563eb", "#1e3a8a"] as const;

const px = (n: number): string => String(Math.round(n * 10) / 10);

function text(
  x: number,
  y: number,
  content: string,
  attrs: Record<string, string | number> = {},
): string {
  const extra = Object.entries(attrs)
    .map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`)
    .join("");
  return `<text x="${px(x)}" y="${px(y)}"${extra}>${escapeXml(content)}</text>`;
}

function bar(x: number, y: number, width: number, height: number, fill: string): string {
  return `<rect x="${px(x)}" y="${px(y)}" width="${px(Math.max(width, 1))}" height="${px(height)}" fill="${fill}" rx="2"/>`;
}

/** The chart: a title, the rates on one scale, then each scenario's latency percentiles. */
export function renderSvg(report: BenchReport): string {
  const parts: string[] = [];
  let y = 36;
  const title = `duplex bench — ${report.date.slice(0, 19).replace("T", " ")} UTC`;
  parts.push(text(LABEL_X, y, title, { "font-size": 20, "font-weight": "bold" }));
  y += 22;
  parts.push(text(LABEL_X, y, describeSetup(report), { "font-size": 12, fill: "#444" }));
  y += 18;
  const o = report.options;
  const settings = `${o.connections} connections · ${o.durationS} s per scenario · ${o.size} B messages${report.interrupted ? " · interrupted (partial results)" : ""}`;
  parts.push(text(LABEL_X, y, settings, { "font-size": 12, fill: "#444" }));
  y += 36;

  parts.push(
    text(LABEL_X, y, "Rate (each in its own unit)", { "font-size": 15, "font-weight": "bold" }),
  );
  y += 14;
  const maxRate = Math.max(1, ...report.results.map((r) => r.rate));
  if (report.results.length === 0) {
    y += 16;
    parts.push(text(LABEL_X, y, "no measurement", { "font-size": 13 }));
    y += 10;
  }
  const top = y;
  for (const r of report.results) {
    const label = r.interrupted ? `${r.scenario} (interrupted)` : r.scenario;
    const w = (r.rate / maxRate) * BAR_MAX;
    parts.push(text(LABEL_X, y + 17, label, { "font-size": 13 }));
    if (r.cpuPercent !== null) {
      // Under the name, in small print: CPU use while measuring.
      parts.push(text(LABEL_X, y + 31, `CPU ${cpuText(r.cpuPercent)}`, RATE_CPU_STYLE));
    }
    parts.push(bar(BAR_X, y + 6, w, 22, RATE_COLOUR));
    parts.push(text(BAR_X + w + 8, y + 22, formatRate(r), { "font-size": 13 }));
    y += 38;
  }
  parts.push(
    `<line x1="${BAR_X}" y1="${top}" x2="${BAR_X}" y2="${y + 2}" stroke="#333" stroke-width="1"/>`,
  );
  y += 28;

  for (const r of report.results) {
    const l = r.latencyMs;
    y += 8;
    parts.push(
      text(LABEL_X, y, `${r.scenario} latency, ${LATENCY_LABEL[r.scenario]} (ms)`, {
        "font-size": 15,
        "font-weight": "bold",
      }),
    );
    y += 8;
    if (l.count === 0) {
      y += 16;
      parts.push(text(LABEL_X, y, "no sample", { "font-size": 13 }));
      y += 26;
      continue;
    }
    const rows: [string, number][] = [
      ["p50", l.p50],
      ["p90", l.p90],
      ["p99", l.p99],
      ["max", l.max],
    ];
    const scale = l.max > 0 ? BAR_MAX / l.max : 0;
    parts.push(`<g font-size="13">`);
    rows.forEach(([name, value], i) => {
      parts.push(text(LABEL_X + 16, y + 15, name));
      parts.push(bar(BAR_X, y + 3, value * scale, 16, PERCENTILE_COLOURS[i] ?? RATE_COLOUR));
      parts.push(text(BAR_X + value * scale + 8, y + 16, `${formatMs(value)} ms`));
      y += 22;
    });
    parts.push("</g>");
    parts.push(
      text(
        LABEL_X + 16,
        y + 14,
        `${integer.format(l.count)} samples, mean ${formatMs(l.mean)} ms`,
        {
          "font-size": 11,
          fill: "#555",
        },
      ),
    );
    y += 40;
  }
  const height = y;
  const description = report.results
    .map(
      (r) =>
        `${r.scenario}: ${formatRate(r)}, p50 ${formatMs(r.latencyMs.p50)} ms, p99 ${formatMs(r.latencyMs.p99)} ms`,
    )
    .join("; ");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-labelledby="title desc" font-family="${escapeXml(FONT)}">`,
    `<title id="title">${escapeXml(title)}</title>`,
    `<desc id="desc">${escapeXml(description === "" ? "no measurement" : description)}</desc>`,
    `<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}
