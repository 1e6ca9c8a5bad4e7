import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import {
  DuplexError,
  HandshakeError,
  LimitsError,
  ProtocolError,
  StateError,
} from "../../src/protocol/errors.js";

const root = resolve(import.meta.dirname, "../..");
const codesIn = (text: string): string[] =>
  [...new Set(text.match(/WS_ERR_[A-Z0-9_]+/g) ?? [])].sort();

describe("typed errors", () => {
  it("carry a stable code, their class name and the wire meaning", () => {
    const p = new ProtocolError("WS_ERR_INVALID_UTF8", 1007, "bad");
    assert.ok(p instanceof DuplexError && p instanceof Error);
    assert.deepEqual(
      [p.name, p.code, p.closeCode, p.message],
      ["ProtocolError", "WS_ERR_INVALID_UTF8", 1007, "bad"],
    );
    const h = new HandshakeError("WS_ERR_HANDSHAKE_VERSION", 426, "v", {
      "Sec-WebSocket-Version": "13",
    });
    assert.deepEqual(
      [h.name, h.httpStatus, h.headers["Sec-WebSocket-Version"]],
      ["HandshakeError", 426, "13"],
    );
    assert.equal(new StateError("WS_ERR_NOT_OPEN", "x").name, "StateError");
    const l = new LimitsError("maxFragments", "too small");
    assert.deepEqual(
      [l.code, l.field, l.message],
      ["WS_ERR_INVALID_LIMIT", "maxFragments", "maxFragments: too small"],
    );
  });

  it("docs/errors.md documents exactly the codes declared in src/protocol/errors.ts", () => {
    const declared = codesIn(readFileSync(resolve(root, "src/protocol/errors.ts"), "utf8"));
    const documented = codesIn(readFileSync(resolve(root, "docs/errors.md"), "utf8"));
    assert.deepEqual(documented, declared);
    assert.ok(declared.length > 30);
  });
});
