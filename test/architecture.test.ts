/**
 * The layer rule of docs/architecture.md, enforced: each folder under src/ imports only from
 * itself and from layers below it; src/protocol imports nothing from node: and no package;
 * protocol, node, server and client use no runtime dependency (only node: built-ins).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { describe, it } from "node:test";

const SRC = resolve(import.meta.dirname, "..", "src");

/** Layer rank: a file may import from a strictly lower rank, or from its own folder. */
export const LAYERS: Readonly<Record<string, number>> = {
  protocol: 0,
  node: 1,
  server: 2,
  client: 2,
  realtime: 3,
  broker: 4,
  cli: 5,
};

/** Layers that must ship with zero runtime dependencies (like ws). */
const ZERO_DEPENDENCY = new Set(["protocol", "node", "server", "client"]);

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** Every module specifier in a file: static imports/exports and dynamic import(). */
export function specifiers(source: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"'\n]+)["']/g;
  for (const m of source.matchAll(re)) if (m[1] !== undefined) out.push(m[1]);
  return out;
}

export function violations(layer: string, file: string, spec: string): string | undefined {
  const rank = LAYERS[layer];
  if (rank === undefined) return `${file}: folder src/${layer} is not a known layer`;
  if (spec.startsWith("node:")) {
    return layer === "protocol" ? `${file}: src/protocol must not import ${spec}` : undefined;
  }
  if (!spec.startsWith(".")) {
    if (layer === "protocol" || ZERO_DEPENDENCY.has(layer)) {
      return `${file}: src/${layer} must have no runtime dependency, imports ${spec}`;
    }
    return undefined;
  }
  const target = relative(SRC, resolve(SRC, layer, relative(join(SRC, layer), file), "..", spec));
  const targetLayer = target.split(sep)[0] ?? "";
  if (target.startsWith("..")) return `${file}: imports ${spec} from outside src/`;
  if (targetLayer === layer) return undefined;
  const targetRank = LAYERS[targetLayer];
  if (targetRank === undefined || targetRank >= rank) {
    return `${file}: src/${layer} (layer ${rank}) must not import src/${targetLayer} (${spec})`;
  }
  return undefined;
}

describe("architecture: layer rule (docs/architecture.md)", () => {
  it("every folder under src/ is a known layer", () => {
    for (const name of readdirSync(SRC)) {
      assert.ok(name in LAYERS, `src/${name} is not listed in LAYERS`);
    }
  });

  it("every import in src/ points to the same or a lower layer", () => {
    const problems: string[] = [];
    let checked = 0;
    for (const file of tsFiles(SRC)) {
      const layer = relative(SRC, file).split(sep)[0] ?? "";
      for (const spec of specifiers(readFileSync(file, "utf8"))) {
        checked++;
        const v = violations(layer, file, spec);
        if (v !== undefined) problems.push(v);
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(checked > 0, "no import was checked");
  });

  it("the checker catches violations (so this test can fail)", () => {
    const f = join(SRC, "protocol", "x.ts");
    assert.match(violations("protocol", f, "node:zlib") ?? "", /must not import node:zlib/);
    assert.match(violations("protocol", f, "ws") ?? "", /no runtime dependency/);
    assert.match(
      violations("protocol", f, "../server/index.js") ?? "",
      /must not import src\/server/,
    );
    const s = join(SRC, "server", "x.ts");
    assert.match(
      violations("server", s, "../client/index.js") ?? "",
      /must not import src\/client/,
    );
    assert.match(violations("server", s, "../realtime/hub.js") ?? "", /must not import/);
    assert.equal(violations("server", s, "../protocol/index.js"), undefined);
    assert.equal(violations("server", s, "node:net"), undefined);
    assert.equal(violations("broker", join(SRC, "broker", "x.ts"), "ioredis"), undefined);
    assert.deepEqual(
      specifiers('import a from "./a.js";\nexport * from "../b.js";\nawait import("c")'),
      ["./a.js", "../b.js", "c"],
    );
  });
});
