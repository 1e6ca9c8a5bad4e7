/**
 * Incremental HTTP/1.1 head parser (RFC 7230 §3) and ASCII case-insensitive header helpers,
 * sans-I/O. Used by the RFC 6455 opening handshake (handshake.ts); limits and status codes:
 * docs/handshake.md.
 *
 * parseVersion, isFieldValue, isVchars, asciiLower and equalsAsciiCi are exported for
 * handshake.ts only; index.ts does not re-export them (handshake.ts re-exports the public names).
 */
import { HandshakeError, StateError } from "./errors.js";
import type { Limits } from "./limits.js";
import { isOws, isToken } from "./subprotocol-header.js";

/** Header fields in wire order; names keep their original case. */
export type HeaderList = readonly (readonly [name: string, value: string])[];

export interface HttpRequestHead {
  method: string;
  /** request-target as sent, e.g. `/chat?room=1`. */
  target: string;
  /** e.g. "1.1" (same form as Node's `IncomingMessage.httpVersion`). */
  httpVersion: string;
  headers: [string, string][];
}

export interface HttpResponseHead {
  httpVersion: string;
  status: number;
  reason: string;
  headers: [string, string][];
}

// ---------------------------------------------------------------------------------------------
// Incremental HTTP/1.1 head parser (RFC 7230 §3)

const CR = 0x0d;
const LF = 0x0a;

function malformed(message: string): HandshakeError {
  return new HandshakeError("WS_ERR_HANDSHAKE_MALFORMED", 400, message);
}

function tooLarge(message: string): HandshakeError {
  return new HandshakeError("WS_ERR_HANDSHAKE_HEADERS_TOO_LARGE", 431, message);
}

interface ScanState {
  /** Next byte to examine; everything before it has been checked. */
  pos: number;
  /** Line terminators seen so far (request/status line + header lines). */
  lines: number;
}

/**
 * Look for the CRLFCRLF ending the head, resuming at `state.pos`. Returns the index just past
 * it, or -1 when more bytes are needed. Each byte is examined once over all calls.
 */
function scanHead(bytes: Uint8Array, n: number, state: ScanState, limits: Limits): number {
  const max = limits.maxHandshakeBytes;
  const end = Math.min(n, max);
  let i = state.pos;
  for (; i < end; i++) {
    const b = bytes[i];
    if (b === LF) {
      if (i === 0 || bytes[i - 1] !== CR) throw malformed(`Bare LF at byte ${i}: CRLF required`);
      // The LF at i-2 was itself checked to follow a CR, so this is CR LF CR LF.
      if (i >= 3 && bytes[i - 2] === LF) return i + 1;
      if (++state.lines > limits.maxHeaderCount + 1) {
        throw tooLarge(`More than ${limits.maxHeaderCount} header fields`);
      }
    } else if (b === CR) {
      if (i + 1 >= n) break; // need the next byte to judge this CR
      if (bytes[i + 1] !== LF) throw malformed(`Bare CR at byte ${i}: CRLF required`);
    }
  }
  state.pos = i;
  if (n >= max) throw tooLarge(`Handshake head exceeds ${max} bytes`);
  return -1;
}

/** Bytes as ISO-8859-1 (one code unit per byte), as HTTP header octets are defined. */
function latin1(bytes: Uint8Array, end: number): string {
  let out = "";
  for (let i = 0; i < end; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, Math.min(end, i + 8192)));
  }
  return out;
}

/** RFC 7230 §3.2: field-value octets; any CTL except HTAB (NUL, CR, LF, DEL...) is refused. */
export function isFieldValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

/** Printable ASCII only (RFC 3986 URI characters are a subset). */
export function isVchars(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isOws(value.charCodeAt(start))) start++;
  while (end > start && isOws(value.charCodeAt(end - 1))) end--;
  return value.slice(start, end);
}

