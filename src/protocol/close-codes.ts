import { ProtocolError, StateError } from "./errors.js";
import { isValidUtf8, utf8ByteLength } from "./utf8.js";

/**
 * Close status codes (RFC 6455 §7.4, IANA "WebSocket Close Code Number Registry", §11.7) and
 * the Close frame body: a 2-byte big-endian code followed by a UTF-8 reason (§5.5.1).
 */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Reserved: never on the wire; reported when a Close frame had no body. */
  NO_STATUS: 1005,
  /** Reserved: never on the wire; reported when the connection dropped without a Close frame. */
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
  /** Reserved: never on the wire; reported when the TLS handshake failed. */
  TLS_HANDSHAKE: 1015,
} as const);

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

const encoder = new TextEncoder();
// ignoreBOM: keep a leading U+FEFF, which is part of the peer's reason, not a byte-order mark.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** A control frame body is at most 125 bytes (§5.5); the code takes 2 of them. */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * True when `code` may appear in a Close frame on the wire: 1000-1003, 1007-1014 (the IANA
 * registry's assigned, non-reserved codes) and 3000-4999 (registered libraries/frameworks and
 * private use). Everything else — below 1000, 1004 (reserved), 1005/1006/1015 (local-only),
 * 1016-2999 (reserved for future protocol use) and 5000 or more — is invalid, and receiving it
 * fails the connection with 1002.
 */
export function isValidWireCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code < 3000) return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
  return code <= 4999;
}

/**
 * Body of a Close frame we send. No `code`: empty body (then `reason` must be empty too).
 * Otherwise `code` must be wire-valid ({@link isValidWireCloseCode}) — applications normally
 * use 1000 or 3000-4999; the library itself sends the 1001-1014 codes — and `reason` must be
 * well-formed (no lone surrogates) and at most 123 bytes once UTF-8 encoded.
 *
 * Throws {@link StateError}: WS_ERR_INVALID_CLOSE_CODE_LOCAL for a bad code,
 * WS_ERR_CLOSE_REASON_TOO_LONG for a long reason, WS_ERR_INVALID_ARGUMENT for a reason without
 * a code, a non-string reason or one with lone surrogates.
 */
export function encodeClosePayload(code?: number, reason = ""): Uint8Array {
  if (typeof reason !== "string") {
    throw new StateError("WS_ERR_INVALID_ARGUMENT", "close reason must be a string");
  }
  if (code === undefined) {
    if (reason !== "") {
      throw new StateError(
        "WS_ERR_INVALID_ARGUMENT",
        "a close reason can only be sent with a close code",
      );
    }
    return new Uint8Array(0);
  }
  if (typeof code !== "number" || !isValidWireCloseCode(code)) {
    throw new StateError(
      "WS_ERR_INVALID_CLOSE_CODE_LOCAL",
      `close code ${String(code)} cannot be sent (use 1000 or 3000-4999)`,
    );
  }
  // Measure before encoding, so a huge reason is refused without being encoded.
  const length = utf8ByteLength(reason);
  if (length > MAX_CLOSE_REASON_BYTES) {
    throw new StateError(
      "WS_ERR_CLOSE_REASON_TOO_LONG",
      `close reason is ${length} bytes in UTF-8; at most ${MAX_CLOSE_REASON_BYTES} fit`,
    );
  }
  if (hasLoneSurrogate(reason)) {
    throw new StateError(
      "WS_ERR_INVALID_ARGUMENT",
      "close reason contains a lone surrogate, which has no UTF-8 encoding",
    );
  }
  const out = new Uint8Array(2 + length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  if (length > 0) encoder.encodeInto(reason, out.subarray(2));
  return out;
}

/** A received Close frame's body, decoded. */
export interface ClosePayload {
  /** The peer's code, or 1005 (NO_STATUS) when the body was empty. */
  readonly code: number;
  readonly reason: string;
}

/**
 * Decode a received Close frame body. Returns (does not throw) a {@link ProtocolError} when the
 * body is invalid: 1 byte → WS_ERR_INVALID_CLOSE_PAYLOAD (1002); code not wire-valid →
 * WS_ERR_INVALID_CLOSE_CODE (1002); reason not UTF-8 → WS_ERR_INVALID_UTF8 (1007).
 * An empty body yields `{ code: 1005, reason: "" }`. A leading U+FEFF in the reason is kept.
 */
export function decodeClosePayload(payload: Uint8Array): ClosePayload | ProtocolError {
  const n = payload.length;
  if (n === 0) return { code: CloseCode.NO_STATUS, reason: "" };
  if (n === 1) {
    return new ProtocolError(
      "WS_ERR_INVALID_CLOSE_PAYLOAD",
      CloseCode.PROTOCOL_ERROR,
      "close frame body of 1 byte: a status code takes 2",
    );
  }
  const code = (payload[0]! << 8) | payload[1]!;
  if (!isValidWireCloseCode(code)) {
    return new ProtocolError(
      "WS_ERR_INVALID_CLOSE_CODE",
      CloseCode.PROTOCOL_ERROR,
      `invalid close code ${code}`,
    );
  }
  if (n === 2) return { code, reason: "" };
  if (!isValidUtf8(payload, 2, n)) {
    return new ProtocolError(
      "WS_ERR_INVALID_UTF8",
      CloseCode.INVALID_PAYLOAD,
      "close reason is not valid UTF-8",
    );
  }
  return { code, reason: decoder.decode(payload.subarray(2)) };
}

function hasLoneSurrogate(s: string): boolean {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c >= 0xdc00) return true; // low surrogate without a high one before it
    const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
    if (d < 0xdc00 || d > 0xdfff) return true; // high surrogate without a low one after it
    i++;
  }
  return false;
}
