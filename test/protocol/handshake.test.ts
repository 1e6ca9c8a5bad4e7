import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HandshakeError } from "../../src/protocol/errors.js";
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
import { getHeader, type HttpResponseHead, parseHttpHead } from "../../src/protocol/http-head.js";
import { DEFAULT_LIMITS } from "../../src/protocol/limits.js";
import {
  ACCEPT,
  bytes,
  expectHandshakeError,
  expectInvalidArgument,
  KEY,
  request,
} from "./handshake-helpers.js";

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
