/**
 * RealtimeServer: the hub on a WebSocket server, plus the HTTP publish API for backends that are
 * not WebSocket clients.
 *
 *   const rt = new RealtimeServer({ broker: new MemoryBroker(), apiKey: process.env.API_KEY });
 *   await rt.start();
 *   const http = createServer((req, res) => { if (!rt.handleHttp(req, res)) res.end("hello"); });
 *   rt.attach(http);               // WebSocket upgrades on /realtime
 *   http.listen(8080);
 */

import { timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import type * as http from "node:http";
import type * as https from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ServerOptions, type WebSocketConnection, WebSocketServer } from "../server/index.js";
import { DisconnectCode, ErrorCode, isDisconnectCode } from "./codes.js";
import {
  HttpError,
  HttpTransport,
  type HttpTransportOptions,
  readBody,
  replyJson,
} from "./http-transport.js";
import { Hub, type HubOptions } from "./hub.js";
import { ReplyError, Session, toWireError } from "./session.js";
import { type Json, SUBPROTOCOL } from "./wire.js";

export interface RealtimeServerOptions extends HubOptions {
  /**
   * Enables `POST /api/publish` for callers presenting this key (`Authorization: apikey KEY` or
   * `X-API-Key: KEY`). @default the HTTP API is off
   */
  readonly apiKey?: string;
  /** URL path of the HTTP API. @default "/api" */
  readonly apiPath?: string;
  /**
   * Folder of the browser bundle of the client SDK (`npm run build` writes dist/browser), served
   * at `/duplex-client.js` (ES module) and `/duplex-client.iife.js` (global `Duplex`).
   * @default the dist/browser folder next to this module
   */
  readonly clientBundleDir?: string;
  /**
   * The HTTP transports next to every path given to attach(): `{path}/sse`, `{path}/poll` and
   * `{path}/send`, for networks that let no WebSocket through (docs/transports.md), with the
   * same Origin policy; false turns them off. @default on, with the defaults of HttpTransportOptions
   */
  readonly httpTransports?: HttpTransportOptions | false;
  /**
   * close() spreads the clients' disconnects (4000) evenly over this many ms instead of sending
   * them all at once, so that the clients of a node being shut down come back to the other nodes
   * at a steady rate rather than all in the same instant. The node keeps serving the clients not
   * yet disconnected. @default 0 (all at once)
   */
  readonly drainMs?: number;
}

/** Disconnects during a drain are sent in batches this far apart. */
const DRAIN_TICK_MS = 10;

const BUNDLE_FILES = new Set([
  "duplex-client.js",
  "duplex-client.js.map",
  "duplex-client.iife.js",
  "duplex-client.iife.js.map",
]);

export type WebSocketOptions = Omit<
  ServerOptions,
  "port" | "server" | "noServer" | "handleProtocols"
>;

const MAX_API_BODY = 1024 * 1024;

export class RealtimeServer extends Hub {
  private readonly apiKey: Buffer | undefined;
  private readonly apiPath: string;
  /** The methods of the HTTP API, by the path after `{apiPath}/`; every one is a POST. */
  private readonly apiMethods = new Map<string, ApiMethod>([
    ["publish", { shape: "{channel, data, key?}", run: (body) => this.apiPublish(body) }],
    ["disconnect", { shape: "{user, code?}", run: (body) => this.apiDisconnect(body) }],
  ]);
  private readonly servers = new Set<WebSocketServer>();
  private readonly bundleDir: string;
  private readonly bundleCache = new Map<string, Buffer>();
  /** SSE, long-polling and command POSTs (undefined when turned off). */
  readonly httpTransport: HttpTransport | undefined;
  private readonly drainMs: number;
  private closing = false;

  constructor(options: RealtimeServerOptions) {
    super(options);
    this.apiKey = options.apiKey === undefined ? undefined : Buffer.from(options.apiKey, "utf8");
    this.apiPath = options.apiPath ?? "/api";
    this.bundleDir =
      options.clientBundleDir ?? fileURLToPath(new URL("../browser/", import.meta.url));
    this.httpTransport =
      options.httpTransports === false
        ? undefined
        : new HttpTransport(this, options.httpTransports ?? {}, () => this.closing);
    const drainMs = options.drainMs ?? 0;
    if (!(drainMs >= 0) || !Number.isFinite(drainMs)) {
      throw new RangeError(`RealtimeServer: drainMs must be a number >= 0, got ${drainMs}`);
    }
    this.drainMs = drainMs;
  }

