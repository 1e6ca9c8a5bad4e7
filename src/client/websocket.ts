/**
 * WebSocket: the WHATWG WebSocket interface (https://websockets.spec.whatwg.org/) for Node, so
 * browser code runs unchanged, plus Node-only options as a third constructor argument.
 *
 * The opening handshake is done here over node:net / node:tls (no node:http): the request comes
 * from the protocol core's buildRequest, the response head is read with its incremental
 * HttpHeadParser (bounded by the limits) and checked by validateResponse and
 * validateDeflateResponse. Then the socket is handed to the shared SocketConnection; bytes that
 * followed the response head are its first frames.
 *
 * Failures never throw asynchronously: a refused or invalid handshake, a connect error, a
 * handshake timeout or a protocol error by the server end in an `error` event followed by a
 * `close` event with code 1006 and wasClean false (WHATWG: "fail the WebSocket connection"),
 * even when a Close frame with another code (e.g. 1002) was sent to the server.
 */
import { Blob } from "node:buffer";
import * as net from "node:net";
import * as tls from "node:tls";
import { DeflateCodec } from "../node/deflate-codec.js";
import { SocketConnection } from "../node/socket-connection.js";
import {
  buildRequest,
  type DeflateOptions,
  deflateOffer,
  type ExtensionOffer,
  formatExtensions,
  generateKey,
  type HeaderInput,
  HttpHeadParser,
  type HttpResponseHead,
  type Limits,
  PERMESSAGE_DEFLATE,
  resolveLimits,
  validateDeflateResponse,
  validateResponse,
} from "../protocol/index.js";
import { isToken } from "../protocol/subprotocol-header.js";
import { CloseEvent, ErrorEvent } from "./events.js";

/** How binary messages are delivered: Buffer (Node default, like ws), ArrayBuffer or Blob. */
export type BinaryType = "nodebuffer" | "arraybuffer" | "blob";

/** What send() accepts. Anything else is converted to a string, as WebIDL does. */
export type WebSocketData = string | Buffer | ArrayBuffer | ArrayBufferView | Blob;

/** Node-only options (third constructor argument; also accepted as the second). */
export interface WebSocketOptions {
  /** Extra request headers (an object, or a list of [name, value] pairs to allow repeats). */
  readonly headers?: HeaderInput;
  /** Origin header to send (browsers always send one; Node clients by default do not). */
  readonly origin?: string;
  /** Offer permessage-deflate (RFC 7692), with these parameters. @default true (as browsers) */
  readonly perMessageDeflate?: boolean | DeflateOptions;
  /** Size limits for the response head and for incoming messages (see docs/limits.md). */
  readonly limits?: Partial<Limits>;
  /** Fail the connection when no valid response head arrived by then. @default 10_000 */
  readonly handshakeTimeoutMs?: number;
  /** How long to wait for the server's Close frame and TCP close. @default 10_000 */
  readonly closeTimeoutMs?: number;
  /** For wss:// URLs: ca, rejectUnauthorized, servername, cert/key, ... */
  readonly tls?: tls.ConnectionOptions;
}

/** Event types and their classes, as in lib.dom's WebSocketEventMap, plus Node's ping/pong. */
export interface WebSocketEventMap {
  open: Event;
  message: MessageEvent;
  close: CloseEvent;
  error: ErrorEvent;
  /** Node only: a Ping from the server (already answered); `data` is its payload (Buffer). */
  ping: ControlEvent;
  /** Node only: a Pong from the server; `data` is its payload (Buffer). */
  pong: ControlEvent;
}

/** A `ping` or `pong` event: a MessageEvent whose `data` is the frame's payload. */
export type ControlEvent = MessageEvent & { readonly data: Buffer };

/** What ping() and pong() accept as payload (at most 125 bytes; strings as UTF-8). */
export type ControlData = string | ArrayBuffer | ArrayBufferView;

type Listener<E> = ((this: WebSocket, event: E) => unknown) | { handleEvent(event: E): unknown };
type AddOptions =
  | boolean
  | { capture?: boolean; once?: boolean; passive?: boolean; signal?: AbortSignal };
type RemoveOptions = boolean | { capture?: boolean };
type AnyListener = Parameters<EventTarget["addEventListener"]>[1];

