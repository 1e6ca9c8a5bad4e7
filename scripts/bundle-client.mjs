#!/usr/bin/env node
// Bundles the realtime client SDK (src/realtime/client/index.ts) for browsers with esbuild:
//   dist/browser/duplex-client.js       ES module  (import { RealtimeClient } from "/duplex-client.js")
//   dist/browser/duplex-client.iife.js  classic script, global `Duplex`
// `node scripts/bundle-client.mjs [outdir]` writes elsewhere (tests use a temporary folder).
import { resolve } from "node:path";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;

export async function bundleClient(outdir = resolve(root, "dist", "browser")) {
  const common = {
    entryPoints: [resolve(root, "src/realtime/client/index.ts")],
    bundle: true,
    minify: true,
    sourcemap: true,
    target: ["es2020"],
    platform: "browser",
    legalComments: "none",
    logLevel: "warning",
  };
  await build({ ...common, format: "esm", outfile: resolve(outdir, "duplex-client.js") });
  await build({
    ...common,
    format: "iife",
    globalName: "Duplex",
    outfile: resolve(outdir, "duplex-client.iife.js"),
  });
  return outdir;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = await bundleClient(
    process.argv[2] === undefined ? undefined : resolve(process.argv[2]),
  );
  console.log(`client bundle written to ${out}`);
}
