/**
 * The suite can fail: against the deliberately broken echo server of broken-server.ts (reserved
 * bits accepted, text never checked for UTF-8) exactly the cases that catch those two defects
 * fail, and nothing else does.
 *
 * The expected set:
 * - 3.1-3.6: the broken server answers the frame with reserved bits (echoes the message, or
 *   pongs the Ping of 3.6) where it must fail the connection with 1002.
 *   3.7 is not in the set: its frame is a Close with RSV = 7, which the broken server answers
 *   with an ordinary closing handshake. Autobahn's rules accept that (no events, the peer closed,
 *   a Close without code is accepted in place of 1002), so this suite does too.
 * - every 6.x case that expects the peer to fail on invalid UTF-8 (close code 1007): the broken
 *   server echoes the invalid text instead. That is 6.3.1, 6.3.2, 6.4.1-6.4.4 and the 69 invalid
 *   sequences of 6.6-6.21: 75 cases.
 * 12.x/13.x are UNIMPLEMENTED (no permessage-deflate), which is not a failure.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WebSocket } from "../../src/client/index.js";
import { startBrokenServer } from "./broken-server.js";
import { buildCases } from "./cases.js";
import { compareIds, QUICK } from "./model.js";
import { type ClientAgent, runSuite } from "./suite.js";

function expectedFailures(): string[] {
  const reservedBits = ["3.1", "3.2", "3.3", "3.4", "3.5", "3.6"];
  const invalidUtf8 = buildCases(QUICK)
    .filter((c) => c.id.startsWith("6.") && c.expect.close.codes.includes(1007))
    .map((c) => c.id);
  return [...reservedBits, ...invalidUtf8].sort(compareIds);
}

describe("conformance suite against a deliberately broken server", () => {
  it("the expected set is what the case list says", () => {
    const expected = expectedFailures();
    assert.equal(expected.filter((id) => id.startsWith("6.")).length, 75);
    for (const id of ["6.3.1", "6.3.2", "6.4.1", "6.4.4", "6.6.1", "6.8.1", "6.11.5", "6.21.8"]) {
      assert.ok(expected.includes(id), id);
    }
    for (const id of ["6.2.1", "6.6.2", "6.11.4", "6.22.1", "3.7"])
      assert.ok(!expected.includes(id), id);
  });

  it("fails exactly the reserved-bit and invalid-UTF-8 cases", { timeout: 170_000 }, async () => {
    const run = await runSuite({
      profile: QUICK,
      roles: ["server"],
      concurrency: 16,
      startServer: startBrokenServer,
    });
    const failed = run.results.filter((r) => r.verdict === "FAILED").map((r) => r.id);
    const expected = expectedFailures();
    const unexpected = failed.filter((id) => !expected.includes(id));
    const missed = expected.filter((id) => !failed.includes(id));
    const detail = run.results
      .filter((r) => unexpected.includes(r.id))
      .map((r) => `${r.id}: ${r.result} / ${r.resultClose}`)
      .join("\n");
    assert.deepEqual({ unexpected, missed }, { unexpected: [], missed: [] }, detail);
    assert.deepEqual(failed, expected);
    // The reasons name the defect.
    const r31 = run.results.find((r) => r.id === "3.1")!;
    assert.match(r31.result, /differ/);
    const r64 = run.results.find((r) => r.id === "6.4.1")!;
    // It waited for the whole message (markers A and B), then echoed invalid UTF-8.
    assert.deepEqual(r64.observed.events, ["marker A", "marker B"]);
    assert.match(r64.result, /not valid UTF-8/);
    // Compression is optional: reported, not failed.
    assert.ok(
      run.results
        .filter((r) => r.group === "12" || r.group === "13")
        .every((r) => r.verdict === "UNIMPLEMENTED"),
    );
  });

  it("role client fails an agent that echoes text as binary", { timeout: 60_000 }, async () => {
    // The client side of the harness can fail too: this agent uses Duplex's client but sends
    // every message back as binary, so every text echo case fails and binary ones pass.
    const binaryEcho: ClientAgent = (url, options) =>
      new Promise<void>((resolve) => {
        const ws = new WebSocket(url, [], {
          perMessageDeflate: options.perMessageDeflate,
          limits: { maxMessageBytes: options.maxMessageBytes },
        });
        ws.onmessage = (event) =>
          ws.send(
            typeof event.data === "string" ? Buffer.from(event.data) : (event.data as Buffer),
          );
        ws.onerror = () => {};
        ws.onclose = () => resolve();
      });
    const run = await runSuite({
      profile: QUICK,
      roles: ["client"],
      concurrency: 16,
      clientAgent: binaryEcho,
      filter: (c) => /^1\.[12]\.[1-5]$/.test(c.id),
    });
    const failed = run.results.filter((r) => r.verdict === "FAILED").map((r) => r.id);
    assert.deepEqual(failed, ["1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.1.5"]);
    assert.equal(run.results.length, 10);
  });
});