type Handler = ((this: WebSocket, event: Event) => unknown) | null;
type MessageHandler = ((this: WebSocket, event: MessageEvent) => unknown) | null;
type CloseHandler = ((this: WebSocket, event: CloseEvent) => unknown) | null;
type ErrorHandler = ((this: WebSocket, event: ErrorEvent) => unknown) | null;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
type State = typeof CONNECTING | typeof OPEN | typeof CLOSING | typeof CLOSED;

const MAX_REASON_BYTES = 123;
const MAX_CONTROL_BYTES = 125;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

interface Outgoing {
  bytes: Buffer | null;
  readonly binary: boolean;
  readonly size: number;
}

function syntaxError(message: string): DOMException {
  return new DOMException(message, "SyntaxError");
}

/** WHATWG "new WebSocket(url)" steps 1-6: parse, map http(s) to ws(s), refuse the rest. */
function parseUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw syntaxError(`Invalid URL: ${String(input)}`);
  }
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw syntaxError(`The URL's scheme must be ws, wss, http or https, got "${url.protocol}"`);
  }
  if (url.hash !== "" || url.href.endsWith("#")) {
    throw syntaxError("The URL must not contain a fragment");
  }
  return url;
}

/** WHATWG constructor step 7: tokens (RFC 6455 §4.1), none repeated. */
function parseProtocols(protocols: string | readonly string[] | undefined): string[] {
  if (protocols === undefined) return [];
  // WebIDL (DOMString or sequence<DOMString>): an iterable is a list, anything else one string.
  const list =
    typeof protocols === "object" && protocols !== null
      ? Array.from(protocols, String)
      : [String(protocols)];
  const seen = new Set<string>();
  for (const protocol of list) {
    if (!isToken(protocol)) throw syntaxError(`Invalid subprotocol "${protocol}"`);
    if (seen.has(protocol)) throw syntaxError(`Duplicate subprotocol "${protocol}"`);
    seen.add(protocol);
  }
  return list;
}

