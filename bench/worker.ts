/**
 * One contender of one case, in its own process.
 *
 * Started by run.ts over IPC (bundled to reports/.bench/worker.mjs). Run it by hand to profile a
 * single contender, with the malloc settings the runner gives its workers (WARM_MALLOC_ENV):
 *
 *   MALLOC_TRIM_THRESHOLD_=268435456 MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TOP_PAD_=67108864 \
 *   taskset -c 1 node --cpu-prof --cpu-prof-dir=reports/prof --import tsx bench/worker.ts \
 *     parse/unmasked/binary/1048576 duplex 3000
 *
 * Without an IPC channel it warms up for 2 s, runs for the given milliseconds (default 1000) and
 * prints messages/s and MB/s.
 */
import { allCases } from "./cases.js";
import { buildCase, serveWorker, timedLoop } from "./harness.js";

const [caseId, name, ms] = process.argv.slice(2);
const spec = allCases().find((s) => s.id === caseId);
if (spec === undefined || name === undefined) {
  console.error("usage: bench/worker.ts <case id> <contender name> [milliseconds]");
  console.error(
    `case ids:\n  ${allCases()
      .map((s) => s.id)
      .join("\n  ")}`,
  );
  process.exit(2);
}
const c = buildCase(spec);
const contender = c.contenders.find((k) => k.name === name);
if (contender === undefined) {
  console.error(`case ${c.id} has contenders: ${c.contenders.map((k) => k.name).join(", ")}`);
  process.exit(2);
}
const budget = Number(ms ?? "1000");

if (process.send !== undefined) {
  serveWorker(contender);
} else {
  const warm = await timedLoop(contender, 2000);
  const sample = await timedLoop(contender, budget);
  contender.verify?.(warm.units + sample.units);
  const msgPerSec = (sample.units * c.messagesPerUnit * 1e9) / sample.ns;
  const mbPerSec = (msgPerSec * (c.bytesPerUnit / c.messagesPerUnit)) / 1e6;
  console.log(`${c.id} ${name}: ${msgPerSec.toFixed(0)} msg/s, ${mbPerSec.toFixed(1)} MB/s`);
}
