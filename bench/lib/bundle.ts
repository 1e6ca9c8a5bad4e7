import { type BuildOptions, build } from "esbuild";

/**
 * Bundle benchmark code with esbuild into plain ESM for `node` (dependencies stay external), so
 * that it runs without a loader in the process. esbuild is what tsx uses to strip types too, so
 * the benchmarked code is the same.
 */
export async function bundleForNode(options: BuildOptions): Promise<void> {
  await build({
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "warning",
    ...options,
  });
}
