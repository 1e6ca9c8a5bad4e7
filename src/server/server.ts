/**
 * WebSocketServer: accepts RFC 6455 upgrades on its own port, on an existing http(s) server, or
 * through handleUpgrade() for frameworks. Handshake checks come from the protocol core; the
 * policies (Origin, authentication, subprotocol, permessage-deflate, connection cap) live here.
 */

import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import * as http from "node:http";
import type * as https from "node:https";
import type { Duplex } from "node:stream";
import { deflateRawSync, constants as zlibConstants } from "node:zlib";
import { DeflateCodec } from "../node/deflate-codec.js";
import {
  type SendData,
  type SendResult,
  type SlowConsumerPolicy,
  SocketConnection,
  toBuffer,
} from "../node/socket-connection.js";
import {
  acceptDeflateOffer,
  buildAcceptResponse,
  buildRejectResponse,
  type DeflateOptions,
  type ExtensionOffer,
  encodeFrame,
  formatExtensions,
  HandshakeError,
  type Limits,
  Opcode,
  ReadyState,
  resolveLimits,
  type ValidatedRequest,
  validateRequest,
  WS_GUID,
} from "../protocol/index.js";

export interface Rejection {
  readonly status: number;
  readonly reason?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ServerOptions {
  /** Listen on this port (0 = ephemeral). One of port, server, noServer. */
  readonly port?: number;
  /** @default "127.0.0.1" */
  readonly host?: string;
  /** Attach to this http/https server's `upgrade` event. */
  readonly server?: http.Server | https.Server;
  /** Accept only through handleUpgrade(). */
  readonly noServer?: boolean;
  /** Accept only this path (query ignored); other paths get 400. */
  readonly path?: string;
  /**
   * Origins allowed to connect (exact match, e.g. "https://app.example"), or a function. A
   * disallowed Origin gets 403 before the 101 (defence against cross-site WebSocket hijacking).
   * Requests without an Origin header (non-browser clients) are allowed. @default any origin
   */
  readonly allowedOrigins?:
    | readonly string[]
    | ((origin: string, request: http.IncomingMessage) => boolean | Promise<boolean>);
  /** Accept (return/resolve nothing) or refuse (return/resolve a Rejection, or throw) a request. */
  readonly authenticate?: (
    request: http.IncomingMessage,
  ) => undefined | Rejection | Promise<undefined | Rejection>;
  /** Pick one of the offered subprotocols, or undefined for none. @default the first offered */
  readonly handleProtocols?: (
    offered: readonly string[],
    request: http.IncomingMessage,
  ) => string | undefined;
  /** Negotiate permessage-deflate. @default false */
  readonly perMessageDeflate?: boolean | DeflateOptions;
  /** Beyond this many open connections new upgrades get 503. @default Infinity */
  readonly maxConnections?: number;
  readonly limits?: Partial<Limits>;
  /** Time allowed for the closing handshake before TCP is closed. @default 10_000 */
  readonly closeTimeoutMs?: number;
  /**
   * Time allowed from the start of the request to the 101 (headers, Origin and authentication
   * hooks included); slower or silent upgrades are dropped. @default 10_000
   */
  readonly handshakeTimeoutMs?: number;
  /** Ping each connection this often; 0 turns the heartbeat off. @default 30_000 */
  readonly pingIntervalMs?: number;
  /** Terminate a connection whose Pong is this late. @default 10_000 */
  readonly pongTimeoutMs?: number;
  /** Outbound bytes one connection may keep in memory. @default 4 MiB */
  readonly maxOutboundBytes?: number;
  /** Beyond maxOutboundBytes: close the connection with 1008, or drop the message. @default "close" */
  readonly slowConsumerPolicy?: SlowConsumerPolicy;
}

interface Accepted {
  response: string;
  protocol: string | undefined;
  extensions: string;
  codec: DeflateCodec | null;
  serverNoContextTakeover: boolean;
}

export class WebSocketServer extends EventEmitter {
  readonly clients = new Set<SocketConnection>();
  /** One 'close' listener shared by every connection (no closure per connection). */
  private readonly untrack: (this: SocketConnection) => void;
  private readonly options: ServerOptions;
  private readonly limits: Limits;
  private readonly httpServer: http.Server | https.Server | null;
  private readonly ownsServer: boolean;
  private closing = false;
  private readonly onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.handleUpgrade(req, socket, head, (ws) => this.emit("connection", ws, req));
  };