  /**
   * Accept duplex.v1 WebSocket upgrades on `path` of an http(s) server. Other WebSocket options
   * (allowedOrigins, limits, heartbeat, perMessageDeflate…) go to the WebSocketServer.
   */
  attach(
    server: http.Server | https.Server,
    path = "/realtime",
    options: WebSocketOptions = {},
  ): WebSocketServer {
    this.httpTransport?.route(path, options.allowedOrigins);
    return this.webSocketServer({ server, path }, options);
  }

  /**
   * A WebSocketServer in `noServer` mode for applications that route upgrades themselves:
   * `wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req))`.
   */
  webSocketServer(
    mode: { server: http.Server | https.Server; path: string } | { noServer: true } = {
      noServer: true,
    },
    options: WebSocketOptions = {},
  ): WebSocketServer {
    // A command is at most a publication plus its envelope: refuse larger messages (1009)
    // before they are buffered and parsed, unless the application chose its own limit.
    const maxMessageBytes = Math.max(2 * this.options.maxPublishBytes, 128 * 1024);
    const wss = new WebSocketServer({
      ...options,
      ...mode,
      limits: { maxMessageBytes, ...options.limits },
      handleProtocols: (offered) => (offered.includes(SUBPROTOCOL) ? SUBPROTOCOL : undefined),
    });
    this.servers.add(wss);
    wss.on("connection", (ws: WebSocketConnection, req: http.IncomingMessage) =>
      this.handleConnection(ws, req),
    );
    return wss;
  }

  /** Serve one WebSocket connection (for applications that run their own WebSocketServer). */
  handleConnection(ws: WebSocketConnection, request: unknown): Session | undefined {
    if (ws.protocol !== SUBPROTOCOL) {
      ws.close(DisconnectCode.UNSUPPORTED_PROTOCOL, `offer the ${SUBPROTOCOL} subprotocol`);
      return undefined;
    }
    const session = new Session(ws, this, request);
    this.sessions.add(session);
    // Shutting down: a connection that still arrives is sent elsewhere at once.
    if (this.closing) session.disconnect(DisconnectCode.SHUTDOWN);
    return session;
  }

  /** Stop the presence timers (of the hub and of the HTTP transports). */
  override stop(): void {
    this.httpTransport?.stop();
    super.stop();
  }

  /**
   * This node's part of `disconnectUser` (which reaches every node): the user's WebSocket
   * sessions and HTTP streams, and its long-polling clients seen lately between two polls (their
   * next request gets the `disconnect`).
   */
  protected override disconnectLocal(user: string, code: number): number {
    // Polling clients between two polls first (those holding a stream are in sessions).
    const idle = this.httpTransport?.disconnectIdle(user, code) ?? 0;
    return idle + super.disconnectLocal(user, code);
  }

