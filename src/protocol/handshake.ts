/**
 * RFC 6455 §4 opening handshake, both roles, sans-I/O: request validation and response
 * building (server), request building and response validation (client). The HTTP/1.1 head
 * parser and header helpers live in http-head.ts (re-exported here). Check order and status
 * codes: docs/handshake.md.
 *
 * Client-side failures (validateResponse) carry httpStatus 502 ("invalid answer from the
 * peer"), except WS_ERR_HANDSHAKE_STATUS which carries the status the server sent.
 */
import { HandshakeError, StateError } from "./errors.js";
import { type ExtensionOffer, formatExtensions, parseExtensions } from "./extension-header.js";
import {
  asciiLower,
  equalsAsciiCi,
  getHeader,
  type HeaderList,
  type HttpResponseHead,
  headerValues,
  isFieldValue,
  isVchars,
  listHasToken,
  parseVersion,
} from "./http-head.js";
import { base64Decode, base64Encode, sha1 } from "./sha1.js";
import { isToken, parseSubprotocols } from "./subprotocol-header.js";

export {
  getHeader,
  type HeaderList,
  HttpHeadParser,
  type HttpRequestHead,
  type HttpResponseHead,
  headerValues,
  listHasToken,
  type ParsedHead,
  parseHttpHead,
} from "./http-head.js";

export const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Extra headers given by the application: an object or an ordered list (allows repeats). */
export type HeaderInput = Readonly<Record<string, string>> | HeaderList;

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
  /** Sec-WebSocket-Accept computed by the caller (e.g. with node:crypto); else acceptKey(key). */
  accept?: string;
  protocol?: string;
  extensions?: readonly ExtensionOffer[];
  headers?: HeaderInput;
}): string {
  const lines = ["HTTP/1.1 101 Switching Protocols\r\n"];
  const managed = new Set<string>();
  emit(lines, managed, "Upgrade", "websocket");
  emit(lines, managed, "Connection", "Upgrade");
  emit(lines, managed, "Sec-WebSocket-Accept", opts.accept ?? acceptKey(opts.key));
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