/** WebIDL [Clamp] unsigned short. */
function clampCode(value: unknown): number {
  const n = Number(value);
  if (Number.isNaN(n)) return 0;
  const clamped = Math.min(Math.max(n, 0), 0xffff);
  const floor = Math.floor(clamped);
  const diff = clamped - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function positiveMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive number of milliseconds`);
  }
  return value;
}

function toBuffer(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

export class WebSocket extends EventTarget {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  declare readonly CONNECTING: typeof CONNECTING;
  declare readonly OPEN: typeof OPEN;
  declare readonly CLOSING: typeof CLOSING;
  declare readonly CLOSED: typeof CLOSED;

  readonly #url: URL;
  readonly #origin: string;
  readonly #key: string;
  readonly #protocols: string[];
  readonly #offer: ExtensionOffer[];
  readonly #deflate: DeflateOptions | null;
  readonly #limits: Limits;
  readonly #closeTimeoutMs: number;
  readonly #socket: net.Socket;
  readonly #handlers = new Map<string, unknown>();
  #state: State = CONNECTING;
  #conn: SocketConnection | null = null;
  #protocol = "";
  #extensions = "";
  #binaryType: BinaryType = "nodebuffer";
  #compressing = false;
  #timer: NodeJS.Timeout | null = null;
  /** Set when the connection is failed: an `error` event precedes the `close` event. */
  #failure: { error: unknown } | null = null;
  #queue: Outgoing[] = [];
  #queuedBytes = 0;
  #pendingClose: { code: number | undefined; reason: string } | null = null;
  #bytesAfterClose = 0;

  constructor(
    url: string | URL,
    protocols?: string | readonly string[] | WebSocketOptions,
    options: WebSocketOptions = {},
  ) {
    super();
    let list: string | readonly string[] | undefined;
    if (
      protocols !== null &&
      typeof protocols === "object" &&
      !Array.isArray(protocols) &&
      !(Symbol.iterator in protocols)
    ) {
      options = protocols as WebSocketOptions;
    } else {
      list = protocols as string | readonly string[] | undefined;
    }
    this.#url = parseUrl(url);
    this.#origin = this.#url.origin;
    this.#protocols = parseProtocols(list);
    this.#limits = resolveLimits(options.limits);
    const handshakeTimeoutMs = positiveMs(
      "handshakeTimeoutMs",
      options.handshakeTimeoutMs,
      DEFAULT_HANDSHAKE_TIMEOUT_MS,
    );
    this.#closeTimeoutMs = positiveMs(
      "closeTimeoutMs",
      options.closeTimeoutMs,
      DEFAULT_CLOSE_TIMEOUT_MS,
    );
    const deflate = options.perMessageDeflate ?? true;
    this.#deflate = deflate === false ? null : deflate === true ? {} : deflate;
    this.#offer = this.#deflate === null ? [] : [deflateOffer(this.#deflate)];
    this.#key = generateKey();
    // Invalid Node-only options (headers, origin) throw here, synchronously.
    const request = buildRequestFor(this.#url, {
      key: this.#key,
      protocols: this.#protocols,
      extensions: this.#offer,
      origin: options.origin,
      headers: options.headers,
    });

    this.#socket = connect(this.#url, options.tls);
    this.#socket.write(request, "latin1");
    this.#listenForHandshake();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#failHandshake(
        new DOMException(
          `Opening handshake timed out after ${handshakeTimeoutMs} ms`,
          "TimeoutError",
        ),
      );
    }, handshakeTimeoutMs);
  }

  // ---- WHATWG attributes ------------------------------------------------------------------

  /** The URL, serialized, after mapping http(s) to ws(s). */
  get url(): string {
    return this.#url.href;
  }

  get readyState(): State {
    if (this.#state === OPEN && this.#conn !== null && this.#conn.readyState >= CLOSING) {
      return CLOSING; // the server started the closing handshake
    }
    return this.#state;
  }

  /** Bytes given to send() not yet handed to the OS (grows on sends after closing starts). */
  get bufferedAmount(): number {
    return (this.#conn?.bufferedAmount ?? 0) + this.#queuedBytes + this.#bytesAfterClose;
  }

  /** The subprotocol the server selected ("" before open or when none). */
  get protocol(): string {
    return this.#protocol;
  }

  /** The server's Sec-WebSocket-Extensions ("" before open or when none). */
  get extensions(): string {
    return this.#extensions;
  }

  get binaryType(): BinaryType {
    return this.#binaryType;
  }

  set binaryType(value: BinaryType) {
    // WebIDL enum attribute: an unknown value is ignored.
    if (value === "nodebuffer" || value === "arraybuffer" || value === "blob") {
      this.#binaryType = value;
    }
  }

  get onopen(): Handler {
    return this.#getHandler("open") as Handler;
  }
  set onopen(value: Handler) {
    this.#setHandler("open", value);
  }
  get onmessage(): MessageHandler {
    return this.#getHandler("message") as MessageHandler;
  }
  set onmessage(value: MessageHandler) {
    this.#setHandler("message", value);
  }
  get onclose(): CloseHandler {
    return this.#getHandler("close") as CloseHandler;
  }
  set onclose(value: CloseHandler) {
    this.#setHandler("close", value);
  }
  get onerror(): ErrorHandler {
    return this.#getHandler("error") as ErrorHandler;
  }
  set onerror(value: ErrorHandler) {
    this.#setHandler("error", value);
  }

  // ---- EventTarget, typed per event ------------------------------------------------------

  override addEventListener<K extends keyof WebSocketEventMap>(
    type: K,
    listener: Listener<WebSocketEventMap[K]> | null,
    options?: AddOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: Listener<Event> | null,
    options?: AddOptions,
  ): void;
  override addEventListener(type: string, listener: Listener<Event> | null, options?: AddOptions) {
    if (listener !== null) super.addEventListener(type, listener as AnyListener, options);
  }

  override removeEventListener<K extends keyof WebSocketEventMap>(
    type: K,
    listener: Listener<WebSocketEventMap[K]> | null,
    options?: RemoveOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: Listener<Event> | null,
    options?: RemoveOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: Listener<Event> | null,
    options?: RemoveOptions,
  ) {
    if (listener !== null) super.removeEventListener(type, listener as AnyListener, options);
  }

  // ---- WHATWG methods ---------------------------------------------------------------------

  /**
   * Queue a message: a string is sent as text, everything binary as binary. Blobs are read
   * asynchronously; messages still go out in the order of the send() calls. Throws an
   * InvalidStateError DOMException while CONNECTING; after closing started the data is dropped
   * and only counted in bufferedAmount, as the standard says.
   */
  send(data: WebSocketData): void {
    if (this.#state === CONNECTING) {
      throw new DOMException("WebSocket is still CONNECTING", "InvalidStateError");
    }
    const conn = this.#conn;
    const accepting = this.readyState === OPEN && conn !== null;
    if (data instanceof Blob) {
      if (!accepting) {
        this.#bytesAfterClose += data.size;
        return;
      }
      const item: Outgoing = { bytes: null, binary: true, size: data.size };
      this.#enqueue(item);
      data.arrayBuffer().then(
        (buffer) => {
          item.bytes = Buffer.from(buffer);
          this.#flush();
        },
        (error: unknown) => this.#failOpen(error),
      );
      return;
    }
    let bytes: Buffer;
    let binary = true;
    // Copy binary data when it may be read later (compression is asynchronous, or a Blob
    // ahead of it is still being read): send() takes a snapshot.
    const later = this.#queue.length > 0 || this.#compressing;
    if (data instanceof ArrayBuffer) {
      bytes = later ? Buffer.from(new Uint8Array(data)) : Buffer.from(data);
    } else if (ArrayBuffer.isView(data)) {
      bytes = later ? Buffer.from(toBuffer(data)) : toBuffer(data);
    } else {
      bytes = Buffer.from(String(data), "utf8"); // lone surrogates become U+FFFD (USVString)
      binary = false;
    }
    if (!accepting) {
      this.#bytesAfterClose += bytes.length;
      return;
    }
    if (this.#queue.length === 0) conn.send(bytes, { binary });
    else this.#enqueue({ bytes, binary, size: bytes.length });
  }

  /**
   * Start the closing handshake. `code` must be 1000 or 3000-4999 (else InvalidAccessError)
   * and `reason` at most 123 UTF-8 bytes (else SyntaxError). While CONNECTING this fails the
   * connection: `error`, then `close` with 1006.
   */
  close(code?: number, reason?: string): void {
    let closeCode: number | undefined;
    if (code !== undefined) {
      closeCode = clampCode(code);
      if (closeCode !== 1000 && (closeCode < 3000 || closeCode > 4999)) {
        throw new DOMException(
          `The close code must be 1000 or in 3000-4999, got ${closeCode}`,
          "InvalidAccessError",
        );
      }
    }
    let closeReason = "";
    if (reason !== undefined) {
      const bytes = Buffer.from(String(reason), "utf8");
      if (bytes.length > MAX_REASON_BYTES) {
        throw syntaxError(`The close reason must be at most ${MAX_REASON_BYTES} UTF-8 bytes`);
      }
      closeReason = bytes.toString("utf8");
    }
    const state = this.readyState;
    if (state === CLOSING || state === CLOSED) return;
    this.#state = CLOSING;
    if (state === CONNECTING) {
      this.#failHandshake(new Error("WebSocket was closed before the connection was established"));
      return;
    }
    if (closeCode === undefined && closeReason !== "") closeCode = 1000;
    this.#pendingClose = { code: closeCode, reason: closeReason };
    this.#flush();
  }

  /**
   * Node only, like `ws`: send a Ping frame; the server's Pong arrives as a `pong` event whose
   * `data` is its payload (a Buffer). `data` is at most 125 bytes (a string as UTF-8), else a
   * RangeError (code `WS_ERR_CONTROL_PAYLOAD_TOO_LONG`). Throws an InvalidStateError
   * DOMException while CONNECTING; once closing started the ping is dropped (nothing is sent,
   * nothing thrown), as `ws` does.
   */
  ping(data?: ControlData): void {
    this.#sendControl("ping", data);
  }

  /** Node only: send an unsolicited Pong frame (a one-way heartbeat); same rules as ping(). */
  pong(data?: ControlData): void {
    this.#sendControl("pong", data);
  }

  #sendControl(kind: "ping" | "pong", data: ControlData | undefined): void {
    const bytes = controlPayload(kind, data);
    if (this.#state === CONNECTING) {
      throw new DOMException("WebSocket is still CONNECTING", "InvalidStateError");
    }
    const conn = this.#conn;
    if (this.readyState !== OPEN || conn === null) return;
    if (kind === "ping") conn.ping(bytes);
    else conn.pong(bytes);
  }

  // ---- opening handshake ------------------------------------------------------------------

  #listenForHandshake(): void {
    const socket = this.#socket;
    const parser = HttpHeadParser.response(this.#limits);
    const onData = (chunk: Buffer): void => {
      if (this.#failure !== null) return;
      let parsed: { head: HttpResponseHead; rest: Uint8Array } | null;
      try {
        parsed = parser.push(chunk);
      } catch (error) {
        this.#failHandshake(error);
        return;
      }
      if (parsed === null) return;
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
      this.#onResponse(parsed.head, parsed.rest);
    };
    const onError = (error: Error): void => this.#failHandshake(error);
    const onClose = (): void => {
      this.#failHandshake(new Error("The connection closed before the opening handshake ended"));
      this.#finish(1006, "", false);
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
  }

  #onResponse(head: HttpResponseHead, rest: Uint8Array): void {
    const socket = this.#socket;
    let conn: SocketConnection;
    try {
      const valid = validateResponse(head, {
        key: this.#key,
        protocols: this.#protocols,
        extensions: this.#offer,
      });
      let codec: DeflateCodec | null = null;
      for (const extension of valid.extensions) {
        if (extension.name === PERMESSAGE_DEFLATE && this.#deflate !== null) {
          const params = validateDeflateResponse(extension, this.#deflate);
          codec = new DeflateCodec({ role: "client", ...params });
        }
      }
      const extensions = formatExtensions(valid.extensions);
      conn = new SocketConnection(socket, {
        role: "client",
        limits: this.#limits,
        protocol: valid.protocol ?? "",
        extensions,
        codec,
        closeTimeoutMs: this.#closeTimeoutMs,
      });
      this.#protocol = valid.protocol ?? "";
      this.#extensions = extensions;
      this.#compressing = codec !== null;
    } catch (error) {
      // Not established: no Close frame to send (RFC 6455 §4.1), just drop the connection.
      socket.on("error", ignore);
      socket.once("close", () => this.#finish(1006, "", false));
      this.#failHandshake(error);
      return;
    }
    this.#clearTimer();
    this.#conn = conn;
    conn.on("message", (data: Buffer, isBinary: boolean) => this.#onMessage(data, isBinary));
    conn.on("ping", (data: Buffer) => this.#onControl("ping", data));
    conn.on("pong", (data: Buffer) => this.#onControl("pong", data));
    conn.on("error", (error: unknown) => {
      this.#failure ??= { error };
    });
    conn.on("close", (code: number, reason: string, wasClean: boolean) => {
      // WHATWG: a connection that did not close cleanly reports 1006, whatever was sent.
      if (wasClean) this.#finish(code, reason, true);
      else this.#finish(1006, "", false);
    });
    this.#state = OPEN;
    this.dispatchEvent(new Event("open"));
    if (rest.length > 0) conn.receiveHead(toBuffer(rest));
  }

  /** Fail the connection before it is established; the socket's `close` reports it. */
  #failHandshake(error: unknown): void {
    if (this.#failure !== null || this.#conn !== null) return;
    this.#failure = { error };
    this.#clearTimer();
    this.#socket.destroy();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  // ---- open connection --------------------------------------------------------------------

  #onMessage(data: Buffer, isBinary: boolean): void {
    let payload: string | Buffer | ArrayBuffer | Blob;
    if (!isBinary)
      payload = data.toString("utf8"); // the core validated the UTF-8
    else if (this.#binaryType === "nodebuffer") payload = data;
    else if (this.#binaryType === "arraybuffer") {
      const copy = new ArrayBuffer(data.byteLength);
      new Uint8Array(copy).set(data);
      payload = copy;
    } else payload = new Blob([data]);
    this.dispatchEvent(new MessageEvent("message", { data: payload, origin: this.#origin }));
  }

  #onControl(type: "ping" | "pong", data: Buffer): void {
    this.dispatchEvent(new MessageEvent(type, { data, origin: this.#origin }));
  }

  #enqueue(item: Outgoing): void {
    this.#queue.push(item);
    this.#queuedBytes += item.size;
  }

  /** Send what is ready at the head of the queue; then a deferred close() once it is empty. */
  #flush(): void {
    const conn = this.#conn;
    if (conn === null) return;
    while (this.#queue.length > 0) {
      const item = this.#queue[0]!;
      if (item.bytes === null) return; // a Blob is still being read
      this.#queue.shift();
      this.#queuedBytes -= item.size;
      if (conn.readyState === OPEN) conn.send(item.bytes, { binary: item.binary });
      else this.#bytesAfterClose += item.size;
    }
    const pending = this.#pendingClose;
    if (pending !== null) {
      this.#pendingClose = null;
      conn.close(pending.code, pending.reason);
    }
  }

  /** Fail an open connection from our side (a Blob could not be read). */
  #failOpen(error: unknown): void {
    if (this.#conn === null || this.#state === CLOSED) return;
    this.#failure ??= { error };
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#conn.terminate();
  }

  /** WHATWG "the WebSocket connection is closed": CLOSED, `error` if failed, then `close`. */
  #finish(code: number, reason: string, wasClean: boolean): void {
    if (this.#state === CLOSED) return;
    this.#clearTimer();
    this.#state = CLOSED;
    this.#queuedBytes = 0;
    this.#queue = [];
    const failure = this.#failure;
    if (failure !== null) {
      const message = failure.error instanceof Error ? failure.error.message : "";
      this.dispatchEvent(new ErrorEvent("error", { error: failure.error, message }));
    }
    this.dispatchEvent(new CloseEvent("close", { code, reason, wasClean }));
  }

  // ---- event handler attributes -----------------------------------------------------------

  #getHandler(type: string): unknown {
    return this.#handlers.get(type) ?? null;
  }

  /** The listener is added on first set and keeps its place when the handler changes. */
  #setHandler(type: string, value: unknown): void {
    const fn = typeof value === "function" ? value : null;
    if (!this.#handlers.has(type)) {
      this.addEventListener(type, (event) => {
        const handler = this.#handlers.get(type);
        if (typeof handler === "function") handler.call(this, event);
      });
    }
    this.#handlers.set(type, fn);
  }
}

for (const [name, value] of Object.entries({ CONNECTING, OPEN, CLOSING, CLOSED })) {
  const descriptor = { value, enumerable: true, writable: false, configurable: false };
  Object.defineProperty(WebSocket.prototype, name, descriptor);
  Object.defineProperty(WebSocket, name, descriptor);
}

function ignore(): void {}

/** A ping/pong payload as bytes, at most 125 of them (RFC 6455 §5.5). */
function controlPayload(kind: string, data: ControlData | undefined): Buffer {
  let bytes: Buffer;
  if (data === undefined) bytes = Buffer.alloc(0);
  else if (data instanceof ArrayBuffer) bytes = Buffer.from(new Uint8Array(data));
  else if (ArrayBuffer.isView(data)) bytes = Buffer.from(toBuffer(data));
  else bytes = Buffer.from(String(data), "utf8");
  if (bytes.length > MAX_CONTROL_BYTES) {
    const error = new RangeError(
      `The ${kind} payload must be at most ${MAX_CONTROL_BYTES} bytes, got ${bytes.length}`,
    );
    throw Object.assign(error, { code: "WS_ERR_CONTROL_PAYLOAD_TOO_LONG" as const });
  }
  return bytes;
}

function buildRequestFor(
  url: URL,
  opts: {
    key: string;
    protocols: string[];
    extensions: ExtensionOffer[];
    origin: string | undefined;
    headers: HeaderInput | undefined;
  },
): string {
  return buildRequest({
    host: url.host,
    path: `${url.pathname || "/"}${url.search}`,
    key: opts.key,
    protocols: opts.protocols,
    extensions: opts.extensions,
    ...(opts.origin === undefined ? {} : { origin: opts.origin }),
    ...(opts.headers === undefined ? {} : { headers: opts.headers }),
  });
}

/** A TCP or TLS connection to the URL's host and port (brackets stripped from IPv6). */
function connect(url: URL, tlsOptions: tls.ConnectionOptions | undefined): net.Socket {
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const secure = url.protocol === "wss:";
  const port = url.port === "" ? (secure ? 443 : 80) : Number(url.port);
  if (!secure) return net.connect({ host, port });
  const servername = tlsOptions?.servername ?? (net.isIP(host) === 0 ? host : undefined);
  return tls.connect({
    ...tlsOptions,
    host,
    port,
    ...(servername === undefined ? {} : { servername }),
  });
}
