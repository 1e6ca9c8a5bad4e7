/**
 * Replays every case in test/fixtures/corpus/: the hand-written seeds (seed-*.json, with the exact
 * events expected) and whatever `npm run fuzz` saved there (<hash>.json). Each must satisfy the
 * invariants of harness.ts's checkCase; seeds must also produce their `expect` events.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  type CorpusEntry,
  checkCase,
  checkObservation,
  entryToCase,
  type FeedCase,
  firstDifference,
  fromHex,
  type Observation,
  referenceEvents,
} from "./harness.js";

const CORPUS = join(import.meta.dirname, "..", "fixtures", "corpus");
const files = readdirSync(CORPUS)
  .filter((name) => name.endsWith(".json"))
  .sort();

describe("fuzz corpus (test/fixtures/corpus)", () => {
  it("has the hand-written seed files", () => {
    assert.ok(files.filter((f) => f.startsWith("seed-")).length >= 5, files.join(", "));
  });

  for (const name of files) {
    it(name, () => {
      const entry = JSON.parse(readFileSync(join(CORPUS, name), "utf8")) as CorpusEntry;
      const c = entryToCase(entry);
      const result = checkCase(c);
      assert.deepEqual(result.violations, [], result.violations.join("\n"));
      if (entry.expect !== undefined) {
        const diff = firstDifference(result.observation.events, entry.expect);
        assert.equal(diff, null, `events differ from "expect" at ${diff}`);
      }
    });
  }
});

describe("fuzz harness: the checker catches violations (so the corpus can fail)", () => {
  const base: FeedCase = {
    role: "client",
    limits: null,
    codec: null,
    input: fromHex("8900"),
    chunks: [],
  };
  const observation = (o: Partial<Observation>): Observation => ({
    events: [],
    writes: [],
    thrown: undefined,
    anomalies: [],
    eventChunk: [],
    state: 1,
    closeStatus: { code: 1006, reason: "", wasClean: false },
    ...o,
  });
  const closeFrame = (code: number): Uint8Array =>
    // A masked (client) Close frame with a zero key: 88 82 00000000 <code>.
    fromHex(`888200000000${code.toString(16).padStart(4, "0")}`);
  const error = { type: "error", code: "WS_ERR_INVALID_RSV", closeCode: 1002 } as const;
  const failed = { state: 3 as const, closeStatus: { code: 1002, reason: "x", wasClean: false } };

  it("accepts a correct failure", () => {
    const o = observation({
      events: [error],
      writes: [{ at: 0, bytes: closeFrame(1002) }],
      ...failed,
    });
    assert.deepEqual(checkObservation(base, o), []);
  });

  const bad: [string, Partial<Observation>, RegExp][] = [
    ["a throw", { thrown: new TypeError("boom") }, /receiveData threw: TypeError: boom/],
    [
      "an event after the error",
      {
        events: [error, { type: "pong", data: "" }],
        writes: [{ at: 0, bytes: closeFrame(1002) }],
        ...failed,
      },
      /event after error/,
    ],
    [
      "no Close after the error",
      { events: [error], ...failed },
      /0 frame\(s\) written before event 0/,
    ],
    [
      "a Close with the wrong code",
      { events: [error], writes: [{ at: 0, bytes: closeFrame(1000) }], ...failed },
      /expected code 1002/,
    ],
    [
      "a write after the error",
      {
        events: [error],
        writes: [
          { at: 0, bytes: closeFrame(1002) },
          { at: 1, bytes: fromHex("8a8000000000") },
        ],
        ...failed,
      },
      /1 frame\(s\) written after the last event/,
    ],
    [
      "a close code outside 1002/1007/1008/1009",
      {
        events: [{ type: "error", code: "WS_ERR_INTERNAL", closeCode: 1011 }],
        writes: [{ at: 0, bytes: closeFrame(1011) }],
        state: 3,
        closeStatus: { code: 1011, reason: "", wasClean: false },
      },
      /close code 1011/,
    ],
    [
      "invalid UTF-8 delivered as text",
      { events: [{ type: "message", binary: false, data: "c0af" }] },
      /not valid UTF-8/,
    ],
    [
      "a missing Pong",
      { events: [{ type: "ping", data: "01" }] },
      /0 frame\(s\) written before event 0 \(ping\), expected 1/,
    ],
  ];
  for (const [what, o, pattern] of bad) {
    it(`flags ${what}`, () => {
      const v = checkObservation(base, observation(o));
      assert.ok(
        v.some((s) => pattern.test(s)),
        v.join("\n"),
      );
    });
  }

  it("the reference decoder knows the basics", () => {
    const ref = (role: "server" | "client", hex: string) =>
      referenceEvents({ role, limits: null, codec: null, input: fromHex(hex), chunks: [] });
    assert.deepEqual(ref("client", "810548656c6c6f"), [
      { type: "message", binary: false, data: "48656c6c6f" },
    ]);
    assert.deepEqual(ref("server", "810548656c6c6f"), [
      { type: "error", code: "WS_ERR_EXPECTED_MASK", closeCode: 1002 },
    ]);
    assert.deepEqual(ref("client", "8000"), [
      { type: "error", code: "WS_ERR_UNEXPECTED_CONTINUATION", closeCode: 1002 },
    ]);
  });
});
