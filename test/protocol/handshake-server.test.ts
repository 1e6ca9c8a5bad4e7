import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HandshakeError } from "../../src/protocol/errors.js";
import { parseExtensions } from "../../src/protocol/extension-header.js";
import { acceptKey, validateRequest } from "../../src/protocol/handshake.js";
import { getHeader, type HttpRequestHead } from "../../src/protocol/http-head.js";
import { expectHandshakeError, KEY, request, sampleHeaders } from "./handshake-helpers.js";

function withHeader(name: string, value: string, drop = true): HttpRequestHead {
  const req = request({}, drop ? [name.toLowerCase()] : []);
  req.headers.push([name, value]);
  return req;
}

describe("validateRequest (RFC 6455 §4.2.1)", () => {
  it("accepts the §1.2 sample request", () => {
    assert.deepEqual(validateRequest(request()), {
      key: KEY,
      host: "server.example.com",
      origin: "http://example.com",
      protocols: ["chat", "superchat"],
      extensions: [],
      path: "/chat",
    });
  });

  it("§4.2.1 item 1: non-GET -> 405 with Allow: GET", () => {
    const e = expectHandshakeError(
      () => validateRequest(request({ method: "POST" })),
      "WS_ERR_HANDSHAKE_METHOD",
      405,
    );
    assert.deepEqual(e.headers, { Allow: "GET" });
    expectHandshakeError(
      () => validateRequest(request({ method: "get" })),
      "WS_ERR_HANDSHAKE_METHOD",
      405,
    );
  });

  it("§4.2.1 item 1: HTTP/1.0 or garbage -> 400; major >= 2 -> 505; 1.1+ accepted", () => {
    for (const v of ["1.0", "0.9", "", "1", "1.1.1", "x.y"]) {
      expectHandshakeError(
        () => validateRequest(request({ httpVersion: v })),
        "WS_ERR_HANDSHAKE_HTTP_VERSION",
        400,
      );
    }
    expectHandshakeError(
      () => validateRequest(request({ httpVersion: "2.0" })),
      "WS_ERR_HANDSHAKE_HTTP_VERSION",
      505,
    );
    assert.equal(validateRequest(request({ httpVersion: "1.2" })).path, "/chat");
  });

  it("§4.2.1 item 1: request-target: origin-form kept, absolute-form reduced, others 400", () => {
    assert.equal(validateRequest(request({ target: "/a/b?x=1" })).path, "/a/b?x=1");
    assert.equal(validateRequest(request({ target: "ws://h:80/a?x" })).path, "/a?x");
    assert.equal(validateRequest(request({ target: "HTTP://h" })).path, "/");
    assert.equal(validateRequest(request({ target: "wss://h?q" })).path, "/?q");
    for (const target of ["*", "h:80", "", "/a#frag", "ftp://h/", "ws:///x", "/a b"]) {
      expectHandshakeError(
        () => validateRequest(request({ target })),
        "WS_ERR_HANDSHAKE_MALFORMED",
        400,
      );
    }
  });

  it("§4.2.1 item 2: Host missing, repeated, empty or invalid -> 400", () => {
    expectHandshakeError(
      () => validateRequest(request({}, ["host"])),
      "WS_ERR_HANDSHAKE_HOST",
      400,
    );
    expectHandshakeError(
      () => validateRequest(withHeader("Host", "a", false)),
      "WS_ERR_HANDSHAKE_HOST",
      400,
    );
    for (const host of ["", "a b", "a/b", "a@b"]) {
      expectHandshakeError(
        () => validateRequest(withHeader("Host", host)),
        "WS_ERR_HANDSHAKE_HOST",
        400,
      );
    }
    assert.equal(validateRequest(withHeader("host", "[::1]:8080")).host, "[::1]:8080");
  });

  it("§4.2.1 item 3: Upgrade must list websocket (case-insensitive) -> else 400", () => {
    expectHandshakeError(
      () => validateRequest(request({}, ["upgrade"])),
      "WS_ERR_HANDSHAKE_UPGRADE",
      400,
    );
    expectHandshakeError(
      () => validateRequest(withHeader("Upgrade", "h2c")),
      "WS_ERR_HANDSHAKE_UPGRADE",
      400,
    );
    expectHandshakeError(
      () => validateRequest(withHeader("Upgrade", "websocket/13")),
      "WS_ERR_HANDSHAKE_UPGRADE",
      400,
    );
    assert.ok(validateRequest(withHeader("upgrade", "h2c, WebSocket")));
  });

  it("§4.2.1 item 4: Connection must list upgrade (case-insensitive) -> else 400", () => {
    expectHandshakeError(
      () => validateRequest(request({}, ["connection"])),
      "WS_ERR_HANDSHAKE_CONNECTION",
      400,
    );
    expectHandshakeError(
      () => validateRequest(withHeader("Connection", "keep-alive")),
      "WS_ERR_HANDSHAKE_CONNECTION",
      400,
    );
    expectHandshakeError(
      () => validateRequest(withHeader("Connection", "upgraded")),
      "WS_ERR_HANDSHAKE_CONNECTION",
      400,
    );
    assert.ok(validateRequest(withHeader("connection", "keep-alive,\tUPGRADE")));
  });

  it("§4.2.1 item 5: Sec-WebSocket-Key missing, repeated, not 16 bytes -> 400", () => {
    expectHandshakeError(
      () => validateRequest(request({}, ["sec-websocket-key"])),
      "WS_ERR_HANDSHAKE_KEY",
      400,
    );
    expectHandshakeError(
      () => validateRequest(withHeader("Sec-WebSocket-Key", KEY, false)),
      "WS_ERR_HANDSHAKE_KEY",
      400,
    );
    for (const key of [
      "",
      "abc",
      "AAAAAAAAAAAAAAAAAAAAAA==AA",
      "AAAAAAAAAAAAAAAAAAAAAAA=",
      "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "dGhlIHNhbXBsZSBub25jZR==",
      "dGhlIHNhbXBsZSBub25jZQ",
    ]) {
      expectHandshakeError(
        () => validateRequest(withHeader("Sec-WebSocket-Key", key)),
        "WS_ERR_HANDSHAKE_KEY",
        400,
      );
    }
  });

  it("§4.2.1 item 6: Sec-WebSocket-Version missing -> 400, not 13 -> 426; both advertise 13 (§4.4)", () => {
    const missing = expectHandshakeError(
      () => validateRequest(request({}, ["sec-websocket-version"])),
      "WS_ERR_HANDSHAKE_VERSION",
      400,
    );
    assert.deepEqual(missing.headers, { "Sec-WebSocket-Version": "13" });
    for (const version of ["8", "", "013", "13, 8", " 14"]) {
      const e = expectHandshakeError(
        () => validateRequest(withHeader("Sec-WebSocket-Version", version)),
        "WS_ERR_HANDSHAKE_VERSION",
        426,
      );
      assert.deepEqual(e.headers, { "Sec-WebSocket-Version": "13" });
    }
    expectHandshakeError(
      () => validateRequest(withHeader("Sec-WebSocket-Version", "13", false)),
      "WS_ERR_HANDSHAKE_VERSION",
      426,
    );
  });

  it("§4.2.1 item 8: Sec-WebSocket-Protocol optional; joined across lines; invalid -> 400", () => {
    assert.deepEqual(validateRequest(request({}, ["sec-websocket-protocol"])).protocols, []);
    const req = request();
    req.headers.push(["Sec-WebSocket-Protocol", "v3"]);
    assert.deepEqual(validateRequest(req).protocols, ["chat", "superchat", "v3"]);
    expectHandshakeError(
      () => validateRequest(withHeader("Sec-WebSocket-Protocol", "a, a")),
      "WS_ERR_HANDSHAKE_SUBPROTOCOL",
      400,
    );
    expectHandshakeError(
      () => validateRequest(withHeader("Sec-WebSocket-Protocol", "")),
      "WS_ERR_HANDSHAKE_SUBPROTOCOL",
      400,
    );
  });

  it("§4.2.1 item 9: Sec-WebSocket-Extensions parsed; invalid -> 400", () => {
    const exts = validateRequest(
      withHeader("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
    ).extensions;
    assert.deepEqual(exts, parseExtensions("permessage-deflate; client_max_window_bits"));
    expectHandshakeError(
      () => validateRequest(withHeader("Sec-WebSocket-Extensions", "x; a; a")),
      "WS_ERR_HANDSHAKE_EXTENSION",
      400,
    );
  });

  it("§4.2.1 item 7: Origin returned as is, absent -> undefined, repeated -> 400", () => {
    assert.equal(validateRequest(request({}, ["origin"])).origin, undefined);
    assert.equal(validateRequest(withHeader("origin", "null")).origin, "null");
    expectHandshakeError(
      () => validateRequest(withHeader("Origin", "http://evil", false)),
      "WS_ERR_HANDSHAKE_ORIGIN",
      400,
    );
  });

  it("header names and tokens compare ASCII case-insensitively only (no Unicode folding)", () => {
    // U+212A KELVIN SIGN lowercases to "k" with String#toLowerCase.
    const kelvin = request({}, ["sec-websocket-key"]);
    kelvin.headers.push(["Sec-WebSoc\u212Aet-Key", KEY]);
    expectHandshakeError(() => validateRequest(kelvin), "WS_ERR_HANDSHAKE_KEY", 400);
    expectHandshakeError(
      () => validateRequest(withHeader("Upgrade", "websoc\u212Aet")),
      "WS_ERR_HANDSHAKE_UPGRADE",
      400,
    );
    assert.equal(getHeader([["HOST", "a"]], "Host"), "a");
  });

  it("checks run in the documented order (first failure wins)", () => {
    const broken = (): HttpRequestHead => ({
      method: "POST",
      target: "*",
      httpVersion: "1.0",
      headers: [
        ["Sec-WebSocket-Protocol", ","],
        ["Origin", "a"],
        ["Origin", "b"],
        ["Sec-WebSocket-Extensions", ","],
        ["Sec-WebSocket-Version", "7"],
      ],
    });
    const steps: [string, number, (r: HttpRequestHead) => void][] = [
      [
        "WS_ERR_HANDSHAKE_METHOD",
        405,
        (r) => {
          r.method = "GET";
        },
      ],
      [
        "WS_ERR_HANDSHAKE_HTTP_VERSION",
        400,
        (r) => {
          r.httpVersion = "1.1";
        },
      ],
      [
        "WS_ERR_HANDSHAKE_MALFORMED",
        400,
        (r) => {
          r.target = "/";
        },
      ],
      [
        "WS_ERR_HANDSHAKE_HOST",
        400,
        (r) => {
          r.headers.push(["Host", "h"]);
        },
      ],
      [
        "WS_ERR_HANDSHAKE_UPGRADE",
        400,
        (r) => {
          r.headers.push(["Upgrade", "websocket"]);
        },
      ],
      [
        "WS_ERR_HANDSHAKE_CONNECTION",
        400,
        (r) => {
          r.headers.push(["Connection", "upgrade"]);
        },
      ],
      [
        "WS_ERR_HANDSHAKE_KEY",
        400,
        (r) => {
          r.headers.push(["Sec-WebSocket-Key", KEY]);
        },
      ],
      [
        "WS_ERR_HANDSHAKE_VERSION",
        426,
        (r) => {
          r.headers = r.headers
            .filter(([n]) => n !== "Sec-WebSocket-Version")
            .concat([["Sec-WebSocket-Version", "13"]]);
        },
      ],
      [
        "WS_ERR_HANDSHAKE_SUBPROTOCOL",
        400,
        (r) => {
          r.headers = r.headers.filter(([n]) => n !== "Sec-WebSocket-Protocol");
        },
      ],
      [
        "WS_ERR_HANDSHAKE_EXTENSION",
        400,
        (r) => {
          r.headers = r.headers.filter(([n]) => n !== "Sec-WebSocket-Extensions");
        },
      ],
      [
        "WS_ERR_HANDSHAKE_ORIGIN",
        400,
        (r) => {
          r.headers = r.headers.filter(([n]) => n !== "Origin");
        },
      ],
    ];
    const req = broken();
    for (const [code, status, fix] of steps) {
      expectHandshakeError(() => validateRequest(req), code, status);
      fix(req);
    }
    assert.equal(validateRequest(req).key, KEY);
  });

  it("no header assumed present (ws CVE-2024-37890): every subset of headers gives a result or a HandshakeError", () => {
    const all = sampleHeaders();
    for (let mask = 0; mask < 1 << all.length; mask++) {
      const headers = all.filter((_, i) => (mask & (1 << i)) !== 0);
      try {
        validateRequest({ method: "GET", target: "/", httpVersion: "1.1", headers });
      } catch (e) {
        assert.ok(e instanceof HandshakeError, String(e));
      }
    }
  });

  it("property: arbitrary requests give a ValidatedRequest or a HandshakeError", () => {
    const names = fc.constantFrom(
      "Host",
      "Upgrade",
      "Connection",
      "Sec-WebSocket-Key",
      "Sec-WebSocket-Version",
      "Sec-WebSocket-Protocol",
      "Sec-WebSocket-Extensions",
      "Origin",
      "X",
    );
    const values = fc.oneof(
      fc.string(),
      fc.constantFrom("websocket", "Upgrade", KEY, "13", "h", "chat", "permessage-deflate"),
    );
    const req = fc.record({
      method: fc.oneof(fc.constant("GET"), fc.string()),
      target: fc.oneof(fc.constant("/"), fc.string()),
      httpVersion: fc.oneof(fc.constant("1.1"), fc.string()),
      headers: fc.array(fc.tuple(fc.oneof(names, fc.string()), values), { maxLength: 12 }),
    });
    fc.assert(
      fc.property(req, (r) => {
        try {
          const v = validateRequest(r);
          assert.equal(acceptKey(v.key).length, 28);
        } catch (e) {
          assert.ok(e instanceof HandshakeError, String(e));
          assert.ok([400, 405, 426, 505].includes(e.httpStatus));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
