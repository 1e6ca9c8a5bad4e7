/**
 * Summarise V8 .cpuprofile files by self time, the way the profiling evidence in
 * docs/benchmarks.md was produced:
 *
 *   node --import tsx bench/cpuprofile.ts reports/prof/<dir> [top N]
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const [dir, topArg] = process.argv.slice(2);
if (dir === undefined) {
  console.error("usage: bench/cpuprofile.ts <directory with .cpuprofile files> [top N]");
  process.exit(2);
}
const top = Number(topArg ?? "15");
for (const file of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
  const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as Profile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id)?.callFrame;
    const dt = profile.timeDeltas[i] ?? 0;
    const where =
      frame === undefined ? "?" : `${frame.url.split("/").pop()}:${frame.lineNumber + 1}`;
    const key = `${frame?.functionName || "(anonymous)"} ${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`);
  for (const [key, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((t / total) * 100).toFixed(1).padStart(6)} %  ${key}`);
  }
}
