#!/usr/bin/env node
// Runs every test file under test/ (optionally only those under the folders, or the files, given
// as arguments) with Node's built-in test runner and the tsx TypeScript loader. Exits non-zero on
// any failure and when no test file is found, so CI can never pass on an empty run.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const roots = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["test"];

function collect(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== "fixtures") collect(path, out);
    } else if (name.endsWith(".test.ts")) {
      out.push(relative(root, path));
    }
  }
  return out;
}

const files = roots.flatMap((r) =>
  statSync(join(root, r)).isDirectory()
    ? collect(join(root, r), [])
    : [relative(root, join(root, r))],
);
if (files.length === 0) {
  console.error(`run-tests: no *.test.ts file under ${roots.join(", ")}`);
  process.exit(1);
}
const args = ["--import", "tsx", "--test", "--test-reporter=spec", ...files];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" });
process.exit(result.status ?? 1);
