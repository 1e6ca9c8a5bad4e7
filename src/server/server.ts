/**
 * WebSocketServer: accepts RFC 6455 upgrades on its own port, on an existing http(s) server, or
 * through handleUpgrade() for frameworks. Handshake checks come from the protocol core; the
 * policies (Origin, authentication, subprotocol, permessage-deflate, connection cap) live here.
 */
import { EventEmitter } from "node:events";
import * as http from "node:http";
import type * as https from "node:https";
import type { Duplex } from "node:stream";
import { DeflateCodec } from "../node/deflate-codec.js";
import { SocketConnection } from "../node/socket-connection.js";
import {
  acceptDeflateOffer,
  buildAcceptResponse,
  buildRejectResponse,
  type DeflateOptions,
  type ExtensionOffer,
  formatExtensions,
  HandshakeError,
  type Limits,
  resolveLimits,
  validateRequest,
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
  /** @default 10_000 */
  readonly closeTimeoutMs?: number;
}

export class WebSocketServer extends EventEmitter {
  readonly clients = new Set<SocketConnection>();
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
    this.negotiate(req).then(
      (accepted) => {
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
          closeTimeoutMs: this.options.closeTimeoutMs ?? 10_000,
        });
        socket.off("error", ignore);
        this.clients.add(ws);
        ws.on("close", () => this.clients.delete(ws));
        callback(ws, req);
        ws.receiveHead(head);
      },
      () => reject(socket, 500, "Internal Server Error"),
    );
  }

  private async negotiate(req: http.IncomingMessage): Promise<
    | Rejection
    | {
        response: string;
        protocol: string | undefined;
        extensions: string;
        codec: DeflateCodec | null;
      }
  > {
    if (this.closing) return { status: 503, reason: "Server is shutting down" };
    const max = this.options.maxConnections ?? Number.POSITIVE_INFINITY;
    if (this.clients.size >= max) return { status: 503, reason: "Too many connections" };
    let valid: ReturnType<typeof validateRequest>;
    try {
      const headers: [string, string][] = [];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        headers.push([req.rawHeaders[i] ?? "", req.rawHeaders[i + 1] ?? ""]);
      }
      valid = validateRequest({
        method: req.method ?? "",
        target: req.url ?? "",
        httpVersion: req.httpVersion,
        headers,
      });
    } catch (e) {
      if (e instanceof HandshakeError)
        return { status: e.httpStatus, reason: e.message, headers: e.headers };
      throw e;
    }
    if (this.options.path !== undefined && valid.path.split("?")[0] !== this.options.path) {
      return { status: 400, reason: "Unknown path" };
    }
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
    const deflate = this.options.perMessageDeflate;
    if (deflate !== undefined && deflate !== false) {
      const agreed = acceptDeflateOffer(valid.extensions, deflate === true ? {} : deflate);
      if (agreed !== null) {
        codec = new DeflateCodec({ role: "server", ...agreed.params });
        responseExtensions = [agreed.response];
        extensions = formatExtensions(responseExtensions);
      }
    }
    const response = buildAcceptResponse({
      key: valid.key,
      ...(protocol === undefined ? {} : { protocol }),
      extensions: responseExtensions,
    });
    return { response, protocol, extensions, codec };
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
