/**
 * `npm run conformance`: every case for both roles (full profile), then
 * reports/conformance/report.json and index.html, and counts per group and role on stdout.
 *
 *   --quick              the npm test gate's reduced counts (docs/conformance.md, "Profiles")
 *   --autobahn-counts    12.x/13.x send 1000 messages whatever their size, as Autobahn (about an hour)
 *   --role server|client only one role
 *   --cases 6.4,7.9.2    only cases whose id is, or starts with, one of these
 *   --concurrency N      cases at a time (default 12)
 *   --out DIR            report folder (default reports/conformance)
 *   --write-docs         also regenerate docs/conformance.md
 *   --verbose            print every case as it finishes
 *
 * Exits 1 when a case FAILED.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { FULL, QUICK, type Role } from "./model.js";
import { formatCounts, renderDocs, writeHtml, writeJson } from "./report.js";
import { runSuite } from "./suite.js";

const ROOT = resolve(import.meta.dirname, "..", "..");

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    "autobahn-counts": { type: "boolean", default: false },
    role: { type: "string" },
    cases: { type: "string" },
    concurrency: { type: "string", default: "12" },
    out: { type: "string", default: join(ROOT, "reports", "conformance") },
    "write-docs": { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
  },
});

const roles: Role[] =
  values.role === undefined
    ? ["server", "client"]
    : values.role === "client"
      ? ["client"]
      : ["server"];
if (values.role !== undefined && values.role !== "server" && values.role !== "client") {
  console.error(`--role must be server or client, got ${values.role}`);
  process.exit(2);
}
const prefixes =
  values.cases
    ?.split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "") ?? [];
const concurrency = Number(values.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error("--concurrency must be a positive integer");
  process.exit(2);
}
const base = values.quick ? QUICK : FULL;
// Autobahn's own counts for 12.x/13.x: 1000 messages whatever their size (takes about an hour).
if (values["write-docs"] && (values.role !== undefined || prefixes.length > 0)) {
  console.error("--write-docs needs every case for both roles (no --role, no --cases)");
  process.exit(2);
}
const profile = values["autobahn-counts"]
  ? { ...base, deflateBytes: Number.POSITIVE_INFINITY }
  : base;

console.log(
  `conformance: profile ${profile.name}, roles ${roles.join(" + ")}, concurrency ${concurrency}`,
);
const run = await runSuite({
  profile,
  roles,
  concurrency,
  filter: (c) =>
    prefixes.length === 0 || prefixes.some((p) => c.id === p || c.id.startsWith(`${p}.`)),
  onResult: (r) => {
    if (values.verbose || r.verdict === "FAILED") {
      console.log(
        `  ${r.role.padEnd(6)} ${r.id.padEnd(9)} ${r.verdict.padEnd(13)} ${String(r.durationMs).padStart(6)} ms  ${r.verdict === "FAILED" ? `${r.result} ${r.resultClose}` : ""}`,
      );
    }
  },
});

const out = resolve(values.out);
writeJson(join(out, "report.json"), run);
writeHtml(join(out, "index.html"), run);
console.log("");
console.log(formatCounts(run));
const failed = run.results.filter((r) => r.verdict === "FAILED");
const nonStrict = run.results.filter((r) => r.verdict === "NON-STRICT");
for (const r of nonStrict)
  console.log(`NON-STRICT ${r.role} ${r.id}: ${r.nonStrictReason ?? "(no reason)"}`);
for (const r of failed) console.log(`FAILED ${r.role} ${r.id}: ${r.result} / ${r.resultClose}`);
console.log(
  `${run.results.length} case runs in ${(run.durationMs / 1000).toFixed(1)} s; reports in ${out}`,
);
if (values["write-docs"]) {
  const path = join(ROOT, "docs", "conformance.md");
  writeFileSync(path, renderDocs(run));
  console.log(`wrote ${path}`);
}
process.exitCode = failed.length > 0 ? 1 : 0;
