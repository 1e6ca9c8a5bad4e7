import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HandshakeError, StateError } from "../../src/protocol/errors.js";
import { parseExtensions } from "../../src/protocol/extension-header.js";
import {
  acceptKey,
  buildAcceptResponse,
  buildRejectResponse,
  buildRequest,
  generateKey,
  validateRequest,
  validateResponse,
} from "../../src/protocol/handshake.js";
import {
  getHeader,
  type HttpRequestHead,
  type HttpResponseHead,
  parseHttpHead,
} from "../../src/protocol/http-head.js";
import { DEFAULT_LIMITS } from "../../src/protocol/limits.js";

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

function expectHandshakeError(fn: () => unknown, code: string, status: number, pattern?: RegExp) {
  let caught: unknown;
  assert.throws(fn, (e: unknown) => {
    caught = e;
    return (
      e instanceof HandshakeError &&
      e.code === code &&
      e.httpStatus === status &&
      (pattern === undefined || pattern.test(e.message))
    );
  });
  return caught as HandshakeError;
}

function expectInvalidArgument(fn: () => unknown) {
  assert.throws(
    fn,
    (e: unknown) => e instanceof StateError && e.code === "WS_ERR_INVALID_ARGUMENT",
  );
}

/** The RFC 6455 §1.2 sample request, as header pairs. */
function sampleHeaders(): [string, string][] {
  return [
    ["Host", "server.example.com"],
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Key", KEY],
    ["Origin", "http://example.com"],
    ["Sec-WebSocket-Protocol", "chat, superchat"],
    ["Sec-WebSocket-Version", "13"],
  ];
}

function request(overrides: Partial<HttpRequestHead> = {}, drop: string[] = []): HttpRequestHead {
  const headers = sampleHeaders().filter(([name]) => !drop.includes(name.toLowerCase()));
  return { method: "GET", target: "/chat", httpVersion: "1.1", headers, ...overrides };
}

function withHeader(name: string, value: string, drop = true): HttpRequestHead {
  const req = request({}, drop ? [name.toLowerCase()] : []);
  req.headers.push([name, value]);
  return req;
}

describe("keys (RFC 6455 §1.3, §4.1, §4.2.2)", () => {
  it("§1.3 example: dGhlIHNhbXBsZSBub25jZQ== -> s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", () => {
    assert.equal(acceptKey(KEY), ACCEPT);
  });

  it("§4.1: generateKey base64-encodes 16 bytes from the injected source", () => {
    let asked = 0;
    const key = generateKey((n) => {
      asked = n;
      return new Uint8Array(n).fill(0xff);
    });
    assert.equal(asked, 16);
    assert.equal(key, "/////////////////////w==");
  });

  it("§4.1: the default source (globalThis.crypto) yields fresh 24-char keys", () => {
    const a = generateKey();
    assert.match(a, /^[A-Za-z0-9+/]{22}==$/);
    assert.notEqual(a, generateKey());
  });

  it("rejects a random source that does not return 16 bytes", () => {
    expectInvalidArgument(() => generateKey(() => new Uint8Array(15)));
  });
});

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