  constructor(options: ServerOptions, onListening?: () => void) {
    super();
    const clients = this.clients;
    this.untrack = function (this: SocketConnection) {
      clients.delete(this);
    };
    const modes = [
      options.port !== undefined,
      options.server !== undefined,
      options.noServer === true,
    ];
    if (modes.filter(Boolean).length !== 1) {
      throw new TypeError("exactly one of port, server or noServer must be given");
    }
    this.options = options;
    this.limits = resolveLimits(options.limits);
    if (options.port !== undefined) {
      const server = http.createServer((_req, res) => {
        res.writeHead(426, { "Content-Type": "text/plain", "Sec-WebSocket-Version": "13" });
        res.end("Upgrade Required\n");
      });
      this.httpServer = server;
      this.ownsServer = true;
      server.on("upgrade", this.onUpgrade);
      server.on("error", (e) => this.emit("error", e));
      // Slow or silent request heads are dropped by the HTTP parser itself.
      const budget = options.handshakeTimeoutMs ?? 10_000;
      server.headersTimeout = budget;
      server.requestTimeout = budget;
      server.listen(options.port, options.host ?? "127.0.0.1", () => {
        this.emit("listening");
        onListening?.();
      });
    } else {
      this.httpServer = options.server ?? null;
      this.ownsServer = false;
      this.httpServer?.on("upgrade", this.onUpgrade);
    }
  }

  /** The bound address when listening on a port. */
  address(): ReturnType<http.Server["address"]> {
    return this.httpServer?.address() ?? null;
  }

  /**
   * Complete (or refuse) an upgrade. Bytes in `head` arrived with the request: they are the
   * first frames and are fed to the connection.
   */
  handleUpgrade(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    callback: (ws: SocketConnection, req: http.IncomingMessage) => void,
  ): void {
    socket.on("error", ignore);
    if (
      typeof this.options.allowedOrigins !== "function" &&
      this.options.authenticate === undefined
    ) {
      // No asynchronous hook: decide now (no promise, no timer).
      let accepted: Rejection | Accepted;
      try {
        accepted = this.negotiateSync(req);
      } catch {
        reject(socket, 500, "Internal Server Error");
        return;
      }
      this.complete(req, socket, head, accepted, callback);
      return;
    }
    const timer = setTimeout(() => socket.destroy(), this.options.handshakeTimeoutMs ?? 10_000);
    timer.unref();
    this.negotiate(req).then(
      (accepted) => {
        clearTimeout(timer);
        this.complete(req, socket, head, accepted, callback);
      },
      () => {
        clearTimeout(timer);
        reject(socket, 500, "Internal Server Error");
      },
    );
  }

  /**
   * Write the 101 and start the connection. A method of its own so that nothing living as long
   * as the connection (listeners) closes over the upgrade's request, head buffer or timer.
   */
  private complete(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    accepted: Rejection | Accepted,
    callback: (ws: SocketConnection, req: http.IncomingMessage) => void,
  ): void {
    if (socket.destroyed) return;
    if ("status" in accepted)
      return reject(socket, accepted.status, accepted.reason ?? "", accepted.headers);
    socket.write(accepted.response);
    const ws = new SocketConnection(socket as import("node:net").Socket, {
      role: "server",
      limits: this.limits,
      protocol: accepted.protocol ?? "",
      extensions: accepted.extensions,
      codec: accepted.codec,
      serverNoContextTakeover: accepted.serverNoContextTakeover,
      closeTimeoutMs: this.options.closeTimeoutMs ?? 10_000,
      ...(this.options.maxOutboundBytes === undefined
        ? {}
        : { maxOutboundBytes: this.options.maxOutboundBytes }),
      ...(this.options.slowConsumerPolicy === undefined
        ? {}
        : { slowConsumerPolicy: this.options.slowConsumerPolicy }),
    });
    const interval = this.options.pingIntervalMs ?? 30_000;
    if (interval > 0) ws.startHeartbeat(interval, this.options.pongTimeoutMs ?? 10_000);
    socket.off("error", ignore);
    this.clients.add(ws);
    ws.on("close", this.untrack);
    callback(ws, req);
    ws.receiveHead(head);
  }

