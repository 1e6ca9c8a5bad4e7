/**
 * The interop matrix (not a test file). Each interop test runs through `interopCase`, which
 * times it and records its outcome under peer × direction × compression in reports/interop.json
 * (git-ignored); `printMatrix` prints one peer's rows as a small table when its file ends.
 *
 * Test files may run in parallel processes, so every update of the JSON file is a
 * read-modify-write under a lock directory. The first record a process makes for a peer drops
 * that peer's rows from earlier runs, so the file always shows the latest run of each peer.
 *
 * `node --import tsx test/interop/matrix.ts` prints the whole matrix as a Markdown table (for
 * docs/conformance.md).
 */
import { mkdirSync, readFileSync, renameSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { it } from "node:test";
import { fileURLToPath } from "node:url";

export type Compression = "on" | "off";

/** One cell of the matrix: who the peer is, who plays which role, and permessage-deflate. */
export interface Cell {
  /** e.g. "python-websockets", "ws", "undici", "chromium". */
  readonly peer: string;
  /** The peer's version as it reports it. */
  readonly peerVersion: string;
  /** e.g. "peer client → duplex server". */
  readonly direction: string;
  readonly compression: Compression;
}

export interface CaseResult {
  readonly name: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly error?: string;
}

export interface Row {
  readonly peer: string;
  readonly peerVersion: string;
  readonly direction: string;
  readonly compression: Compression;
  readonly cases: CaseResult[];
  /** Facts worth showing beside the result, e.g. the negotiated Sec-WebSocket-Extensions. */
  readonly notes?: Record<string, string>;
  readonly updatedAt: string;
}

interface Report {
  readonly description: string;
  readonly rows: Row[];
}

const root = fileURLToPath(new URL("../../", import.meta.url));
export const REPORT_PATH = `${root}reports/interop.json`;
const LOCK_PATH = `${REPORT_PATH}.lock`;
const DESCRIPTION =
  "Interop matrix written by test/interop/*.test.ts: one row per peer × direction × compression.";

const resetPeers = new Set<string>();

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function withLock<T>(fn: () => T): T {
  mkdirSync(`${root}reports`, { recursive: true });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      mkdirSync(LOCK_PATH);
      break;
    } catch {
      // Someone holds it; a lock older than 10 s was left by a killed process.
      try {
        if (Date.now() - statSync(LOCK_PATH).mtimeMs > 10_000) rmdirSync(LOCK_PATH);
      } catch {}
      if (Date.now() > deadline) throw new Error(`could not lock ${LOCK_PATH}`);
      sleep(5);
    }
  }
  try {
    return fn();
  } finally {
    rmdirSync(LOCK_PATH);
  }
}

export function readReport(): Report {
  try {
    const parsed = JSON.parse(readFileSync(REPORT_PATH, "utf8")) as Partial<Report>;
    return { description: DESCRIPTION, rows: Array.isArray(parsed.rows) ? parsed.rows : [] };
  } catch {
    return { description: DESCRIPTION, rows: [] };
  }
}

function sameCell(row: Row, cell: Cell): boolean {
  return (
    row.peer === cell.peer &&
    row.direction === cell.direction &&
    row.compression === cell.compression
  );
}

/** Update the cell's row under the lock (the row is created when missing). */
function updateRow(cell: Cell, change: (row: Row) => Row): void {
  withLock(() => {
    let rows = readReport().rows;
    if (!resetPeers.has(cell.peer)) {
      resetPeers.add(cell.peer);
      rows = rows.filter((r) => r.peer !== cell.peer);
    }
    const old: Row = rows.find((r) => sameCell(r, cell)) ?? {
      peer: cell.peer,
      peerVersion: cell.peerVersion,
      direction: cell.direction,
      compression: cell.compression,
      cases: [],
      updatedAt: "",
    };
    const row = change({
      ...old,
      peerVersion: cell.peerVersion,
      updatedAt: new Date().toISOString(),
    });
    rows = [...rows.filter((r) => !sameCell(r, cell)), row];
    rows.sort(
      (a, b) =>
        a.peer.localeCompare(b.peer) ||
        a.direction.localeCompare(b.direction) ||
        b.compression.localeCompare(a.compression),
    );
    const tmp = `${REPORT_PATH}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ description: DESCRIPTION, rows }, null, 2)}\n`);
    renameSync(tmp, REPORT_PATH);
  });
}

