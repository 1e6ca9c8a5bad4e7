import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { LimitsError } from "../../src/protocol/errors.js";
import { DEFAULT_LIMITS, type Limits, resolveLimits } from "../../src/protocol/limits.js";

describe("limits", () => {
  it("defaults are returned frozen when nothing is given", () => {
    const l = resolveLimits();
    assert.deepEqual(l, DEFAULT_LIMITS);
    assert.ok(Object.isFrozen(l));
  });

  it("user values override defaults field by field", () => {
    const l = resolveLimits({ maxMessageBytes: 1024 });
    assert.equal(l.maxMessageBytes, 1024);
    assert.equal(l.maxFragments, DEFAULT_LIMITS.maxFragments);
  });

  for (const [field, value, pattern] of [
    ["maxMessageBytes", 0, /between 1 and/],
    ["maxMessageBytes", 1.5, /must be an integer/],
    ["maxMessageBytes", Number.NaN, /must be an integer/],
    ["maxFragments", -1, /between 1 and/],
    ["maxHandshakeBytes", 100, /between 512 and/],
    ["maxHeaderCount", "10", /must be an integer/],
  ] as const) {
    it(`rejects ${field} = ${String(value)} with an error naming the field`, () => {
      assert.throws(
        () => resolveLimits({ [field]: value } as unknown as Partial<Limits>),
        (e: unknown) =>
          e instanceof LimitsError &&
          e.code === "WS_ERR_INVALID_LIMIT" &&
          e.field === field &&
          e.message.startsWith(`${field}:`) &&
          pattern.test(e.message),
      );
    });
  }

  it("rejects unknown fields (a typo must not be silently ignored)", () => {
    assert.throws(
      () => resolveLimits({ maxMesageBytes: 5 } as unknown as Partial<Limits>),
      (e: unknown) => e instanceof LimitsError && e.field === "maxMesageBytes",
    );
  });

  it("docs/limits.md lists every field with its default", () => {
    const doc = readFileSync(resolve(import.meta.dirname, "../../docs/limits.md"), "utf8");
    const rows = new Map<string, number>();
    for (const m of doc.matchAll(/^\|\s*`(\w+)`\s*\|\s*(\d+)\s*\|/gm))
      rows.set(m[1] ?? "", Number(m[2]));
    assert.deepEqual(
      [...rows.entries()].sort(),
      Object.entries(DEFAULT_LIMITS).sort(),
      "docs/limits.md table and DEFAULT_LIMITS differ",
    );
  });
});
