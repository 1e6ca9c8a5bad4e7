/**
 * The conformance gate of `npm test`: every case of the Autobahn-style suite (test/conformance)
 * for both roles — a fuzzing client against Duplex's WebSocketServer and a fuzzing server against
 * Duplex's WebSocket client — with the quick profile (reduced counts for 9.x and 12.x/13.x, see
 * docs/conformance.md). Fails on any FAILED case and on any NON-STRICT case without a reason.
 * The full run with reports is `npm run conformance`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildCases } from "./cases.js";
import { type CaseResult, QUICK } from "./model.js";
import { runSuite } from "./suite.js";

function describeFailure(r: CaseResult): string {
  const o = r.observed;
  return [
    `${r.role} ${r.id} ${r.description}`,
    `  behaviour ${r.behavior}: ${r.result}`,
    `  close ${r.behaviorClose}: ${r.resultClose}`,
    `  events: ${o.events.join(", ") || "none"}; closed by ${o.closedBy}; sent ${o.closeSent ?? "no Close"}; received ${o.closeReceived ?? "no Close"}`,
    `  trace: ${o.trace.slice(-12).join(" | ")}`,
  ].join("\n");
}

describe("conformance gate (Autobahn case list, both roles, quick profile)", () => {
  it("no case FAILS and every NON-STRICT case has a reason", { timeout: 170_000 }, async () => {
    const run = await runSuite({ profile: QUICK, roles: ["server", "client"], concurrency: 12 });
    const cases = buildCases(QUICK);
    for (const role of ["server", "client"] as const) {
      const ids = run.results.filter((r) => r.role === role).map((r) => r.id);
      assert.equal(ids.length, cases.length, `every case ran for role ${role}`);
      for (const group of ["1", "2", "3", "4", "5", "6", "7", "9", "10", "12", "13"]) {
        assert.ok(
          ids.some((id) => id.startsWith(`${group}.`)),
          `group ${group} ran for role ${role}`,
        );
      }
    }
    const failed = run.results.filter((r) => r.verdict === "FAILED");
    assert.equal(failed.length, 0, `FAILED cases:\n${failed.map(describeFailure).join("\n")}`);
    const unexplained = run.results.filter(
      (r) => r.verdict === "NON-STRICT" && (r.nonStrictReason ?? "").trim() === "",
    );
    assert.deepEqual(
      unexplained.map((r) => `${r.role} ${r.id}`),
      [],
      "NON-STRICT cases without a reason",
    );
    // Duplex negotiates permessage-deflate in both roles, so nothing is UNIMPLEMENTED.
    assert.deepEqual(
      run.results.filter((r) => r.verdict === "UNIMPLEMENTED").map((r) => `${r.role} ${r.id}`),
      [],
    );
  });
});