/** "HTTP/1.1" -> "1.1"; undefined unless exactly `HTTP/` DIGIT `.` DIGIT (RFC 7230 §2.6). */
export function parseVersion(token: string): string | undefined {
  if (token.length !== 8 || !token.startsWith("HTTP/") || token[6] !== ".") return undefined;
  const major = token.charCodeAt(5);
  const minor = token.charCodeAt(7);
  const digit = (c: number) => c >= 0x30 && c <= 0x39;
  return digit(major) && digit(minor) ? token.slice(5) : undefined;
}

function parseStartLine(line: string, kind: "request" | "response") {
  if (kind === "request") {
    // request-line = method SP request-target SP HTTP-version
    const sp1 = line.indexOf(" ");
    const sp2 = sp1 < 0 ? -1 : line.indexOf(" ", sp1 + 1);
    const method = line.slice(0, sp1);
    const target = line.slice(sp1 + 1, sp2);
    const version = sp2 < 0 ? undefined : parseVersion(line.slice(sp2 + 1));
    if (sp2 < 0 || !isToken(method) || !isVchars(target) || version === undefined) {
      throw malformed("Malformed request line");
    }
    return { method, target, httpVersion: version };
  }
  // status-line = HTTP-version SP status-code SP reason-phrase (a missing " reason" tolerated)
  const version = parseVersion(line.slice(0, 8));
  const code = line.slice(9, 12);
  let status = 0;
  let codeOk = code.length === 3;
  for (let i = 0; i < code.length; i++) {
    const digit = code.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9 || (i === 0 && (digit < 1 || digit > 5))) codeOk = false;
    status = status * 10 + digit;
  }
  const rest = line.slice(12);
  if (version === undefined || line[8] !== " " || !codeOk || (rest !== "" && rest[0] !== " ")) {
    throw malformed("Malformed status line");
  }
  const reason = rest.slice(1);
  if (!isFieldValue(reason)) throw malformed("Malformed status line");
  return { httpVersion: version, status, reason };
}

function parseHead(text: string, kind: "request" | "response", limits: Limits) {
  let lineEnd = text.indexOf("\r\n");
  const start = parseStartLine(text.slice(0, lineEnd), kind);
  const headers: [string, string][] = [];
  for (;;) {
    const lineStart = lineEnd + 2;
    lineEnd = text.indexOf("\r\n", lineStart);
    if (lineEnd === lineStart) break; // the empty line ending the head
    const first = text.charCodeAt(lineStart);
    if (isOws(first)) throw malformed("Obsolete line folding is not accepted (RFC 7230 §3.2.4)");
    const colon = text.indexOf(":", lineStart);
    const name = colon < 0 || colon > lineEnd ? "" : text.slice(lineStart, colon);
    if (!isToken(name)) throw malformed(`Malformed header field at line ${headers.length + 2}`);
    const value = trimOws(text.slice(colon + 1, lineEnd));
    if (!isFieldValue(value)) throw malformed(`Invalid character in header "${name}"`);
    if (headers.length === limits.maxHeaderCount) {
      throw tooLarge(`More than ${limits.maxHeaderCount} header fields`);
    }
    headers.push([name, value]);
  }
  return { ...start, headers };
}

export type ParsedHead<H> = { head: H; bytesConsumed: number };

/**
 * Parse an HTTP/1.1 request or response head from the start of `bytes` (all bytes received
 * so far). Returns `null` when the head is not complete yet: call again with more bytes.
 * `bytesConsumed` is the head's length; bytes after it are the first WebSocket frames.
 *
 * Throws {@link HandshakeError}: 431 once `maxHandshakeBytes` bytes arrived without the end
 * of the head or on more than `maxHeaderCount` fields; 400 on a bare CR or LF, obs-fold, a
 * non-token header name, a CTL in a value, or a malformed start line. Linear in
 * `bytes.length`; for many small chunks prefer {@link HttpHeadParser}, which never rescans.
 */
