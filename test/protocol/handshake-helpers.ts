/** Shared fixtures for the handshake and HTTP-head tests (RFC 6455 §1.2, §1.3). */

import assert from "node:assert/strict";
import { HandshakeError, StateError } from "../../src/protocol/errors.js";
import type { HttpRequestHead } from "../../src/protocol/http-head.js";

export const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
export const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
export const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

export function expectHandshakeError(
  fn: () => unknown,
  code: string,
  status: number,
  pattern?: RegExp,
) {
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

export function expectInvalidArgument(fn: () => unknown) {
  assert.throws(
    fn,
    (e: unknown) => e instanceof StateError && e.code === "WS_ERR_INVALID_ARGUMENT",
  );
}

/** The RFC 6455 §1.2 sample request, as header pairs. */
export function sampleHeaders(): [string, string][] {
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

/** The §1.2 sample request head, with fields overridden and headers (lower-case names) dropped. */
export function request(
  overrides: Partial<HttpRequestHead> = {},
  drop: string[] = [],
): HttpRequestHead {
  const headers = sampleHeaders().filter(([name]) => !drop.includes(name.toLowerCase()));
  return { method: "GET", target: "/chat", httpVersion: "1.1", headers, ...overrides };
}
