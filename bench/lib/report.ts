/** What the benchmark reports share: formatting, Markdown tables, the machine, the JSON file. */
import { mkdirSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import { dirname } from "node:path";

/** A share as a whole percentage, "—" for none. */
export function pct(v: number | null | undefined): string {
  return v == null ? "—" : `${Math.round(v * 100)}%`;
}

/** a / b, null when either is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a == null || b == null || b === 0 ? null : a / b;
}

/** A Markdown table: `| a | b |` lines under a `| --- | --- |` rule. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), `|${header.map(() => " --- ").join("|")}|`, ...rows.map(line)].join("\n");
}

/** The 1, 5 and 15 minute load averages, 2 decimals. */
export function loadAverage(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

/** Total memory of the machine in GiB, 1 decimal. */
export function memoryGiB(): number {
  return Math.round((os.totalmem() / 2 ** 30) * 10) / 10;
}

/** When and on what a report was taken (the first fields of its `meta`). */
export function machine(cpu = os.cpus()[0]?.model ?? "unknown"): {
  date: string;
  node: string;
  v8: string;
  platform: string;
  cpu: string;
  logicalCpus: number;
} {
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu,
    logicalCpus: os.cpus().length,
  };
}

/** The lines under a server benchmark's title: the machine, the pinning, ws, the load. */
export function machineSummary(meta: {
  readonly node: string;
  readonly platform: string;
  readonly cpu: string;
  readonly logicalCpus: number;
  readonly pinning: string;
  readonly ws: string;
  readonly loadAverageAtStart: readonly number[];
}): string {
  return [
    `  node ${meta.node}, ${meta.platform}, ${meta.cpu} x ${meta.logicalCpus}`,
    `  ${meta.pinning}; ws ${meta.ws}; load average ${meta.loadAverageAtStart.join(" ")}`,
  ].join("\n");
}

/** Write `value` as indented JSON (with a final newline), creating the directory. */
export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
