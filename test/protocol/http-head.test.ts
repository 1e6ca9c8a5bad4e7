import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HandshakeError } from "../../src/protocol/errors.js";
import { HttpHeadParser, parseHttpHead } from "../../src/protocol/http-head.js";
import { DEFAULT_LIMITS, resolveLimits } from "../../src/protocol/limits.js";
import {
  bytes,
  expectHandshakeError,
  expectInvalidArgument,
  KEY,
  sampleHeaders,
} from "./handshake-helpers.js";

const SAMPLE_REQUEST = [
  "GET /chat HTTP/1.1",
  "Host: server.example.com",
  "Upgrade: websocket",
  "Connection: Upgrade",
  `Sec-WebSocket-Key: ${KEY}`,
  "Origin: http://example.com",
  "Sec-WebSocket-Protocol: chat, superchat",
  "Sec-WebSocket-Version: 13",
  "",
  "",
].join("\r\n");

describe("parseHttpHead (RFC 7230 §3)", () => {
  it("parses the RFC 6455 §1.2 request and reports bytesConsumed", () => {
    const frames = "\x81\x05hello";
    const parsed = parseHttpHead(bytes(SAMPLE_REQUEST + frames), DEFAULT_LIMITS, "request");
    assert.ok(parsed);
    assert.equal(parsed.bytesConsumed, SAMPLE_REQUEST.length);
    assert.deepEqual(parsed.head, {
      method: "GET",
      target: "/chat",
      httpVersion: "1.1",
      headers: sampleHeaders().map(([n, v]) => [n, v]),
    });
  });

  it("returns null until the empty line arrives", () => {
    for (const cut of [0, 1, 10, SAMPLE_REQUEST.length - 3, SAMPLE_REQUEST.length - 1]) {
      assert.equal(
        parseHttpHead(bytes(SAMPLE_REQUEST.slice(0, cut)), DEFAULT_LIMITS, "request"),
        null,
      );
    }
  });

  it("1 byte at a time gives the same head (stateless re-calls and HttpHeadParser)", () => {
    const input = bytes(`${SAMPLE_REQUEST}\x88\x00`);
    const whole = parseHttpHead(input, DEFAULT_LIMITS, "request");
    const parser = HttpHeadParser.request(DEFAULT_LIMITS);
    for (let n = 1; n <= input.length; n++) {
      const again = parseHttpHead(input.subarray(0, n), DEFAULT_LIMITS, "request");
      const pushed = parser.push(input.subarray(n - 1, n));
      if (n < SAMPLE_REQUEST.length) {
        assert.equal(again, null);
        assert.equal(pushed, null);
      } else {
        assert.deepEqual(again, whole);
        assert.deepEqual(pushed, { head: whole!.head, rest: new Uint8Array(0) });
        break;
      }
    }
    expectInvalidArgument(() => parser.push(new Uint8Array(1)));
  });

  it("HttpHeadParser keeps the bytes after the head (the first frames)", () => {
    const parser = HttpHeadParser.request(DEFAULT_LIMITS);
    assert.equal(parser.push(bytes(SAMPLE_REQUEST.slice(0, 30))), null);
    const done = parser.push(bytes(`${SAMPLE_REQUEST.slice(30)}\x81\x00\x89\x00`));
    assert.deepEqual(done?.rest, Uint8Array.of(0x81, 0x00, 0x89, 0x00));
  });

  it("trims OWS around values, keeps empty values and obs-text as ISO-8859-1", () => {
    const head = "GET / HTTP/1.1\r\nA: \t x y \t\r\nB:\r\nC: caf\xe9\r\n\r\n";
    const parsed = parseHttpHead(bytes(head), DEFAULT_LIMITS, "request");
    assert.deepEqual(parsed?.head.headers, [
      ["A", "x y"],
      ["B", ""],
      ["C", "caf\u00e9"],
    ]);
  });

  it("parses a status line, with or without a reason phrase", () => {
    const ok = parseHttpHead(
      bytes("HTTP/1.1 101 Switching Protocols\r\nX: 1\r\n\r\n"),
      DEFAULT_LIMITS,
      "response",
    );
    assert.deepEqual(ok?.head, {
      httpVersion: "1.1",
      status: 101,
      reason: "Switching Protocols",
      headers: [["X", "1"]],
    });
    const bare = parseHttpHead(bytes("HTTP/1.1 404\r\n\r\n"), DEFAULT_LIMITS, "response");
    assert.equal(bare?.head.status, 404);
    assert.equal(bare?.head.reason, "");
  });

  const malformed: [string, string][] = [
    ["bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n"],
    ["bare LF ending", "GET / HTTP/1.1\r\nHost: a\n\n"],
    ["bare CR", "GET / HTTP/1.1\rHost: a\r\n\r\n"],
    ["obs-fold (§3.2.4)", "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n"],
    ["whitespace before colon (§3.2.4)", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"],
    ["missing colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n"],
    ["empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n"],
    ["non-token name", "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n"],
    ["NUL in value", "GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n"],
    ["DEL in value", "GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n"],
    ["empty request line", "\r\n\r\n"],
    ["leading empty line", "\r\nGET / HTTP/1.1\r\n\r\n"],
    ["double space", "GET  / HTTP/1.1\r\n\r\n"],
    ["missing version", "GET /\r\n\r\n"],
    ["bad version", "GET / HTTP/1.10\r\n\r\n"],
    ["lowercase version", "GET / http/1.1\r\n\r\n"],
    ["space in target", "GET /a b HTTP/1.1\r\n\r\n"],
    ["non-token method", "G(T / HTTP/1.1\r\n\r\n"],
  ];
  for (const [what, head] of malformed) {
    it(`400 on ${what}`, () => {
      expectHandshakeError(
        () => parseHttpHead(bytes(head), DEFAULT_LIMITS, "request"),
        "WS_ERR_HANDSHAKE_MALFORMED",
        400,
      );
    });
  }

  it("400 on malformed status lines", () => {
    for (const line of [
      "HTTP/1.1 1010 X",
      "HTTP/1.1 10 X",
      "HTTP/1.1 abc X",
      "HTTP/1.1  101",
      "HTTP/1.1 101X",
      "HTTP/1.1 601 X",
      "HTTP/11 101 X",
      "ICY 200 OK",
    ]) {
      expectHandshakeError(
        () => parseHttpHead(bytes(`${line}\r\n\r\n`), DEFAULT_LIMITS, "response"),
        "WS_ERR_HANDSHAKE_MALFORMED",
        400,
      );
    }
  });

  it("431 as soon as maxHandshakeBytes arrived without the end of the head", () => {
    const limits = resolveLimits({ maxHandshakeBytes: 512 });
    const start = "GET / HTTP/1.1\r\nX: ";
    const fits = `${start}${"a".repeat(512 - start.length - 4)}\r\n\r\n`;
    assert.equal(fits.length, 512);
    assert.ok(parseHttpHead(bytes(`${fits}extra bytes`), limits, "request"));
    // One byte more and the head cannot fit: refused with only 512 bytes received, no end seen.
    const tooLong = `${start}${"a".repeat(512 - start.length)}`;
    expectHandshakeError(
      () => parseHttpHead(bytes(tooLong), limits, "request"),
      "WS_ERR_HANDSHAKE_HEADERS_TOO_LARGE",
      431,
    );
    assert.equal(parseHttpHead(bytes(tooLong.slice(0, -1)), limits, "request"), null);
    const parser = HttpHeadParser.request(limits);
    assert.equal(parser.push(bytes(tooLong.slice(0, 300))), null);
    expectHandshakeError(
      () => parser.push(bytes(tooLong.slice(300))),
      "WS_ERR_HANDSHAKE_HEADERS_TOO_LARGE",
      431,
    );
  });

  it("431 on more than maxHeaderCount fields, even before the head ends", () => {
    const limits = resolveLimits({ maxHeaderCount: 4 });
    const head = (n: number) => `GET / HTTP/1.1\r\n${"X: 1\r\n".repeat(n)}`;
    assert.equal(parseHttpHead(bytes(`${head(4)}\r\n`), limits, "request")?.head.headers.length, 4);
    expectHandshakeError(
      () => parseHttpHead(bytes(head(5)), limits, "request"),
      "WS_ERR_HANDSHAKE_HEADERS_TOO_LARGE",
      431,
    );
  });

  it("a 16 KiB head of one long header line parses (linear scan)", () => {
    const head = `GET / HTTP/1.1\r\nX: ${"a".repeat(16_000)}\r\n\r\n`;
    assert.equal(
      parseHttpHead(bytes(head), DEFAULT_LIMITS, "request")?.head.headers[0]?.[1].length,
      16_000,
    );
  });

  it("property: any split of the input into chunks gives the same result", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 60 }), (sizes) => {
        const input = bytes(`${SAMPLE_REQUEST}tail`);
        const parser = HttpHeadParser.request(DEFAULT_LIMITS);
        let at = 0;
        let result = null;
        for (const size of [...sizes, input.length]) {
          const chunk = input.subarray(at, Math.min(input.length, at + size));
          at += chunk.length;
          result = parser.push(chunk);
          if (result !== null) break;
          assert.equal(parseHttpHead(input.subarray(0, at), DEFAULT_LIMITS, "request"), null);
        }
        // rest = what arrived after the head so far; the remainder is still unsent.
        const rest = [...(result?.rest ?? []), ...input.subarray(at)];
        assert.deepEqual(Uint8Array.from(rest), bytes("tail"));
        assert.deepEqual(result?.head, parseHttpHead(input, DEFAULT_LIMITS, "request")?.head);
      }),
    );
  });

  it("property: arbitrary bytes give null, a head, or a HandshakeError (400/431)", () => {
    const limits = resolveLimits({ maxHandshakeBytes: 512, maxHeaderCount: 4 });
    const piece = fc.constantFrom(
      "GET / HTTP/1.1",
      "HTTP/1.1 101 OK",
      "\r\n",
      "\r",
      "\n",
      "X: y",
      " ",
      ":",
      "\x00",
    );
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.array(piece, { maxLength: 40 }).map((p) => bytes(p.join(""))),
    );
    fc.assert(
      fc.property(input, fc.constantFrom("request" as const, "response" as const), (data, kind) => {
        try {
          const parsed =
            kind === "request"
              ? parseHttpHead(data, limits, kind)
              : parseHttpHead(data, limits, kind);
          if (parsed !== null) assert.ok(parsed.bytesConsumed <= 512);
        } catch (e) {
          assert.ok(e instanceof HandshakeError, String(e));
          assert.ok(e.httpStatus === 400 || e.httpStatus === 431);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