  /**
   * The whole negotiation with the asynchronous hooks (an `allowedOrigins` function, an
   * `authenticate` hook): checks, then Origin, then authentication, then the answer.
   */
  private async negotiate(req: http.IncomingMessage): Promise<Rejection | Accepted> {
    const valid = this.check(req);
    if ("status" in valid) return valid;
    if (valid.origin !== undefined && !(await this.originAllowed(valid.origin, req))) {
      return { status: 403, reason: "Origin not allowed" };
    }
    if (this.options.authenticate !== undefined) {
      try {
        const verdict = await this.options.authenticate(req);
        if (verdict !== undefined) return verdict;
      } catch {
        return { status: 401, reason: "Unauthorized" };
      }
    }
    return this.answer(valid, req);
  }

  /** negotiate() for servers without asynchronous hooks: no promise, no timer. */
  private negotiateSync(req: http.IncomingMessage): Rejection | Accepted {
    const valid = this.check(req);
    if ("status" in valid) return valid;
    const origins = this.options.allowedOrigins;
    if (valid.origin !== undefined && Array.isArray(origins) && !origins.includes(valid.origin)) {
      return { status: 403, reason: "Origin not allowed" };
    }
    return this.answer(valid, req);
  }

  /** Capacity, RFC 6455 §4.2.1 request validation and the path. */
  private check(req: http.IncomingMessage): Rejection | ValidatedRequest {
    if (this.closing) return { status: 503, reason: "Server is shutting down" };
    const max = this.options.maxConnections ?? Number.POSITIVE_INFINITY;
    if (this.clients.size >= max) return { status: 503, reason: "Too many connections" };
    let valid: ValidatedRequest;
    try {
      const raw = req.rawHeaders;
      const headers: [string, string][] = [];
      for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i]!, raw[i + 1]!]);
      valid = validateRequest({
        method: req.method ?? "",
        target: req.url ?? "",
        httpVersion: req.httpVersion,
        headers,
      });
    } catch (e) {
      if (e instanceof HandshakeError) {
        return { status: e.httpStatus, reason: e.message, headers: e.headers };
      }
      throw e;
    }
    if (this.options.path !== undefined && valid.path.split("?")[0] !== this.options.path) {
      return { status: 400, reason: "Unknown path" };
    }
    return valid;
  }

  /** Subprotocol and permessage-deflate choice, and the 101 response. */
  private answer(valid: ValidatedRequest, req: http.IncomingMessage): Rejection | Accepted {
    const protocol =
      valid.protocols.length === 0
        ? undefined
        : (this.options.handleProtocols?.(valid.protocols, req) ?? valid.protocols[0]);
    if (protocol !== undefined && !valid.protocols.includes(protocol)) {
      return { status: 500, reason: "handleProtocols chose a protocol the client did not offer" };
    }
    let codec: DeflateCodec | null = null;
    let extensions = "";
    let responseExtensions: ExtensionOffer[] = [];
    let serverNoContextTakeover = false;
    const deflate = this.options.perMessageDeflate;
    if (deflate !== undefined && deflate !== false) {
      const agreed = acceptDeflateOffer(valid.extensions, deflate === true ? {} : deflate);
      if (agreed !== null) {
        codec = new DeflateCodec({ role: "server", ...agreed.params });
        responseExtensions = [agreed.response];
        serverNoContextTakeover = agreed.params.serverNoContextTakeover;
        extensions = formatExtensions(responseExtensions);
      }
    }
    // node:crypto's native SHA-1 instead of the core's portable one: this is the hot path.
    const accept = createHash("sha1")
      .update(valid.key + WS_GUID)
      .digest("base64");
    const response = buildAcceptResponse({
      key: valid.key,
      accept,
      ...(protocol === undefined ? {} : { protocol }),
      extensions: responseExtensions,
    });
    return { response, protocol, extensions, codec, serverNoContextTakeover };
  }

  /**
   * Send one message to many connections: it is framed once and the same bytes are written to
   * every recipient (writes are corked per tick). Recipients that compress and negotiated
   * server_no_context_takeover share one compressed frame; the others get the uncompressed frame
   * (always allowed, RFC 7692 §6). `to` defaults to every open client. Returns how many
   * recipients got the message ("sent" or "queued"), the rest were dropped by their slow-consumer
   * policy.
   */
  broadcast(
    data: SendData,
    to: Iterable<SocketConnection> | ((c: SocketConnection) => boolean) = this.clients,
    options: { binary?: boolean; compress?: boolean } = {},
  ): number {
    const payload = toBuffer(data);
    const opcode = (options.binary ?? typeof data !== "string") ? Opcode.BINARY : Opcode.TEXT;
    const alloc = (n: number): Uint8Array => Buffer.allocUnsafe(n);
    const plain = encodeFrame({ opcode, payload }, alloc);
    let compressed: Uint8Array | null = null;
    const compressFor = (): Uint8Array => {
      if (compressed === null) {
        let out = deflateRawSync(payload, { level: 1, finishFlush: zlibConstants.Z_SYNC_FLUSH });
        if (out.length >= 4 && out.readUInt32BE(out.length - 4) === 0x0000ffff) {
          out = out.subarray(0, out.length - 4);
        }
        compressed = encodeFrame({ opcode, payload: out, rsv1: true }, alloc);
      }
      return compressed;
    };
    const wantCompress = (options.compress ?? true) && payload.length >= 256;
    const recipients = typeof to === "function" ? [...this.clients].filter(to) : to;
    let delivered = 0;
    for (const c of recipients) {
      if (c.readyState !== ReadyState.OPEN) continue;
      const frame =
        wantCompress && c.compresses && c.serverNoContextTakeover ? compressFor() : plain;
      let result: SendResult;
      try {
        result = c.sendFrame(frame);
      } catch {
        continue; // closing meanwhile
      }
      if (result !== "dropped") delivered++;
    }
    return delivered;
  }

  private async originAllowed(origin: string, req: http.IncomingMessage): Promise<boolean> {
    const policy = this.options.allowedOrigins;
    if (policy === undefined) return true;
    if (typeof policy === "function") return await policy(origin, req);
    return policy.includes(origin);
  }

  /**
   * Stop accepting (503), send 1001 to every connection, wait up to `timeoutMs` for them to
   * close, then terminate the rest and close the listening server if we own it.
   */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closing = true;
    const pending = [...this.clients].map(
      (ws) => new Promise<void>((resolve) => ws.once("close", () => resolve())),
    );
    for (const ws of this.clients) ws.close(1001, "Server shutting down");
    const timer = setTimeout(() => {
      for (const ws of this.clients) ws.terminate();
    }, timeoutMs);
    await Promise.all(pending);
    clearTimeout(timer);
    this.httpServer?.off("upgrade", this.onUpgrade);
    if (this.ownsServer && this.httpServer !== null) {
      const server = this.httpServer;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

function reject(
  socket: Duplex,
  status: number,
  reason: string,
  headers?: Readonly<Record<string, string>>,
): void {
  if (socket.destroyed) return;
  socket.end(buildRejectResponse(status, reason, headers));
}

function ignore(): void {}