export function parseHttpHead(
  bytes: Uint8Array,
  limits: Limits,
  kind: "request",
): ParsedHead<HttpRequestHead> | null;
export function parseHttpHead(
  bytes: Uint8Array,
  limits: Limits,
  kind: "response",
): ParsedHead<HttpResponseHead> | null;
export function parseHttpHead(
  bytes: Uint8Array,
  limits: Limits,
  kind: "request" | "response",
): ParsedHead<HttpRequestHead | HttpResponseHead> | null {
  return finish(bytes, scanHead(bytes, bytes.length, { pos: 0, lines: 0 }, limits), limits, kind);
}

function finish<H>(bytes: Uint8Array, end: number, limits: Limits, kind: "request" | "response") {
  if (end < 0) return null;
  const head = parseHead(latin1(bytes, end), kind, limits) as H;
  return { head, bytesConsumed: end };
}

/**
 * Stateful variant of {@link parseHttpHead}: feed chunks as they arrive; each byte is
 * scanned once, so a peer trickling one byte at a time costs linear time overall.
 */
export class HttpHeadParser<H extends HttpRequestHead | HttpResponseHead> {
  #buffer = new Uint8Array(256);
  #length = 0;
  #state: ScanState = { pos: 0, lines: 0 };
  #done = false;

  private constructor(
    private readonly kind: "request" | "response",
    private readonly limits: Limits,
  ) {}

  static request(limits: Limits): HttpHeadParser<HttpRequestHead> {
    return new HttpHeadParser<HttpRequestHead>("request", limits);
  }

  static response(limits: Limits): HttpHeadParser<HttpResponseHead> {
    return new HttpHeadParser<HttpResponseHead>("response", limits);
  }

  /** Returns the head and the bytes received after it once complete, else `null`. */
  push(chunk: Uint8Array): { head: H; rest: Uint8Array } | null {
    if (this.#done) throw new StateError("WS_ERR_INVALID_ARGUMENT", "Head already parsed");
    if (this.#length + chunk.length > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(this.#buffer.length * 2, this.#length + chunk.length));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    this.#buffer.set(chunk, this.#length);
    this.#length += chunk.length;
    const end = scanHead(this.#buffer, this.#length, this.#state, this.limits);
    const parsed = finish<H>(this.#buffer, end, this.limits, this.kind);
    if (parsed === null) return null;
    this.#done = true;
    return { head: parsed.head, rest: this.#buffer.slice(end, this.#length) };
  }
}

// ---------------------------------------------------------------------------------------------
// Header helpers

/** Lowercase A-Z only: String#toLowerCase would also fold e.g. U+212A KELVIN SIGN to "k". */
export function asciiLower(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) {
      return value.replace(/[A-Z]/g, (ch) => String.fromCharCode(ch.charCodeAt(0) + 0x20));
    }
  }
  return value; // already lowercase: no regex, no new string
}

/** ASCII case-insensitive equality with `lower`, which is lowercase already. */
export function equalsAsciiCi(value: string, lower: string): boolean {
  if (value.length !== lower.length) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a ? c + 0x20 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Values of every field named `name` (ASCII case-insensitive), in order. */
export function headerValues(headers: HeaderList, name: string): string[] {
  const wanted = asciiLower(name);
  const out: string[] = [];
  for (const [key, value] of headers) if (equalsAsciiCi(key, wanted)) out.push(value);
  return out;
}

/** Combined value of the fields named `name`, joined by ", " (RFC 7230 §3.2.2). */
export function getHeader(headers: HeaderList, name: string): string | undefined {
  const wanted = asciiLower(name);
  let found: string | undefined;
  for (const [key, value] of headers) {
    if (equalsAsciiCi(key, wanted)) found = found === undefined ? value : `${found}, ${value}`;
  }
  return found;
}

/** Whether the comma-separated `value` has an element equal to `token`, ASCII case-insensitive. */
export function listHasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  const wanted = asciiLower(token);
  for (const part of value.split(",")) if (equalsAsciiCi(trimOws(part), wanted)) return true;
  return false;
}
