/**
 * Reports of a conformance run: counts per group and role, reports/conformance/report.json and
 * index.html (per case: verdict, duration, observed behaviour), and docs/conformance.md.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { markdownMatrix, readReport } from "../interop/matrix.js";
import { DEFLATE_PARAMETER_SETS, GROUP_TITLES } from "./cases.js";
import { type CaseResult, compareIds, FULL, QUICK, type Role, type Verdict } from "./model.js";
import type { SuiteRun } from "./suite.js";
import { testDocuments } from "./testdata.js";

export const VERDICTS: readonly Verdict[] = [
  "OK",
  "NON-STRICT",
  "INFORMATIONAL",
  "UNIMPLEMENTED",
  "FAILED",
];
const ROLES: readonly Role[] = ["server", "client"];

const mib = (n: number): string =>
  n >= 1024 * 1024 ? `${n / (1024 * 1024)} MiB` : `${n / 1024} KiB`;

export type Counts = Record<Verdict, number> & { total: number };

function emptyCounts(): Counts {
  return { OK: 0, "NON-STRICT": 0, INFORMATIONAL: 0, UNIMPLEMENTED: 0, FAILED: 0, total: 0 };
}

/** counts[role][group] and counts[role]["all"]. */
export function countByGroup(
  results: readonly CaseResult[],
): Record<string, Record<string, Counts>> {
  const out: Record<string, Record<string, Counts>> = {};
  for (const r of results) {
    const role = out[r.role] ?? {};
    out[r.role] = role;
    for (const key of [r.group, "all"]) {
      const c = role[key] ?? emptyCounts();
      role[key] = c;
      c[r.verdict]++;
      c.total++;
    }
  }
  return out;
}

function groupsIn(results: readonly CaseResult[]): string[] {
  return [...new Set(results.map((r) => r.group))].sort(compareIds);
}

/** Plain-text table for the console. */
export function formatCounts(run: SuiteRun): string {
  const counts = countByGroup(run.results);
  const lines: string[] = [];
  const head = ["group", ...VERDICTS, "total"];
  const widths = [34, 6, 10, 13, 13, 6, 6];
  const row = (cells: readonly (string | number)[]): string =>
    cells
      .map((c, i) =>
        i === 0 ? String(c).padEnd(widths[i] ?? 6) : String(c).padStart(widths[i] ?? 6),
      )
      .join(" ");
  for (const role of ROLES) {
    const byGroup = counts[role];
    if (byGroup === undefined) continue;
    const took = run.roleDurationMs[role];
    lines.push(
      `role ${role} (${role === "server" ? "fuzzing client vs. our server" : "fuzzing server vs. our client"})${took === undefined ? "" : `, ${(took / 1000).toFixed(1)} s`}`,
    );
    lines.push(row(head));
    for (const g of groupsIn(run.results.filter((r) => r.role === role))) {
      const c = byGroup[g]!;
      lines.push(
        row([`${g} ${GROUP_TITLES[g] ?? ""}`.slice(0, 34), ...VERDICTS.map((v) => c[v]), c.total]),
      );
    }
    const all = byGroup.all!;
    lines.push(row(["all", ...VERDICTS.map((v) => all[v]), all.total]));
    lines.push("");
  }
  return lines.join("\n");
}

export function writeJson(path: string, run: SuiteRun): void {
  mkdirSync(dirname(path), { recursive: true });
  const report = {
    generator:
      "duplex conformance suite (test/conformance, after the Autobahn|Testsuite case list)",
    profile: run.profile,
    startedAt: run.startedAt,
    durationMs: run.durationMs,
    roleDurationMs: run.roleDurationMs,
    counts: countByGroup(run.results),
    results: run.results,
  };
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}

const esc = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const COLORS: Record<Verdict, string> = {
  OK: "#2e7d32",
  "NON-STRICT": "#9e9d24",
  INFORMATIONAL: "#1565c0",
  UNIMPLEMENTED: "#6d4c41",
  FAILED: "#c62828",
};

