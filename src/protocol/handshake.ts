/**
 * RFC 6455 §4 opening handshake, both roles, sans-I/O: an incremental HTTP/1.1 head parser,
 * request validation and response building (server), request building and response
 * validation (client). Check order and status codes: docs/handshake.md.
 *
 * Client-side failures (validateResponse) carry httpStatus 502 ("invalid answer from the
 * peer"), except WS_ERR_HANDSHAKE_STATUS which carries the status the server sent.
 */
import { HandshakeError, StateError } from "./errors.js";
import { type ExtensionOffer, formatExtensions, parseExtensions } from "./extension-header.js";
import type { Limits } from "./limits.js";
import { base64Decode, base64Encode, sha1 } from "./sha1.js";
import { isOws, isToken, parseSubprotocols } from "./subprotocol-header.js";

export const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Header fields in wire order; names keep their original case. */
export type HeaderList = readonly (readonly [name: string, value: string])[];
/** Extra headers given by the application: an object or an ordered list (allows repeats). */
export type HeaderInput = Readonly<Record<string, string>> | HeaderList;

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

const encoder = new TextEncoder();

/** RFC 6455 §4.2.2 item 5.4: base64(SHA-1(key + GUID)). */
export function acceptKey(key: string): string {
  return base64Encode(sha1(encoder.encode(key + WS_GUID)));
}

type GetRandomValues = (array: Uint8Array) => Uint8Array;

