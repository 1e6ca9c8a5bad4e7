/**
 * `Sec-WebSocket-Protocol` (RFC 6455 §4.1, §4.2.1 item 8, §11.3.4): `1#token` with optional
 * whitespace around the commas (RFC 7230 §7). Also home of the RFC 7230 §3.2.6 `tchar` table
 * shared by the other header parsers of the core.
 *
 * All parsers here are single forward passes over char codes: no regular expressions, so no
 * backtracking and no super-linear behaviour on hostile input.
 */
import { HandshakeError } from "./errors.js";

/** RFC 7230 §3.2.6: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 *  "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. Indexed by char code (< 128). */
const TCHAR: Uint8Array = (() => {
  const table = new Uint8Array(128);
  for (const ch of "!#$%&'*+-.^_`|~") table[ch.charCodeAt(0)] = 1;
  for (let c = 0x30; c <= 0x39; c++) table[c] = 1; // 0-9
  for (let c = 0x41; c <= 0x5a; c++) table[c] = 1; // A-Z
  for (let c = 0x61; c <= 0x7a; c++) table[c] = 1; // a-z
  return table;
})();

/** Whether `code` (a UTF-16 code unit) is an RFC 7230 `tchar`. */
export function isTokenChar(code: number): boolean {
  return code < 128 && TCHAR[code] === 1;
}

/** Whether `value` is an RFC 7230 `token` (1*tchar). */
export function isToken(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    if (!isTokenChar(value.charCodeAt(i))) return false;
  }
  return true;
}

/** RFC 7230 §3.2.3: OWS = *( SP / HTAB ). */
export function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** Index of the first non-OWS code unit at or after `i`. */
export function skipOws(value: string, i: number): number {
  while (i < value.length && isOws(value.charCodeAt(i))) i++;
  return i;
}

/** Index just past the run of `tchar`s starting at `i` (`i` itself when there is none). */
export function scanToken(value: string, i: number): number {
  while (i < value.length && isTokenChar(value.charCodeAt(i))) i++;
  return i;
}

/** Describe the code unit at `i` for error messages, without echoing control characters. */
export function describeChar(value: string, i: number): string {
  if (i >= value.length) return "end of input";
  const code = value.charCodeAt(i);
  return code > 0x20 && code < 0x7f
    ? `"${value[i]!}"`
    : `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
}

function fail(message: string): never {
  throw new HandshakeError("WS_ERR_HANDSHAKE_SUBPROTOCOL", 400, message);
}

/**
 * Parse a `Sec-WebSocket-Protocol` value into its subprotocol names, in order.
 * Several header lines may be passed joined with ", " (RFC 7230 §3.2.2).
 *
 * Throws {@link HandshakeError} (400, `WS_ERR_HANDSHAKE_SUBPROTOCOL`) naming the element index
 * and character position when an element is empty, is not a token, or repeats an earlier one
 * (RFC 6455 §4.1: the values "MUST all be unique strings"; compared case-sensitively).
 */
export function parseSubprotocols(value: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const n = value.length;
  let i = 0;
  for (let element = 0; ; element++) {
    i = skipOws(value, i);
    const start = i;
    i = scanToken(value, i);
    if (i === start) {
      const code = value.charCodeAt(i);
      if (i === n || code === 0x2c) {
        fail(`Sec-WebSocket-Protocol: empty element at index ${element} (position ${i})`);
      }
      fail(
        `Sec-WebSocket-Protocol: element ${element} starts with invalid character ` +
          `${describeChar(value, i)} at position ${i}`,
      );
    }
    const name = value.slice(start, i);
    if (seen.has(name)) {
      fail(`Sec-WebSocket-Protocol: duplicate subprotocol "${name}" at index ${element}`);
    }
    seen.add(name);
    out.push(name);
    i = skipOws(value, i);
    if (i === n) return out;
    if (value.charCodeAt(i) !== 0x2c) {
      fail(
        `Sec-WebSocket-Protocol: invalid character ${describeChar(value, i)} in element ` +
          `${element} at position ${i}`,
      );
    }
    i++; // ","
  }
}
