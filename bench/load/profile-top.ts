/**
 * Read a V8 .cpuprofile (node --cpu-prof) and list the functions with the most self time, and
 * their inclusive (total) time. Lines in an esbuild bundle are mapped back to the module they
 * came from through the `// path/to/module.ts` comments esbuild writes before each module.
 *
 *   node --import tsx bench/load/profile-top.ts <file.cpuprofile> [bundle.mjs] [--top N] [--ops N]
 *
 * --ops: how many operations (messages, handshakes) the profiled interval did: adds ns per op.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { takeNumber } from "../lib/args.js";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface TopEntry {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly selfShare: number;
  readonly totalMs: number;
  readonly totalShare: number;
}

function moduleMap(bundle: string | undefined): (line: number) => string | null {
  if (bundle === undefined) return () => null;
  let text: string;
  try {
    text = readFileSync(bundle, "utf8");
  } catch {
    return () => null;
  }
  const marks: { line: number; file: string }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^\/\/ (\S+\.(?:ts|js|mjs|cjs))$/.exec(lines[i]!);
    if (m === null) continue;
    // Paths are relative to the working directory; keep them from src/ or bench/ on.
    const path = m[1]!;
    const k = Math.max(path.lastIndexOf("src/"), path.lastIndexOf("bench/"));
    marks.push({ line: i, file: k > 0 && path[k - 1] === "/" ? path.slice(k) : path });
  }
  return (line) => {
    let found: string | null = null;
    for (const mark of marks) {
      if (mark.line > line) break;
      found = mark.file;
    }
    return found;
  };
}

export function summarizeProfile(file: string, bundle?: string): TopEntry[] {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const moduleOf = moduleMap(bundle);
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const keyOf = new Map<number, string>();
  const info = new Map<string, { name: string; where: string }>();
  for (const n of profile.nodes) {
    const f = n.callFrame;
    const name = f.functionName === "" ? "(anonymous)" : f.functionName;
    let where = f.url.replace(/^file:\/\//, "");
    const isBundle = bundle !== undefined && where.endsWith(bundle.split("/").pop() ?? "\0");
    if (isBundle) where = `${moduleOf(f.lineNumber) ?? "bundle"}`;
    else if (where.includes("/node_modules/")) where = where.slice(where.indexOf("node_modules/"));
    const key = `${name}\u0000${where}\u0000${f.lineNumber}`;
    keyOf.set(n.id, key);
    // Bundle line numbers mean nothing in the sources: the module and the name say where.
    const line = isBundle || where === "" ? "" : `:${f.lineNumber + 1}`;
    info.set(key, { name, where: `${where}${line}` });
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    all += dt;
    const key = keyOf.get(id)!;
    self.set(key, (self.get(key) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const k = keyOf.get(at)!;
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + dt);
    }
  }
  const out: TopEntry[] = [];
  for (const [key, ms] of self) {
    const i = info.get(key)!;
    const t = total.get(key) ?? ms;
    out.push({
      name: i.name,
      where: i.where,
      selfMs: ms,
      selfShare: all > 0 ? ms / all : 0,
      totalMs: t,
      totalShare: all > 0 ? t / all : 0,
    });
  }
  return out.sort((a, b) => b.selfMs - a.selfMs);
}

/**
 * A text table of the first `n` entries. With `operations` (messages, deliveries, handshakes done
 * while profiling) it adds the self time per operation, which compares across servers.
 */
export function formatTop(entries: readonly TopEntry[], n: number, operations?: number): string {
  const perOp = operations !== undefined && operations > 0;
  const lines = [`   self%  total%${perOp ? "  self ns/op" : ""}  function  (where)`];
  for (const e of entries.slice(0, n)) {
    const ns = perOp ? `  ${((e.selfMs * 1e6) / operations).toFixed(0).padStart(10)}` : "";
    lines.push(
      `  ${(e.selfShare * 100).toFixed(1).padStart(5)}%  ${(e.totalShare * 100).toFixed(1).padStart(5)}%${ns}  ${e.name}${e.where === "" ? "" : `  (${e.where})`}`,
    );
  }
  return lines.join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const top = takeNumber(args, "--top") ?? 30;
  const operations = takeNumber(args, "--ops");
  const [file, bundle] = args;
  if (file === undefined) {
    console.error("usage: profile-top.ts <file.cpuprofile> [bundle.mjs] [--top N] [--ops N]");
    process.exit(2);
  }
  console.log(formatTop(summarizeProfile(file, bundle), top, operations));
}
