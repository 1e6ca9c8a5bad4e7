#!/usr/bin/env node
// Builds the browser apps that `duplex serve` serves (apps/<name>/: index.html, main.ts,
// style.css) with esbuild into dist/apps/: <name>.html, <name>.js, <name>.css (+ source maps).
// The pages load /assets/<name>.js and /assets/<name>.css. `node scripts/build-apps.mjs [outdir]`
// writes elsewhere (the end-to-end tests use a temporary folder).
import { copyFileSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;

export async function buildApps(outdir = resolve(root, "dist", "apps")) {
  mkdirSync(outdir, { recursive: true });
  const apps = readdirSync(join(root, "apps"), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, "apps", d.name, "main.ts")))
    .map((d) => d.name);
  for (const name of apps) {
    const dir = join(root, "apps", name);
    const entryPoints = [join(dir, "main.ts")];
    if (existsSync(join(dir, "style.css"))) entryPoints.push(join(dir, "style.css"));
    await build({
      entryPoints: entryPoints.map((p) => ({ in: p, out: name })),
      bundle: true,
      minify: true,
      sourcemap: true,
      format: "esm",
      target: ["es2020"],
      platform: "browser",
      outdir,
      legalComments: "none",
      logLevel: "warning",
    });
    copyFileSync(join(dir, "index.html"), join(outdir, `${name}.html`));
  }
  return { outdir, apps };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { outdir, apps } = await buildApps(
    process.argv[2] === undefined ? undefined : resolve(process.argv[2]),
  );
  console.log(`apps built to ${outdir}: ${apps.join(", ")}`);
}