  /**
   * Shut down: every client is told to reconnect elsewhere (4000, with its own jittered
   * backoff) — all at once, or spread over `drainMs` — then the WebSocket servers close (waiting
   * up to `timeoutMs` for the closing handshakes). The broker is the caller's to close.
   */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closing = true;
    const sessions = [...this.sessions];
    const n = sessions.length;
    // Batch b (of `batches`, evenly spaced over drainMs) disconnects its share of the sessions.
    const batches = Math.max(1, Math.min(n, Math.floor(this.drainMs / DRAIN_TICK_MS)));
    const start = Date.now();
    for (let b = 0; b < batches; b++) {
      const wait = start + (b * this.drainMs) / batches - Date.now();
      if (b > 0 && wait > 0) await new Promise((r) => setTimeout(r, wait));
      const share = sessions.slice(
        Math.floor((b * n) / batches),
        Math.floor(((b + 1) * n) / batches),
      );
      for (const s of share) s.disconnect(DisconnectCode.SHUTDOWN);
    }
    // Sessions that connected meanwhile were refused by handleConnection.
    for (const s of [...this.sessions]) s.disconnect(DisconnectCode.SHUTDOWN);
    await Promise.all([...this.servers].map((wss) => wss.close(timeoutMs)));
    this.servers.clear();
    this.stop();
  }

  // --- HTTP API ------------------------------------------------------------------------------

  /**
   * Handle a request under the API path (`POST /api/publish`), for the HTTP transports
   * (`{path}/sse`, `{path}/poll`, `{path}/send` of every attached path) or for the client bundle.
   * Returns false for any other path so the caller can serve it.
   */
  handleHttp(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (this.httpTransport?.handle(req, res) === true) return true;
    const url = req.url ?? "/";
    const path = url.split("?")[0] ?? "/";
    const file = path.slice(1);
    if (BUNDLE_FILES.has(file) && (req.method === "GET" || req.method === "HEAD")) {
      this.serveBundle(file, req, res);
      return true;
    }
    if (path !== this.apiPath && !path.startsWith(`${this.apiPath}/`)) return false;
    if (this.apiKey === undefined) {
      replyJson(res, 404, { error: "the HTTP API is off (no apiKey configured)" });
      return true;
    }
    if (!this.keyMatches(req)) {
      replyJson(res, 401, { error: "missing or wrong API key" });
      return true;
    }
    const method = this.apiMethods.get(path.slice(this.apiPath.length + 1));
    if (method === undefined) {
      replyJson(res, 404, { error: "unknown API method" });
      return true;
    }
    if (req.method !== "POST") {
      res.setHeader("Allow", "POST");
      replyJson(res, 405, { error: "use POST" });
      return true;
    }
    readBody(req, MAX_API_BODY).then(
      (body) => this.apiCall(method, body, res),
      (e: unknown) => {
        if (e instanceof HttpError) replyJson(res, e.status, { error: e.message });
        else res.destroy(); // the request itself failed (aborted): nobody to answer
      },
    );
    return true;
  }

  private serveBundle(file: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    const cached = this.bundleCache.get(file);
    const send = (body: Buffer): void => {
      res.writeHead(200, {
        "Content-Type": file.endsWith(".map")
          ? "application/json"
          : "text/javascript; charset=utf-8",
        "Content-Length": body.length,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
      });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (cached !== undefined) {
      send(cached);
      return;
    }
    readFile(join(this.bundleDir, file)).then(
      (body) => {
        this.bundleCache.set(file, body);
        send(body);
      },
      () => replyJson(res, 404, { error: "client bundle not built: run npm run build" }),
    );
  }

  private keyMatches(req: http.IncomingMessage): boolean {
    const auth = req.headers.authorization;
    let given: string | undefined;
    if (typeof auth === "string" && auth.toLowerCase().startsWith("apikey "))
      given = auth.slice(7).trim();
    const header = req.headers["x-api-key"];
    if (given === undefined && typeof header === "string") given = header.trim();
    if (given === undefined || this.apiKey === undefined) return false;
    const g = Buffer.from(given, "utf8");
    return g.length === this.apiKey.length && timingSafeEqual(g, this.apiKey);
  }

  /** Parse the body (a JSON object), run the method and answer; errors as JSON with a status. */
  private async apiCall(method: ApiMethod, body: Buffer, res: http.ServerResponse): Promise<void> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      replyJson(res, 400, { error: "body is not JSON" });
      return;
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      replyJson(res, 400, { error: `body must be an object ${method.shape}` });
      return;
    }
    try {
      const [status, answer] = await method.run(parsed as Record<string, unknown>);
      replyJson(res, status, answer);
    } catch (e) {
      const error = toWireError(e);
      const status =
        error.code === ErrorCode.UNKNOWN_CHANNEL
          ? 404
          : error.code === ErrorCode.LIMIT_EXCEEDED
            ? 413
            : error.code === ErrorCode.UNAVAILABLE
              ? 503
              : e instanceof ReplyError
                ? 400
                : 500;
      replyJson(res, status, { error: error.message, code: error.code });
    }
  }

  private async apiPublish(body: Record<string, unknown>): Promise<ApiAnswer> {
    const { channel, data, key } = body;
    if (
      typeof channel !== "string" ||
      data === undefined ||
      (key !== undefined && typeof key !== "string")
    ) {
      return [400, { error: "body must be an object {channel: string, data, key?: string}" }];
    }
    const result = await this.publish(channel, data as Json, key === undefined ? {} : { key });
    return [200, result];
  }

  /**
   * Disconnect a user on every node. Answers this node's count once the broker accepted the
   * message for the others (503 when it did not: the local disconnects happened anyway).
   */
  private async apiDisconnect(body: Record<string, unknown>): Promise<ApiAnswer> {
    const { user, code } = body;
    if (typeof user !== "string") {
      return [400, { error: "body must be an object {user: string, code?: number}" }];
    }
    if (code !== undefined && !isDisconnectCode(code)) {
      return [400, { error: "code must be a disconnect code (an integer in 4000–4999)" }];
    }
    const disconnected = await this.disconnectUser(user, code ?? DisconnectCode.FORCED);
    return [200, { disconnected }];
  }
}

/** An HTTP API answer: status and JSON body. */
type ApiAnswer = readonly [status: number, body: object];

interface ApiMethod {
  /** The expected body, for the error when it is not an object. */
  readonly shape: string;
  readonly run: (body: Record<string, unknown>) => Promise<ApiAnswer>;
}
