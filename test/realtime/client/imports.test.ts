/**
 * The universal entry runs in browsers: src/realtime/client/index.ts and every module it
 * imports (transitively) must have no `node:` import and no bare package import. node.ts is
 * the one file allowed to reach Node-only code.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { describe, it } from "node:test";

const ENTRY = resolve(import.meta.dirname, "../../../src/realtime/client/index.ts");

/** Module specifiers of static imports/re-exports and dynamic import(). */
function specifiers(source: string): string[] {
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"'\n]+)["']/g;
  return [...source.matchAll(re)].flatMap((m) => (m[1] === undefined ? [] : [m[1]]));
}

function closure(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop() as string;
    if (seen.has(file)) continue;
    const specs = specifiers(readFileSync(file, "utf8"));
    seen.set(file, specs);
    for (const spec of specs) {
      if (spec.startsWith(".")) todo.push(resolve(dirname(file), spec.replace(/\.js$/, ".ts")));
    }
  }
  return seen;
}

describe("realtime client: universal entry", () => {
  it("imports nothing from node: (nor any package), transitively", () => {
    const files = closure(ENTRY);
    const names = [...files.keys()].map((f) => f.slice(f.indexOf("src/")));
    for (const expected of [
      "src/realtime/client/index.ts",
      "src/realtime/client/client.ts",
      "src/realtime/client/emitter.ts",
      "src/realtime/client/backoff.ts",
      "src/realtime/wire.ts",
      "src/realtime/codes.ts",
    ]) {
      assert.ok(names.includes(expected), `${expected} is in the import closure`);
    }
    assert.ok(!names.includes("src/realtime/client/node.ts"));
    const problems: string[] = [];
    for (const [file, specs] of files) {
      for (const spec of specs) {
        if (!spec.startsWith(".")) problems.push(`${file} imports ${spec}`);
      }
      if (/\brequire\s*\(/.test(readFileSync(file, "utf8")))
        problems.push(`${file} uses require()`);
    }
    assert.deepEqual(problems, []);
  });

  it("node.ts is the entry that brings duplex's Node WebSocket", () => {
    const specs = specifiers(readFileSync(resolve(dirname(ENTRY), "node.ts"), "utf8"));
    assert.ok(specs.includes("../../client/index.js"));
  });
});
