/**
 * Compare two V8 heap snapshots (e.g. before and after opening N idle connections; see the
 * `heap <path>` command of the load-test servers) and list what grew, by constructor / type:
 * count and self size, divided by N when given.
 *
 *   node --import tsx bench/load/heap-top.ts before.heapsnapshot after.heapsnapshot [N] [--top K]
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { takeNumber } from "../lib/args.js";

interface Snapshot {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: string[];
      readonly node_types: [string[], ...unknown[]];
    };
  };
  readonly nodes: number[];
  readonly strings: string[];
}

export type Census = Map<string, { count: number; bytes: number }>;

export function census(file: string): Census {
  const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf("type");
  const iName = fields.indexOf("name");
  const iSize = fields.indexOf("self_size");
  const out: Census = new Map();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!] ?? "?";
    const name = snap.strings[snap.nodes[i + iName]!] ?? "?";
    // Objects by constructor; everything else (strings, closures, arrays, code...) by type,
    // closures with their function name.
    const key =
      type === "object" || type === "native"
        ? `${name} (${type})`
        : type === "closure"
          ? `closure ${name || "(anonymous)"}`
          : `(${type})`;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += snap.nodes[i + iSize]!;
    out.set(key, e);
  }
  return out;
}

export function diff(before: Census, after: Census, per: number, top: number): string {
  const rows: { key: string; count: number; bytes: number }[] = [];
  for (const [key, a] of after) {
    const b = before.get(key) ?? { count: 0, bytes: 0 };
    rows.push({ key, count: a.count - b.count, bytes: a.bytes - b.bytes });
  }
  rows.sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  const lines = [
    `total growth ${(total / 1024).toFixed(0)} KiB${per > 1 ? `, ${(total / per).toFixed(0)} B per connection` : ""}`,
    "  bytes/conn  objs/conn  what",
  ];
  for (const r of rows.slice(0, top)) {
    lines.push(
      `  ${(r.bytes / per).toFixed(1).padStart(10)}  ${(r.count / per).toFixed(2).padStart(9)}  ${r.key}`,
    );
  }
  return lines.join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const top = takeNumber(args, "--top") ?? 40;
  const [a, b, n] = args;
  if (a === undefined || b === undefined) {
    console.error("usage: heap-top.ts before.heapsnapshot after.heapsnapshot [N] [--top K]");
    process.exit(2);
  }
  console.log(diff(census(a), census(b), Number(n ?? 1), top));
}