/** Record one case's outcome in the cell's row (replacing an earlier result of that case). */
export function record(cell: Cell, result: CaseResult): void {
  updateRow(cell, (row) => ({
    ...row,
    cases: [...row.cases.filter((c) => c.name !== result.name), result],
  }));
}

/** Attach a fact to the cell's row (e.g. "extensions" → the negotiated header). */
export function note(cell: Cell, key: string, value: string): void {
  updateRow(cell, (row) => ({ ...row, notes: { ...row.notes, [key]: value } }));
}

/** Note the client's Sec-WebSocket-Extensions offer and the server's answer ("" = none). */
export function noteExtensions(
  cell: Cell,
  offer: string | null | undefined,
  agreed: string | null | undefined,
): void {
  note(cell, "offer", offer || "(none)");
  note(cell, "agreed", agreed || "(none)");
}

/** Run `fn` as one case of `cell`, record pass/fail and its time, and rethrow a failure. */
export async function runCase<T>(cell: Cell, name: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    const value = await fn();
    record(cell, { name, ok: true, ms: Math.round(performance.now() - start) });
    return value;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    record(cell, {
      name,
      ok: false,
      ms: Math.round(performance.now() - start),
      error: message.slice(0, 500),
    });
    throw error;
  }
}

/** A node:test case that is also a matrix case. */
export function interopCase(
  cell: Cell,
  name: string,
  fn: () => Promise<void>,
  options: { timeout?: number } = {},
): void {
  it(
    `${cell.direction} [deflate ${cell.compression}] ${name}`,
    { timeout: options.timeout ?? 30_000 },
    () => runCase(cell, name, fn),
  );
}

function summary(row: Row): { result: string; passed: number; ms: number } {
  const passed = row.cases.filter((c) => c.ok).length;
  const ms = row.cases.reduce((sum, c) => sum + c.ms, 0);
  return { result: passed === row.cases.length ? "pass" : "FAIL", passed, ms };
}

/** A plain-text table of the rows (of one peer, or all). */
export function formatMatrix(peer?: string): string {
  const rows = readReport().rows.filter((r) => peer === undefined || r.peer === peer);
  const header = ["peer", "direction", "deflate", "result", "cases", "time"];
  const lines = rows.map((r) => {
    const s = summary(r);
    const failed = r.cases.filter((c) => !c.ok).map((c) => c.name);
    return [
      `${r.peer} ${r.peerVersion}`,
      r.direction,
      r.compression,
      s.result,
      `${s.passed}/${r.cases.length}${failed.length > 0 ? ` (failed: ${failed.join(", ")})` : ""}`,
      `${(s.ms / 1000).toFixed(2)} s`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const fmt = (cols: string[]): string => cols.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ");
  return [fmt(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...lines.map(fmt)].join("\n");
}

/** Print one peer's rows at the end of its test file. */
export function printMatrix(peer: string): void {
  process.stdout.write(`\ninterop matrix (${REPORT_PATH}):\n${formatMatrix(peer)}\n\n`);
}

/** The whole matrix as a Markdown table, cases listed per row. */
export function markdownMatrix(): string {
  const out = [
    "| peer | direction | permessage-deflate | result | cases | notes |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of readReport().rows) {
    const s = summary(r);
    const cases = r.cases.map((c) => `${c.ok ? "✓" : "✗"} ${c.name}`).join("<br>");
    const notes = Object.entries(r.notes ?? {})
      .map(([k, v]) => `${k}: \`${v}\``)
      .join("<br>");
    out.push(
      `| ${r.peer} ${r.peerVersion} | ${r.direction} | ${r.compression} | ${s.result} (${s.passed}/${r.cases.length}) | ${cases} | ${notes} |`,
    );
  }
  return out.join("\n");
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`${markdownMatrix()}\n`);
}