export function writeHtml(path: string, run: SuiteRun): void {
  mkdirSync(dirname(path), { recursive: true });
  const counts = countByGroup(run.results);
  const groups = groupsIn(run.results);
  const badge = (v: Verdict): string =>
    `<span class="v" style="background:${COLORS[v]}">${v}</span>`;
  const summary = ROLES.filter((r) => counts[r] !== undefined)
    .map((role) => {
      const rows = [...groups, "all"]
        .filter((g) => counts[role]?.[g] !== undefined)
        .map((g) => {
          const c = counts[role]![g]!;
          return `<tr><td>${g === "all" ? "<b>all</b>" : `${g} ${esc(GROUP_TITLES[g] ?? "")}`}</td>${VERDICTS.map((v) => `<td>${c[v] || ""}</td>`).join("")}<td>${c.total}</td></tr>`;
        })
        .join("\n");
      return `<h2>Role ${role}</h2><table class="sum"><tr><th>group</th>${VERDICTS.map((v) => `<th>${v}</th>`).join("")}<th>total</th></tr>${rows}</table>`;
    })
    .join("\n");
  const details = run.results
    .map((r) => {
      const o = r.observed;
      const info = [
        `<p><b>Description:</b> ${esc(r.description)}</p>`,
        `<p><b>Expectation:</b> ${esc(r.expectation)}</p>`,
        `<p><b>Behaviour:</b> ${r.behavior} — ${esc(r.result)}</p>`,
        `<p><b>Close behaviour:</b> ${r.behaviorClose} — ${esc(r.resultClose)}</p>`,
        r.nonStrictReason === undefined
          ? ""
          : `<p><b>Why non-strict is allowed:</b> ${esc(r.nonStrictReason)}</p>`,
        `<p><b>Handshake:</b> ${esc(o.handshake)}${o.extensions ? ` — extensions: ${esc(o.extensions)}` : ""}</p>`,
        `<p><b>Closed by:</b> ${o.closedBy}; close sent: ${esc(o.closeSent ?? "none")}; close received: ${esc(o.closeReceived ?? "none")}; clean: ${o.wasClean}${o.killed ? "; fuzzer dropped TCP" : ""}${o.tcpReset ? "; TCP reset" : ""}</p>`,
        `<p><b>Events (${o.eventCount}):</b> ${esc(o.events.join(", ") || "none")}</p>`,
        o.violations.length > 0 ? `<p><b>Violations:</b> ${esc(o.violations.join("; "))}</p>` : "",
        o.notes.length > 0 ? `<p><b>Notes:</b> ${esc(o.notes.join("; "))}</p>` : "",
        `<details><summary>trace (${o.bytesSent} bytes sent, ${o.bytesReceived} received)</summary><pre>${esc(o.trace.join("\n"))}</pre></details>`,
      ].join("");
      return `<tr id="${r.role}-${r.id}"><td>${r.role}</td><td>${r.id}${r.extra ? " *" : ""}</td><td>${badge(r.verdict)}</td><td>${r.durationMs} ms</td><td><details><summary>${esc(r.description.slice(0, 110))}</summary>${info}</details></td></tr>`;
    })
    .join("\n");
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Duplex conformance report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:3px 8px;vertical-align:top;text-align:left}
table.sum td:not(:first-child){text-align:right}
.v{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px;white-space:nowrap}
pre{white-space:pre-wrap;font-size:12px;background:#f6f6f6;padding:6px}
details p{margin:.3em 0}
</style></head><body>
<h1>Duplex conformance report</h1>
<p>Cases follow the Autobahn|Testsuite case list (groups 1-7, 9, 10, 12, 13); the fuzzers and scripts are Duplex's own (test/conformance). Profile <b>${run.profile.name}</b>; started ${esc(run.startedAt)}; ${(run.durationMs / 1000).toFixed(1)} s in total. Cases marked * are additions to Autobahn's list.</p>
${summary}
<h2>Cases</h2>
<table><tr><th>role</th><th>case</th><th>verdict</th><th>duration</th><th>details</th></tr>
${details}
</table></body></html>
`;
  writeFileSync(path, html);
}

/** docs/conformance.md from a (full) run. */
export function renderDocs(run: SuiteRun): string {
  const counts = countByGroup(run.results);
  const groups = groupsIn(run.results);
  const table = (role: Role): string => {
    const byGroup = counts[role];
    if (byGroup === undefined) return "_not run_\n";
    const lines = [
      `| group | ${VERDICTS.join(" | ")} | total |`,
      `| --- | ${VERDICTS.map(() => "---:").join(" | ")} | ---: |`,
    ];
    for (const g of [...groups, "all"]) {
      const c = byGroup[g];
      if (c === undefined) continue;
      const name = g === "all" ? "**all**" : `${g} ${GROUP_TITLES[g] ?? ""}`;
      lines.push(`| ${name} | ${VERDICTS.map((v) => c[v]).join(" | ")} | ${c.total} |`);
    }
    return `${lines.join("\n")}\n`;
  };
  const listOf = (verdict: Verdict): string => {
    const hits = run.results.filter((r) => r.verdict === verdict);
    if (hits.length === 0) return "None.\n";
    return `${hits
      .map((r) => {
        const why =
          verdict === "NON-STRICT"
            ? (r.nonStrictReason ?? "(no reason given)")
            : `${r.result} ${r.resultClose}.`;
        return `- **${r.id}** (role ${r.role}): ${r.description}\n  ${why}`;
      })
      .join("\n")}\n`;
  };
  const seconds = (ms: number | undefined): string =>
    ms === undefined ? "n/a" : `${(ms / 1000).toFixed(1)} s`;
  const docs = testDocuments();
  return `# Conformance

<!-- Generated by \`npm run conformance -- --write-docs\` (test/conformance/run.ts). Do not edit by hand. -->

Duplex runs its own conformance suite after the [Autobahn|Testsuite](https://github.com/crossbario/autobahn-testsuite)
case list. Autobahn itself needs Python 2 and Docker, so the suite is rewritten in TypeScript
(\`test/conformance/\`): the case ids, descriptions and expectations are Autobahn's, the fuzzers and
scripts are ours, and the verdicts follow Autobahn's rules.

- **Role server**: a fuzzing client opens one connection per case to Duplex's \`WebSocketServer\`
  (echo, in-process on 127.0.0.1, permessage-deflate enabled, \`maxMessageBytes\` 32 MiB). Its
  frames are masked.
- **Role client**: a fuzzing server (a raw \`net\` server that does the server side of the opening
  handshake itself) receives one connection per case from Duplex's \`WebSocket\` client driven by a
  small echo agent that sends back every message, like Autobahn's client test agents. Its frames are
  unmasked.

Each case speaks raw bytes over a \`net.Socket\` (bad RSV bits, reserved opcodes, chopped writes with
pauses, invalid UTF-8 split across frames, fragmented control frames, every close code, compressed
frames built with \`node:zlib\`) and checks what comes back: the events (messages, pongs), the peer's
Close code, who closed first and whether the closing handshake completed. The verdicts are
Autobahn's: **OK**, **NON-STRICT** (allowed but weaker; always with a written reason),
**INFORMATIONAL** (the spec leaves the outcome open), **UNIMPLEMENTED** (optional feature not
negotiated) and **FAILED** (Autobahn's "WRONG CODE", "UNCLEAN" and "FAILED BY CLIENT" count as
FAILED). The fuzzer also fails a case on any protocol violation by the peer (unmasked client frames,
masked server frames, bad RSV bits, invalid UTF-8 in a text message or close reason, frames after
Close, a compressed stream that does not inflate within the negotiated window...).

## Running it

| command | what |
| --- | --- |
| \`npm run conformance\` | all cases, both roles, full profile; writes \`reports/conformance/report.json\` and \`index.html\` |
| \`npm run conformance -- --write-docs\` | the same, and regenerates this file |
| \`npm run conformance -- --quick --role server --cases 6.4,7.9\` | a subset |
| \`npm test\` | \`test/conformance/gate.test.ts\`: both roles, quick profile; fails on any FAILED case or NON-STRICT without a reason |

\`test/conformance/broken.test.ts\` shows the suite can fail: against a deliberately broken echo
server (no UTF-8 validation, reserved bits accepted) exactly the expected cases fail.

### Profiles

| setting | full (\`npm run conformance\`) | quick (\`npm test\` gate) |
| --- | --- | --- |
| 9.3.x / 9.4.x message size (fragments of 64 B to 4 MiB) | ${mib(FULL.fragmentedBytes)} | ${mib(QUICK.fragmentedBytes)} |
| 9.5.x / 9.6.x message size (chops of 64 B to 2 KiB) | ${mib(FULL.choppedBytes)} | ${mib(QUICK.choppedBytes)} |
| 9.7.x / 9.8.x round trips | ${FULL.roundTrips} | ${QUICK.roundTrips} |
| 12.x / 13.x messages per case | ${FULL.deflateMessages}, at most ${mib(FULL.deflateBytes)} of payload (at least 2 messages); \`--autobahn-counts\`: always ${FULL.deflateMessages} | ${QUICK.deflateMessages}, at most ${mib(QUICK.deflateBytes)} of payload (at least 2 messages) |
| pause in 5.19/5.20 and 6.4.x | ${FULL.pauseMs} ms | ${QUICK.pauseMs} ms |

All other cases are the same in both profiles (9.1.x/9.2.x send up to 16 MiB in both). The byte
budget of 12.x/13.x exists because a message of 128 KiB cut into 256-byte compressed frames costs
about 0.1 s to inflate frame by frame; 1000 of them per case, as Autobahn sends, make a full run
last about an hour.

## Results (profile ${run.profile.name}, ${run.startedAt.slice(0, 10)})

Total run time ${seconds(run.durationMs)} on the machine that generated this file. The two roles run
interleaved in one process: role server finished after ${seconds(run.roleDurationMs.server)}, role client after ${seconds(run.roleDurationMs.client)}.
Group 7 has 37 Autobahn cases and 4 extra ones (see below).

### Role server (fuzzing client against Duplex's WebSocketServer)

${table("server")}
### Role client (fuzzing server against Duplex's WebSocket client)

${table("client")}
### FAILED cases

${listOf("FAILED")}
### NON-STRICT cases and why they are allowed

${listOf("NON-STRICT")}
### INFORMATIONAL cases

${listOf("INFORMATIONAL")}
## Differences from Autobahn

- **Stricter when the peer must fail the connection.** When a case expects the peer to fail the
  connection and the peer does nothing until the fuzzer gives up and drops TCP, Autobahn can still
  pass the close check; here the fuzzer's timeout counts as the fuzzer closing, so the case fails
  ("closed by the wrong endpoint").
- **Echo content is compared**, not only lengths, in 9.x (Autobahn has a FIXME there).
- **3.6** sends a Ping with RSV = 6, as its description says (Autobahn's script sends a binary frame).
- **Extra cases** (marked \`extra\` in the report): 7.7.14-7.7.16 close with 1012, 1013, 1014 (registered
  after Autobahn's list was written, valid) and 7.9.10 close with 1015 (must never be sent).
- **12.x test data** is generated (\`test/conformance/testdata.ts\`) instead of Autobahn's files, in
  the same order and of the same kind: ${docs.map((d, i) => `12.${i + 1} ${d.description.replace(" (generated)", "")} (${d.binary ? "binary" : "text"}, ${d.data.length} bytes)`).join("; ")}.
  Group 13 uses the JSON document, as Autobahn does.
- **13.x offers** name both directions: each parameter set offers server_no_context_takeover /
  server_max_window_bits and the matching client_no_context_takeover / client_max_window_bits hints,
  and the fuzzing server answers with Autobahn's accept functions (requesting client_no_context_takeover
  and/or client_max_window_bits). Role client configures Duplex's client to make the set's first offer
  (it makes one offer, so 13.7 uses the first of its three). The sets:
${DEFLATE_PARAMETER_SETS.map((s, i) => `  - 13.${i + 1}: ${s.text}`).join("\n")}
- The fuzzer inflates with exactly the negotiated window and, under no_context_takeover, a fresh
  inflater per message, so a peer that ignores either fails.
- 7.1.6 and 7.13.x are INFORMATIONAL as in Autobahn; group 8 (none in Autobahn) and 9.9/9.10
  (disabled in Autobahn) are not run.

## Interop matrix

${interopSection()}
`;
}

/** The interop matrix from the last interop run (reports/interop.json), as Markdown. */
function interopSection(): string {
  const intro =
    "Real peers nobody here wrote, run by `npm test` (`test/interop/`, latest run of `npm run test:interop`). Each check asserts what the peer observed.";
  try {
    if (readReport().rows.length === 0) throw new Error("empty");
    return `${intro}\n\n${markdownMatrix()}`;
  } catch {
    return `${intro}\n\n_No interop run recorded: run \`npm run test:interop\` first._`;
  }
}