/** RFC 6455 §4.1: 16 random bytes, base64. Defaults to `globalThis.crypto.getRandomValues`. */
export function generateKey(random?: (n: number) => Uint8Array): string {
  let bytes: Uint8Array;
  if (random) {
    bytes = random(16);
  } else {
    const webCrypto = (globalThis as { crypto?: { getRandomValues?: GetRandomValues } }).crypto;
    if (typeof webCrypto?.getRandomValues !== "function") {
      throw new StateError("WS_ERR_INVALID_ARGUMENT", "No random source: pass one to generateKey");
    }
    bytes = webCrypto.getRandomValues(new Uint8Array(16));
  }
  if (!(bytes instanceof Uint8Array) || bytes.length !== 16) {
    throw new StateError("WS_ERR_INVALID_ARGUMENT", "The random source must return 16 bytes");
  }
  return base64Encode(bytes);
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
function isFieldValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

/** Printable ASCII only (RFC 3986 URI characters are a subset). */
function isVchars(value: string): boolean {
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
function parseVersion(token: string): string | undefined {
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
function asciiLower(value: string): string {
  return value.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0x20));
}

/** ASCII case-insensitive equality with `lower`, which is lowercase already. */
function equalsAsciiCi(value: string, lower: string): boolean {
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
  const values = headerValues(headers, name);
  return values.length === 0 ? undefined : values.join(", ");
}

/** Whether the comma-separated `value` has an element equal to `token`, ASCII case-insensitive. */
export function listHasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  const wanted = asciiLower(token);
  for (const part of value.split(",")) if (equalsAsciiCi(trimOws(part), wanted)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Server side

export interface ValidatedRequest {
  key: string;
  host: string;
  origin: string | undefined;
  protocols: string[];
  extensions: ExtensionOffer[];
  /** Path and query of the request-target (absolute-form reduced to them). */
  path: string;
}

function refuse(code: HandshakeError["code"], status: number, message: string): never {
  throw new HandshakeError(code, status, message);
}

/** RFC 3986 host [":" port] characters: unreserved / pct-encoded / sub-delims / ":" "[" "]". */
function isHostValue(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (!alnum && !"-._~%!$&'()*+,;=:[]".includes(value[i]!)) return false;
  }
  return true;
}

const WEB_SCHEMES: ReadonlySet<string> = new Set(["ws", "wss", "http", "https"]);

/** origin-form is kept; absolute-form (RFC 7230 §5.3.2) is reduced to path + query. */
function requestPath(target: string): string | undefined {
  if (!isVchars(target) || target.includes("#")) return undefined; // RFC 6455 §3: no fragment
  if (target.charCodeAt(0) === 0x2f) return target;
  const scheme = target.indexOf("://");
  if (scheme < 0 || !WEB_SCHEMES.has(asciiLower(target.slice(0, scheme)))) return undefined;
  const authorityStart = scheme + 3;
  let i = authorityStart;
  while (i < target.length && target[i] !== "/" && target[i] !== "?") i++;
  if (i === authorityStart) return undefined;
  const rest = target.slice(i);
  return rest === "" ? "/" : rest[0] === "?" ? `/${rest}` : rest;
}

/**
 * Validate an opening-handshake request (RFC 6455 §4.2.1), in this fixed order; the first
 * failure throws {@link HandshakeError} with the status to answer (docs/handshake.md):
 * method (405 + Allow), HTTP version (400; 505 for major >= 2), request-target (400), Host,
 * Upgrade, Connection, Sec-WebSocket-Key (400), Sec-WebSocket-Version (400 missing, 426 other),
 * Sec-WebSocket-Protocol, Sec-WebSocket-Extensions, Origin (400 if repeated). A missing
 * header is a 400, never a crash. Origin is returned, not judged.
 */
export function validateRequest(req: {
  method: string;
  target: string;
  httpVersion: string;
  headers: HeaderList;
}): ValidatedRequest {
  // §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
  if (req.method !== "GET") {
    throw new HandshakeError("WS_ERR_HANDSHAKE_METHOD", 405, "Method must be GET", {
      Allow: "GET",
    });
  }
  const version = parseVersion(`HTTP/${req.httpVersion}`);
  if (version === undefined || version < "1.1") {
    refuse("WS_ERR_HANDSHAKE_HTTP_VERSION", 400, "HTTP/1.1 or higher is required");
  }
  if (version >= "2") {
    refuse("WS_ERR_HANDSHAKE_HTTP_VERSION", 505, `HTTP/${version} is not supported`);
  }
  // §4.2.1 item 1: "including a 'Request-URI'" (RFC 6455 §3 forbids fragments).
  const path = requestPath(req.target);
  if (path === undefined) refuse("WS_ERR_HANDSHAKE_MALFORMED", 400, "Invalid request-target");

  const { headers } = req;
  // §4.2.1 item 2 (and RFC 7230 §5.4: exactly one Host).
  const hosts = headerValues(headers, "host");
  if (hosts.length !== 1 || !isHostValue(hosts[0]!)) {
    refuse("WS_ERR_HANDSHAKE_HOST", 400, "Exactly one valid Host header is required");
  }
  // §4.2.1 item 3.
  if (!listHasToken(getHeader(headers, "upgrade"), "websocket")) {
    refuse("WS_ERR_HANDSHAKE_UPGRADE", 400, 'Upgrade header must include "websocket"');
  }
  // §4.2.1 item 4.
  if (!listHasToken(getHeader(headers, "connection"), "upgrade")) {
    refuse("WS_ERR_HANDSHAKE_CONNECTION", 400, 'Connection header must include "Upgrade"');
  }
  // §4.2.1 item 5: base64 of a 16-byte value, exactly one field.
  const keys = headerValues(headers, "sec-websocket-key");
  if (keys.length !== 1 || base64Decode(keys[0]!)?.length !== 16) {
    refuse("WS_ERR_HANDSHAKE_KEY", 400, "Sec-WebSocket-Key must be one base64 16-byte value");
  }
  // §4.2.1 item 6; §4.2.2 / §4.4: an unsupported version gets 426 + the versions we speak.
  const wsVersion = getHeader(headers, "sec-websocket-version");
  const versionHeader = { "Sec-WebSocket-Version": "13" };
  if (wsVersion === undefined) {
    throw new HandshakeError(
      "WS_ERR_HANDSHAKE_VERSION",
      400,
      "Missing Sec-WebSocket-Version",
      versionHeader,
    );
  }
  if (wsVersion !== "13") {
    throw new HandshakeError(
      "WS_ERR_HANDSHAKE_VERSION",
      426,
      "Unsupported Sec-WebSocket-Version",
      versionHeader,
    );
  }
  // §4.2.1 items 8 and 9 (optional headers); parse errors are 400s.
  const protocolValue = getHeader(headers, "sec-websocket-protocol");
  const protocols = protocolValue === undefined ? [] : parseSubprotocols(protocolValue);
  const extensionValue = getHeader(headers, "sec-websocket-extensions");
  const extensions = extensionValue === undefined ? [] : parseExtensions(extensionValue);
  // §4.2.1 item 7 / §10.2: returned for the application's policy; a repeated field is refused
  // so that no allow-list ever compares against a joined "a, b" value.
  const origins = headerValues(headers, "origin");
  if (origins.length > 1) refuse("WS_ERR_HANDSHAKE_ORIGIN", 400, "Repeated Origin header");

  return { key: keys[0]!, host: hosts[0]!, origin: origins[0], protocols, extensions, path };
}

function headerEntries(headers: HeaderInput | undefined): HeaderList {
  if (headers === undefined) return [];
  return Array.isArray(headers) ? (headers as HeaderList) : Object.entries(headers);
}

/** Append `lines` as "Name: value\r\n", refusing invalid fields and managed names. */
function writeHeaders(lines: string[], managed: Set<string>, headers: HeaderInput | undefined) {
  for (const [name, value] of headerEntries(headers)) {
    if (!isToken(name) || typeof value !== "string" || !isFieldValue(value)) {
      throw new StateError("WS_ERR_INVALID_ARGUMENT", `Invalid header field "${String(name)}"`);
    }
    if (managed.has(asciiLower(name))) {
      throw new StateError("WS_ERR_INVALID_ARGUMENT", `Header "${name}" is set by the handshake`);
    }
    lines.push(`${name}: ${value}\r\n`);
  }
}

function emit(lines: string[], managed: Set<string>, name: string, value: string): void {
  managed.add(asciiLower(name));
  lines.push(`${name}: ${value}\r\n`);
}

/**
 * The 101 response head (RFC 6455 §4.2.2 item 5), ending with the empty line. `protocol` must
 * be one the client offered and `extensions` the accepted responses (caller's job).
 * Custom `headers` may not repeat the handshake's own fields.
 */
export function buildAcceptResponse(opts: {
  key: string;
  protocol?: string;
  extensions?: readonly ExtensionOffer[];
  headers?: HeaderInput;
}): string {
  const lines = ["HTTP/1.1 101 Switching Protocols\r\n"];
  const managed = new Set<string>();
  emit(lines, managed, "Upgrade", "websocket");
  emit(lines, managed, "Connection", "Upgrade");
  emit(lines, managed, "Sec-WebSocket-Accept", acceptKey(opts.key));
  if (opts.protocol !== undefined) {
    if (!isToken(opts.protocol)) {
      throw new StateError("WS_ERR_INVALID_ARGUMENT", "Subprotocol must be a token");
    }
    emit(lines, managed, "Sec-WebSocket-Protocol", opts.protocol);
  }
  if (opts.extensions !== undefined && opts.extensions.length > 0) {
    emit(lines, managed, "Sec-WebSocket-Extensions", formatExtensions(opts.extensions));
  }
  writeHeaders(lines, managed, opts.headers);
  lines.push("\r\n");
  return lines.join("");
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/**
 * A complete plain-text refusal (status 300..599) with `Connection: close` and the UTF-8 body
 * length in Content-Length; write it as UTF-8. Pass `HandshakeError.headers` as `headers`.
 */
export function buildRejectResponse(status: number, reason: string, headers?: HeaderInput): string {
  if (!Number.isInteger(status) || status < 300 || status > 599) {
    throw new StateError("WS_ERR_INVALID_ARGUMENT", `Invalid refusal status ${String(status)}`);
  }
  const lines = [`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\n`];
  const managed = new Set<string>();
  emit(lines, managed, "Connection", "close");
  emit(lines, managed, "Content-Type", "text/plain; charset=utf-8");
  emit(lines, managed, "Content-Length", String(encoder.encode(reason).length));
  writeHeaders(lines, managed, headers);
  lines.push("\r\n", reason);
  return lines.join("");
}

// ---------------------------------------------------------------------------------------------
// Client side

function invalidArgument(message: string): never {
  throw new StateError("WS_ERR_INVALID_ARGUMENT", message);
}

/**
 * The opening-handshake request head (RFC 6455 §4.1), ending with the empty line. Throws
 * {@link StateError} (`WS_ERR_INVALID_ARGUMENT`) for an invalid host, path, key, subprotocol
 * (not a token or repeated), CR/LF/CTL in a header value, or a custom header that repeats
 * one of the handshake's own fields.
 */
export function buildRequest(opts: {
  host: string;
  path: string;
  key: string;
  protocols?: readonly string[];
  extensions?: readonly ExtensionOffer[];
  origin?: string;
  headers?: HeaderInput;
}): string {
  if (!isHostValue(opts.host)) invalidArgument("Invalid host");
  if (opts.path.charCodeAt(0) !== 0x2f || requestPath(opts.path) === undefined) {
    invalidArgument("Path must be an origin-form request-target such as /chat?x=1");
  }
  if (base64Decode(opts.key)?.length !== 16) invalidArgument("Key must be base64 of 16 bytes");
  const lines = [`GET ${opts.path} HTTP/1.1\r\n`];
  const managed = new Set<string>();
  emit(lines, managed, "Host", opts.host);
  emit(lines, managed, "Upgrade", "websocket");
  emit(lines, managed, "Connection", "Upgrade");
  emit(lines, managed, "Sec-WebSocket-Key", opts.key);
  emit(lines, managed, "Sec-WebSocket-Version", "13");
  const protocols = opts.protocols ?? [];
  if (protocols.length > 0) {
    const seen = new Set<string>();
    for (const protocol of protocols) {
      if (typeof protocol !== "string" || !isToken(protocol) || seen.has(protocol)) {
        invalidArgument("Subprotocols must be unique tokens (RFC 6455 §4.1)");
      }
      seen.add(protocol);
    }
    emit(lines, managed, "Sec-WebSocket-Protocol", protocols.join(", "));
  }
  if (opts.extensions !== undefined && opts.extensions.length > 0) {
    emit(lines, managed, "Sec-WebSocket-Extensions", formatExtensions(opts.extensions));
  }
  if (opts.origin !== undefined) {
    if (!isFieldValue(opts.origin)) invalidArgument("Invalid Origin");
    emit(lines, managed, "Origin", opts.origin);
  }
  writeHeaders(lines, managed, opts.headers);
  lines.push("\r\n");
  return lines.join("");
}

function failResponse(code: HandshakeError["code"], message: string): never {
  throw new HandshakeError(code, 502, message);
}

/** Re-throw a header parse error of the server's response as a client-side (502) failure. */
function asClientFailure<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof HandshakeError) failResponse(error.code, error.message);
    throw error;
  }
}