describe("buildAcceptResponse / buildRejectResponse (RFC 6455 §4.2.2)", () => {
  it("§4.2.2 item 5: the 101 response for the §1.3 key", () => {
    assert.equal(
      buildAcceptResponse({ key: KEY }),
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`,
    );
  });

  it("adds the chosen subprotocol, extensions and custom headers", () => {
    const text = buildAcceptResponse({
      key: KEY,
      protocol: "chat",
      extensions: parseExtensions("permessage-deflate; server_max_window_bits=10"),
      headers: [
        ["Set-Cookie", "a=1"],
        ["Set-Cookie", "b=2"],
      ],
    });
    assert.ok(
      text.endsWith(
        "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
      ),
    );
  });

  it("refuses header injection, invalid names, managed headers and non-token subprotocols", () => {
    expectInvalidArgument(() =>
      buildAcceptResponse({ key: KEY, headers: { "X-A": "1\r\nInjected: 1" } }),
    );
    expectInvalidArgument(() => buildAcceptResponse({ key: KEY, headers: { "X A": "1" } }));
    expectInvalidArgument(() =>
      buildAcceptResponse({ key: KEY, headers: { "sec-websocket-accept": "x" } }),
    );
    expectInvalidArgument(() => buildAcceptResponse({ key: KEY, protocol: "a b" }));
  });

  it("builds a plain-text refusal with Connection: close and a UTF-8 Content-Length", () => {
    assert.equal(
      buildRejectResponse(426, "Unsupported version ✓", { "Sec-WebSocket-Version": "13" }),
      "HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\nSec-WebSocket-Version: 13\r\n\r\nUnsupported version ✓",
    );
    assert.match(
      buildRejectResponse(418, ""),
      /^HTTP\/1\.1 418 Error\r\n[\s\S]*Content-Length: 0\r\n\r\n$/,
    );
    expectInvalidArgument(() => buildRejectResponse(101, "x"));
    expectInvalidArgument(() => buildRejectResponse(400, "x", { "Content-Length": "0" }));
  });

  it("a HandshakeError maps straight onto a refusal", () => {
    const e = expectHandshakeError(
      () => validateRequest(request({ method: "PUT" })),
      "WS_ERR_HANDSHAKE_METHOD",
      405,
    );
    assert.match(
      buildRejectResponse(e.httpStatus, e.message, e.headers),
      /^HTTP\/1\.1 405 Method Not Allowed\r\n[\s\S]*Allow: GET\r\n/,
    );
  });
});

describe("client side (RFC 6455 §4.1)", () => {
  it("buildRequest writes the §4.1 request", () => {
    assert.equal(
      buildRequest({
        host: "server.example.com",
        path: "/chat",
        key: KEY,
        protocols: ["chat", "superchat"],
        origin: "http://example.com",
        extensions: parseExtensions("permessage-deflate; client_max_window_bits"),
        headers: { "User-Agent": "duplex" },
      }),
      `GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nOrigin: http://example.com\r\nUser-Agent: duplex\r\n\r\n`,
    );
  });

  it("buildRequest refuses invalid or repeated subprotocols, CR/LF in values, bad host/path/key", () => {
    const base = { host: "h", path: "/", key: KEY };
    expectInvalidArgument(() => buildRequest({ ...base, protocols: ["a", "a"] }));
    expectInvalidArgument(() => buildRequest({ ...base, protocols: ["a b"] }));
    expectInvalidArgument(() => buildRequest({ ...base, protocols: [""] }));
    expectInvalidArgument(() => buildRequest({ ...base, headers: { X: "a\r\nHost: evil" } }));
    expectInvalidArgument(() => buildRequest({ ...base, headers: { X: "a\nb" } }));
    expectInvalidArgument(() => buildRequest({ ...base, headers: { Host: "other" } }));
    expectInvalidArgument(() => buildRequest({ ...base, origin: "a\r\nb" }));
    expectInvalidArgument(() => buildRequest({ ...base, host: "h\r\nX: 1" }));
    expectInvalidArgument(() => buildRequest({ ...base, path: "chat" }));
    expectInvalidArgument(() => buildRequest({ ...base, path: "/a b" }));
    expectInvalidArgument(() => buildRequest({ ...base, key: "short" }));
  });

  function response(headers: [string, string][], status = 101): HttpResponseHead {
    return { httpVersion: "1.1", status, reason: "", headers };
  }
  const good = (): [string, string][] => [
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Accept", ACCEPT],
  ];
  const offered = {
    key: KEY,
    protocols: ["chat", "superchat"],
    extensions: parseExtensions("permessage-deflate"),
  };
  const without = (name: string) => good().filter(([n]) => n !== name);

  it("accepts a valid 101 and returns the protocol and extensions", () => {
    assert.deepEqual(validateResponse(response(good()), offered), {
      protocol: undefined,
      extensions: [],
    });
    const res = response([
      ...good(),
      ["Sec-WebSocket-Protocol", "chat"],
      ["Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=10"],
    ]);
    assert.deepEqual(validateResponse(res, offered), {
      protocol: "chat",
      extensions: parseExtensions("permessage-deflate; server_max_window_bits=10"),
    });
    assert.ok(
      validateResponse(
        response([
          ["upgrade", "WebSocket"],
          ["connection", "keep-alive, upgrade"],
          ["sec-websocket-accept", ACCEPT],
        ]),
        offered,
      ),
    );
  });

  it("item 1: a non-101 status -> WS_ERR_HANDSHAKE_STATUS carrying that status", () => {
    expectHandshakeError(
      () => validateResponse(response(good(), 404), offered),
      "WS_ERR_HANDSHAKE_STATUS",
      404,
    );
    expectHandshakeError(
      () => validateResponse(response(good(), 200), offered),
      "WS_ERR_HANDSHAKE_STATUS",
      200,
    );
  });

  it("item 2: Upgrade missing or not exactly websocket -> 502", () => {
    expectHandshakeError(
      () => validateResponse(response(without("Upgrade")), offered),
      "WS_ERR_HANDSHAKE_UPGRADE",
      502,
    );
    expectHandshakeError(
      () =>
        validateResponse(response([...without("Upgrade"), ["Upgrade", "websocket, h2c"]]), offered),
      "WS_ERR_HANDSHAKE_UPGRADE",
      502,
    );
  });

  it("item 2: Upgrade compared ASCII case-insensitively only", () => {
    expectHandshakeError(
      () =>
        validateResponse(response([...without("Upgrade"), ["Upgrade", "websoc\u212Aet"]]), offered),
      "WS_ERR_HANDSHAKE_UPGRADE",
      502,
    );
  });

  it("item 3: Connection missing or without upgrade -> 502", () => {
    expectHandshakeError(
      () => validateResponse(response(without("Connection")), offered),
      "WS_ERR_HANDSHAKE_CONNECTION",
      502,
    );
    expectHandshakeError(
      () =>
        validateResponse(response([...without("Connection"), ["Connection", "close"]]), offered),
      "WS_ERR_HANDSHAKE_CONNECTION",
      502,
    );
  });

  it("item 4: Sec-WebSocket-Accept missing, wrong or repeated -> 502", () => {
    expectHandshakeError(
      () => validateResponse(response(without("Sec-WebSocket-Accept")), offered),
      "WS_ERR_HANDSHAKE_ACCEPT",
      502,
    );
    expectHandshakeError(
      () => validateResponse(response(good()), { key: "AAAAAAAAAAAAAAAAAAAAAA==" }),
      "WS_ERR_HANDSHAKE_ACCEPT",
      502,
    );
    expectHandshakeError(
      () => validateResponse(response([...good(), ["Sec-WebSocket-Accept", ACCEPT]]), offered),
      "WS_ERR_HANDSHAKE_ACCEPT",
      502,
    );
  });

  it("item 5: extensions not offered, accepted twice or unparsable -> 502", () => {
    for (const value of ["foo", "permessage-deflate, permessage-deflate", "permessage-deflate;"]) {
      expectHandshakeError(
        () => validateResponse(response([...good(), ["Sec-WebSocket-Extensions", value]]), offered),
        "WS_ERR_HANDSHAKE_EXTENSION",
        502,
      );
    }
    expectHandshakeError(
      () =>
        validateResponse(
          response([...good(), ["Sec-WebSocket-Extensions", "permessage-deflate"]]),
          { key: KEY },
        ),
      "WS_ERR_HANDSHAKE_EXTENSION",
      502,
    );
  });

  it("item 6: a subprotocol not offered, several, or unparsable -> 502", () => {
    for (const value of ["other", "chat, superchat", "", "chat;"]) {
      expectHandshakeError(
        () => validateResponse(response([...good(), ["Sec-WebSocket-Protocol", value]]), offered),
        "WS_ERR_HANDSHAKE_SUBPROTOCOL",
        502,
      );
    }
    expectHandshakeError(
      () =>
        validateResponse(response([...good(), ["Sec-WebSocket-Protocol", "chat"]]), { key: KEY }),
      "WS_ERR_HANDSHAKE_SUBPROTOCOL",
      502,
    );
  });

  it("property: arbitrary response headers give a result or a HandshakeError", () => {
    const names = fc.constantFrom(
      "Upgrade",
      "Connection",
      "Sec-WebSocket-Accept",
      "Sec-WebSocket-Protocol",
      "Sec-WebSocket-Extensions",
    );
    const values = fc.oneof(
      fc.string(),
      fc.constantFrom("websocket", "Upgrade", ACCEPT, "chat", "permessage-deflate"),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(names, values), { maxLength: 8 }),
        fc.constantFrom(101, 101, 200, 302),
        (headers, status) => {
          try {
            validateResponse(response(headers, status), offered);
          } catch (e) {
            assert.ok(e instanceof HandshakeError, String(e));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("end to end: buildRequest -> parse -> validateRequest -> buildAcceptResponse -> parse -> validateResponse", () => {
    const key = generateKey();
    const text = buildRequest({
      host: "localhost:8080",
      path: "/ws?x=1",
      key,
      protocols: ["chat"],
      extensions: parseExtensions("permessage-deflate"),
    });
    const req = parseHttpHead(bytes(text), DEFAULT_LIMITS, "request")!;
    const validated = validateRequest(req.head);
    assert.equal(validated.path, "/ws?x=1");
    const answer = buildAcceptResponse({
      key: validated.key,
      protocol: validated.protocols[0]!,
      extensions: validated.extensions,
    });
    const res = parseHttpHead(bytes(answer), DEFAULT_LIMITS, "response")!;
    assert.equal(getHeader(res.head.headers, "SEC-WEBSOCKET-ACCEPT"), acceptKey(key));
    assert.deepEqual(
      validateResponse(res.head, {
        key,
        protocols: ["chat"],
        extensions: parseExtensions("permessage-deflate"),
      }),
      {
        protocol: "chat",
        extensions: parseExtensions("permessage-deflate"),
      },
    );
  });
});