/**
 * Client checks of the server's response (RFC 6455 §4.1, "the client MUST validate the
 * server's response as follows"), in order: status 101, Upgrade, Connection,
 * Sec-WebSocket-Accept, Sec-WebSocket-Extensions, Sec-WebSocket-Protocol. Extension
 * parameters are left to the extension itself (e.g. validateDeflateResponse).
 */
export function validateResponse(
  res: HttpResponseHead,
  offered: {
    key: string;
    protocols?: readonly string[];
    extensions?: readonly ExtensionOffer[];
  },
): { protocol: string | undefined; extensions: ExtensionOffer[] } {
  // Item 1: anything but 101 is handled per HTTP; the error carries the received status.
  if (res.status !== 101) {
    throw new HandshakeError(
      "WS_ERR_HANDSHAKE_STATUS",
      res.status,
      `Expected status 101, got ${res.status}`,
    );
  }
  const { headers } = res;
  // Item 2: the value itself must be "websocket" (case-insensitive), not merely contain it.
  if (!equalsAsciiCi(getHeader(headers, "upgrade") ?? "", "websocket")) {
    failResponse("WS_ERR_HANDSHAKE_UPGRADE", 'Response Upgrade header is not "websocket"');
  }
  // Item 3.
  if (!listHasToken(getHeader(headers, "connection"), "upgrade")) {
    failResponse("WS_ERR_HANDSHAKE_CONNECTION", 'Response Connection header lacks "Upgrade"');
  }
  // Item 4.
  if (getHeader(headers, "sec-websocket-accept") !== acceptKey(offered.key)) {
    failResponse("WS_ERR_HANDSHAKE_ACCEPT", "Sec-WebSocket-Accept does not match the key");
  }
  // Item 5: only extensions we offered, each at most once.
  const extensionValue = getHeader(headers, "sec-websocket-extensions");
  const extensions =
    extensionValue === undefined ? [] : asClientFailure(() => parseExtensions(extensionValue));
  const offeredNames = new Set((offered.extensions ?? []).map((offer) => offer.name));
  const accepted = new Set<string>();
  for (const extension of extensions) {
    if (!offeredNames.has(extension.name) || accepted.has(extension.name)) {
      failResponse("WS_ERR_HANDSHAKE_EXTENSION", `Unexpected extension "${extension.name}"`);
    }
    accepted.add(extension.name);
  }
  // Item 6: at most one subprotocol, one we offered.
  const protocolValue = getHeader(headers, "sec-websocket-protocol");
  if (protocolValue === undefined) return { protocol: undefined, extensions };
  const chosen = asClientFailure(() => parseSubprotocols(protocolValue));
  if (chosen.length !== 1 || !(offered.protocols ?? []).includes(chosen[0]!)) {
    failResponse("WS_ERR_HANDSHAKE_SUBPROTOCOL", "Server selected a subprotocol not offered");
  }
  return { protocol: chosen[0], extensions };
}
