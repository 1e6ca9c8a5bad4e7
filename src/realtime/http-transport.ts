/**
 * The HTTP transports of duplex.v1, for clients whose network lets no WebSocket through
 * (docs/transports.md; the wire format is docs/protocol.md section 18):
 *
 *   POST {path}/sse    a Server-Sent Events stream of duplex.v1 frames (one `data:` line each)
 *   POST {path}/poll   a long-poll: held until there is something to deliver, then the frames as
 *                      NDJSON (one frame per line)
 *   POST {path}/send   commands (publish, history, presence, rpc, unsubscribe, refresh, ping),
 *                      executed in order; their replies as NDJSON
 *
 * No request depends on an earlier one having reached the same node, so any node can serve any
 * request (round-robin load balancing, no sticky sessions):
 *
 * - every request carries the credentials (the `connect` command) and is authenticated again;
 * - the client id is derived from a secret the client keeps for the life of its connection
 *   (`session`): the same on every node, and no one can claim it without the secret;
 * - a stream or poll carries the client's subscriptions with their stream positions, and
 *   subscribes them through the hub's own recovery (exact, or recovered:false, never partial),
 *   so changing the set, reopening a stream or moving to another node loses nothing;
 * - presence lives in the broker: an entry is added by every stream or poll (the broker
 *   announces the join only when the client was not a member), refreshed by the node holding
 *   the stream, and expires `presenceTtlMs` after the client stopped coming — then the leave is
 *   announced by the sweep of a node with subscribers in the channel. An unsubscribe sent to
 *   /send removes it (and announces the leave) from any node.
 * - a node that shuts down ends its streams without a word (the client reopens them on another
 *   node: same client id, still present, positions recovered) and answers new ones 503.
 */

import { createHash } from "node:crypto";
import type * as http from "node:http";
import type { Writable } from "node:stream";
import * as zlib from "node:zlib";
import type { SendResult, ServerOptions } from "../server/index.js";
import { AuthError, type Identity, isGranted, type Operation, onExpiry } from "./auth.js";
import { Membership } from "./channel.js";
import { DisconnectCode, ERROR_MESSAGES, ErrorCode, shouldReconnect } from "./codes.js";
import type { Hub, HubSession } from "./hub.js";
import { ReplyError, toWireError } from "./session.js";
import {
  type ClientInfo,
  type Command,
  CommandError,
  type ConnectCommand,
  encodeError,
  encodePush,
  encodeResult,
  type Push,
  readCommand,
  type SubscribeCommand,
  type SubscribeResult,
  type WireError,
} from "./wire.js";

export interface HttpTransportOptions {
  /** SSE: a comment line this often, so proxies and the client see the stream alive. @default 15_000 */
  readonly keepaliveMs?: number;
  /** Long-polling: how long a poll with nothing to deliver is held. @default 25_000 */
  readonly pollTimeoutMs?: number;
  /** Largest request body (bytes); larger ones get 413. @default 1_048_576 */
  readonly maxBodyBytes?: number;
  /** Most commands in one POST to /send; more get 413. @default 100 */
  readonly maxCommandsPerRequest?: number;
  /** An SSE stream whose unsent bytes exceed this is closed with 4001. @default 4_194_304 */
  readonly maxBufferedBytes?: number;
  /**
   * How long a client that holds no stream or poll (it went away, or is between two polls)
   * stays in the presence of its channels; then its `leave` is pushed. Refreshed every third of
   * this while it holds one. @default 15_000
   */
  readonly presenceTtlMs?: number;
  /**
   * gzip the responses of clients that accept it: an SSE stream (flushed after every event)
   * and long-poll answers of COMPRESS_MIN_BYTES or more. Each compressed SSE stream holds a
   * small deflate state (a 1 KiB window: about 12 KiB). @default false
   */
  readonly compression?: boolean;
}

/** Long-poll answers shorter than this are sent as they are, even with `compression`. */
const COMPRESS_MIN_BYTES = 512;
/** Deflate settings of a compressed SSE stream: small state, flushed after every write. */
const SSE_GZIP: zlib.ZlibOptions = {
  windowBits: 10,
  memLevel: 4,
  flush: zlib.constants.Z_SYNC_FLUSH,
};

/** The Origin policy of a path, as for WebSocket upgrades (`allowedOrigins`). */
export type OriginPolicy = ServerOptions["allowedOrigins"];

export type HttpEndpoint = "sse" | "poll" | "send";
const ENDPOINTS: ReadonlySet<string> = new Set<HttpEndpoint>(["sse", "poll", "send"]);

/** The session secret: what derives the client id. */
const SESSION_RE = /^[A-Za-z0-9_-]{16,128}$/;

const NDJSON = "application/x-ndjson; charset=utf-8";

/** The client id of an HTTP connection: 16 base64url characters derived from its secret. */
export function clientIdOf(session: string): string {
  return createHash("sha256")
    .update(`duplex.v1 session\n${session}`)
    .digest("base64url")
    .slice(0, 16);
}

function infoOf(id: string, identity: Identity): { info: ClientInfo; json: string } {
  const info: ClientInfo = {
    client: id,
    user: identity.user,
    ...(identity.info === undefined ? {} : { info: identity.info }),
  };
  return { info, json: JSON.stringify(info) };
}

/** A request the body of which could not be used: answered with an HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A subscribe of a stream request, and whether the client already had its reply earlier. */
interface StreamSubscribe {
  readonly command: SubscribeCommand & { readonly id: number };
  readonly resume: boolean;
}

interface OpenRequest {
  readonly session: string;
  readonly connect: ConnectCommand;
  /** The client already had the connect reply (from an earlier request). */
  readonly resume: boolean;
  readonly subscribe: Array<StreamSubscribe | { readonly error: CommandError }>;
}

interface SendRequest {
  readonly session: string;
  readonly connect: ConnectCommand;
  readonly commands: readonly unknown[];
  readonly channels: readonly string[];
}

export class HttpTransport {
  readonly keepaliveMs: number;
  readonly pollTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly maxCommandsPerRequest: number;
  readonly maxBufferedBytes: number;
  readonly presenceTtlMs: number;
  readonly compression: boolean;
  private readonly refreshTimer: ReturnType<typeof setInterval>;
  /** Base path (e.g. "/realtime") → its Origin policy. */
  private readonly routes = new Map<string, { allowedOrigins: OriginPolicy }>();
  /** Open streams and polls of this node by client id (one per client). */
  private readonly streams = new Map<string, HttpStream>();
  /**
   * Clients seen lately (client id → user, oldest first), so that a disconnect reaches a
   * polling client between two of its polls.
   */
  private readonly recent = new Map<string, { user: string; seen: number }>();
  /** Clients disconnected while they held no stream: told at their next request. */
  private readonly kicked = new Map<string, { code: number; reason: string; until: number }>();

  /** `closing`: whether the server is shutting down (new streams are sent elsewhere). */
  constructor(
    readonly hub: Hub,
    options: HttpTransportOptions = {},
    private readonly closing: () => boolean = () => false,
  ) {
    this.keepaliveMs = positive("keepaliveMs", options.keepaliveMs, 15_000);
    this.pollTimeoutMs = positive("pollTimeoutMs", options.pollTimeoutMs, 25_000);
    this.maxBodyBytes = positive("maxBodyBytes", options.maxBodyBytes, 1024 * 1024);
    this.maxCommandsPerRequest = positive(
      "maxCommandsPerRequest",
      options.maxCommandsPerRequest,
      100,
    );
    this.maxBufferedBytes = positive("maxBufferedBytes", options.maxBufferedBytes, 4 * 1024 * 1024);
    this.presenceTtlMs = positive("presenceTtlMs", options.presenceTtlMs, 15_000);
    this.compression = options.compression ?? false;
    this.refreshTimer = setInterval(
      () => this.hub.refreshPresence(this.streams.values()),
      Math.max(1, Math.floor(this.presenceTtlMs / 3)),
    );
    this.refreshTimer.unref?.();
  }

  /** Stop refreshing the presence of the open streams (the server is closing). */
  stop(): void {
    clearInterval(this.refreshTimer);
  }

  /** Serve `{path}/sse`, `{path}/poll` and `{path}/send` with this Origin policy. */
  route(path: string, allowedOrigins?: OriginPolicy): void {
    this.routes.set(path.endsWith("/") ? path.slice(0, -1) : path, { allowedOrigins });
  }

  /** Open streams and polls on this node. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** How long a client is remembered after its last request. */
  private get memoryMs(): number {
    return 2 * Math.max(this.pollTimeoutMs, this.keepaliveMs);
  }

  /**
   * Disconnect the clients of `user` seen on this node lately that hold no stream now (a
   * polling client between two polls): their next request here gets the `disconnect` push.
   * The clients with a stream are disconnected through hub.sessions. Returns how many.
   */
  disconnectIdle(user: string, code: number, reason = ERROR_MESSAGES[code] ?? ""): number {
    this.prune();
    let n = 0;
    for (const [client, r] of this.recent) {
      if (r.user !== user || this.streams.has(client)) continue;
      this.kicked.set(client, { code, reason, until: Date.now() + this.memoryMs });
      this.recent.delete(client);
      n++;
    }
    return n;
  }

  /** A disconnected client leaves the presence of its channels (with `leave` pushes). */
  private leaveAll(client: RequestClient, channels: readonly string[]): void {
    for (const channel of channels) {
      if (this.hub.namespaces.of(channel)?.presence === true)
        this.hub.leavePresence(client, channel);
    }
  }

  /** Remember the client; a disconnect frame when it was disconnected meanwhile. */
  private seen(client: string, user: string): string | undefined {
    const now = Date.now();
    this.prune();
    const kick = this.kicked.get(client);
    if (kick !== undefined) {
      this.kicked.delete(client);
      if (kick.until > now) return disconnectPush(kick.code, kick.reason);
    }
    this.recent.delete(client); // re-inserted last: the map stays oldest first
    this.recent.set(client, { user, seen: now });
    return undefined;
  }

  private prune(): void {
    const old = Date.now() - this.memoryMs;
    for (const [client, r] of this.recent) {
      if (r.seen > old) break;
      this.recent.delete(client);
    }
    for (const [client, k] of this.kicked) if (k.until <= Date.now()) this.kicked.delete(client);
  }

  /** Handle the request if it is for an HTTP transport endpoint; false otherwise. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const slash = path.lastIndexOf("/");
    const endpoint = path.slice(slash + 1);
    if (!ENDPOINTS.has(endpoint)) return false;
    const route = this.routes.get(path.slice(0, slash));
    if (route === undefined) return false;
    this.serve(endpoint as HttpEndpoint, route.allowedOrigins, req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        const status = e instanceof HttpError ? e.status : 500;
        replyJson(res, status, { error: e instanceof HttpError ? e.message : "internal error" });
      } else {
        res.destroy();
      }
    });
    return true;
  }

  private async serve(
    endpoint: HttpEndpoint,
    allowedOrigins: OriginPolicy,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    const origin = req.headers.origin;
    if (typeof origin === "string") {
      if (!(await originAllowed(allowedOrigins, origin, req))) {
        throw new HttpError(403, "Origin not allowed");
      }
      res.setHeader("Access-Control-Allow-Origin", origin);
      res.setHeader("Access-Control-Allow-Credentials", "true");
      res.setHeader("Vary", "Origin");
    }
    if (req.method === "OPTIONS") {
      const asked = req.headers["access-control-request-headers"];
      res.writeHead(204, {
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": typeof asked === "string" ? asked : "content-type",
        "Access-Control-Max-Age": "600",
      });
      res.end();
      return;
    }
    if (req.method !== "POST") {
      res.setHeader("Allow", "POST, OPTIONS");
      throw new HttpError(405, "use POST");
    }
    const body = await readBody(req, this.maxBodyBytes);
    let raw: unknown;
    try {
      raw = JSON.parse(body.toString("utf8"));
    } catch {
      throw new HttpError(400, "body is not JSON");
    }
    if (endpoint === "send") await this.send(this.sendRequest(raw), req, res);
    else await this.open(endpoint, this.openRequest(raw), req, res);
  }

  // --- Parsing -------------------------------------------------------------------------------

  private common(raw: unknown): { session: string; connect: ConnectCommand; body: Fields } {
    if (!isObject(raw)) throw new HttpError(400, "body must be a JSON object");
    const session = raw.session;
    if (typeof session !== "string" || !SESSION_RE.test(session)) {
      throw new HttpError(400, "session must be 16 to 128 characters of A-Z a-z 0-9 _ -");
    }
    let connect: Command;
    try {
      connect = readCommand(raw.connect, this.hub.wireLimits);
    } catch (e) {
      throw new HttpError(400, `connect: ${e instanceof Error ? e.message : "malformed"}`);
    }
    if (connect.type !== "connect") throw new HttpError(400, "connect must be a connect command");
    return { session, connect, body: raw };
  }

  private openRequest(raw: unknown): OpenRequest {
    const { session, connect, body } = this.common(raw);
    const list = body.subscribe ?? [];
    if (!Array.isArray(list)) throw new HttpError(400, "subscribe must be an array");
    if (list.length > 4 * this.hub.options.maxChannelsPerConnection) {
      throw new HttpError(413, "too many subscribe commands");
    }
    const subscribe = list.map((item: unknown) => {
      try {
        const command = readCommand(item, this.hub.wireLimits);
        if (command.type !== "subscribe" || command.id === undefined) {
          throw new HttpError(400, "subscribe entries must be subscribe commands with an id");
        }
        const resume = isObject(item) && item.resume === true;
        return { command: command as SubscribeCommand & { id: number }, resume };
      } catch (e) {
        if (e instanceof CommandError && e.id !== undefined) return { error: e };
        if (e instanceof HttpError) throw e;
        throw new HttpError(400, `subscribe: ${e instanceof Error ? e.message : "malformed"}`);
      }
    });
    return { session, connect: connect as ConnectCommand, resume: body.resume === true, subscribe };
  }

  private sendRequest(raw: unknown): SendRequest {
    const { session, connect, body } = this.common(raw);
    const commands = body.commands;
    if (!Array.isArray(commands)) throw new HttpError(400, "commands must be an array");
    if (commands.length > this.maxCommandsPerRequest) {
      throw new HttpError(413, `at most ${this.maxCommandsPerRequest} commands per request`);
    }
    const claimed = body.channels ?? [];
    if (!Array.isArray(claimed) || claimed.some((c) => typeof c !== "string")) {
      throw new HttpError(400, "channels must be an array of strings");
    }
    return {
      session,
      connect: connect as ConnectCommand,
      commands,
      channels: (claimed as string[]).slice(0, this.hub.options.maxChannelsPerConnection),
    };
  }

  // --- Authentication ------------------------------------------------------------------------

  /** The identity, or the frames that refuse the request (the connect error, the disconnect). */
  private async authenticate(
    connect: ConnectCommand,
    req: http.IncomingMessage,
  ): Promise<Identity | string[]> {
    try {
      return await this.hub.identify(connect.token, connect.data, req);
    } catch (e) {
      const frames: string[] = [];
      if (connect.id !== undefined) frames.push(encodeError(connect.id, toWireError(e)));
      if (e instanceof AuthError) {
        const code =
          e.code === ErrorCode.TOKEN_EXPIRED
            ? DisconnectCode.TOKEN_EXPIRED
            : DisconnectCode.UNAUTHORIZED;
        frames.push(disconnectPush(code, e.message.slice(0, 100)));
      }
      return frames;
    }
  }

  // --- Streams and polls ---------------------------------------------------------------------

  private async open(
    endpoint: "sse" | "poll",
    request: OpenRequest,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    // Shutting down: the client reopens at once, and the load balancer sends it elsewhere.
    if (this.closing()) {
      res.setHeader("Retry-After", "0");
      throw new HttpError(503, "server shutting down");
    }
    const stream = new HttpStream(
      clientIdOf(request.session),
      req,
      res,
      this,
      endpoint === "sse" ? "sse" : "poll",
    );
    stream.start();
    const identity = await this.authenticate(request.connect, req);
    if (Array.isArray(identity)) {
      for (const frame of identity) stream.write(frame, true);
      stream.end();
      return;
    }
    if (stream.ended) return;
    const kicked = this.seen(stream.clientId, identity.user);
    if (kicked !== undefined) {
      const channels = request.subscribe.flatMap((e) =>
        "command" in e ? [e.command.channel] : [],
      );
      this.leaveAll(new RequestClient(stream.clientId, req, identity), channels);
      stream.write(kicked, true);
      stream.end();
      return;
    }
    if (this.closing()) {
      stream.end(); // shut down while authenticating: reopened elsewhere
      return;
    }
    // One stream per client on a node: a client that opened a new one has let the old one go.
    this.streams.get(stream.clientId)?.replaced();
    this.streams.set(stream.clientId, stream);
    stream.connected(identity);
    const connect = request.connect;
    if (!request.resume && connect.id !== undefined) {
      const keepalive = stream.kind === "sse" ? this.keepaliveMs : this.pollTimeoutMs;
      stream.write(
        encodeResult(connect.id, {
          client: stream.clientId,
          user: identity.user,
          ...(identity.expiresAt === undefined ? {} : { expires: identity.expiresAt }),
          ping: 0,
          ...(this.hub.node === undefined ? {} : { node: this.hub.node }),
          maxPublishBytes: this.hub.options.maxPublishBytes,
          transport: stream.kind === "sse" ? "sse" : "polling",
          keepalive,
        }),
        true,
      );
    }
    const max = this.hub.options.maxChannelsPerConnection;
    for (const [i, entry] of request.subscribe.entries()) {
      if (stream.ended) return;
      if ("error" in entry) {
        const e = entry.error;
        stream.write(encodeError(e.id!, { code: e.code, message: e.message }), true);
        continue;
      }
      const { command, resume } = entry;
      if (i >= max) {
        stream.write(
          encodeError(command.id, {
            code: ErrorCode.LIMIT_EXCEEDED,
            message: "too many channels on this connection",
          }),
          true,
        );
        continue;
      }
      try {
        const result = await this.hub.execute(stream, command);
        if (stream.ended) return;
        const reply = result.reply as SubscribeResult;
        // A resumed subscription that recovered nothing tells the client nothing new.
        const trivial =
          resume && (reply.recovered === true || !reply.recoverable) && !reply.publications;
        if (!trivial) stream.write(encodeResult(command.id, reply), true);
        result.after?.();
      } catch (e) {
        if (stream.ended) return;
        stream.write(encodeError(command.id, toWireError(e)), true);
      }
    }
    stream.subscribed();
  }

  /** A stream or poll that ended. */
  forget(stream: HttpStream): void {
    if (this.streams.get(stream.clientId) === stream) this.streams.delete(stream.clientId);
  }

  // --- Commands ------------------------------------------------------------------------------

  private async send(
    request: SendRequest,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    const identity = await this.authenticate(request.connect, req);
    if (Array.isArray(identity)) {
      replyNdjson(res, identity);
      return;
    }
    const client = new RequestClient(clientIdOf(request.session), req, identity);
    const kicked = this.seen(client.id, identity.user);
    if (kicked !== undefined) {
      this.leaveAll(client, request.channels);
      replyNdjson(res, [kicked]);
      return;
    }
    const claimed = new Set(request.channels);
    const frames: string[] = [];
    for (const raw of request.commands) {
      let command: Command;
      try {
        command = readCommand(raw, this.hub.wireLimits);
      } catch (e) {
        if (e instanceof CommandError && e.id !== undefined) {
          frames.push(encodeError(e.id, { code: e.code, message: e.message }));
          continue;
        }
        const message = e instanceof Error ? e.message : "bad command";
        frames.push(disconnectPush(DisconnectCode.BAD_REQUEST, message.slice(0, 100)));
        break;
      }
      try {
        const reply = await this.execute(client, command, claimed);
        if (command.id !== undefined) frames.push(encodeResult(command.id, reply));
      } catch (e) {
        frames.push(failure(command, toWireError(e)));
      }
    }
    replyNdjson(res, frames);
  }

  private async execute(client: RequestClient, c: Command, claimed: Set<string>): Promise<object> {
    switch (c.type) {
      case "connect":
        throw new ReplyError(ErrorCode.ALREADY_CONNECTED);
      case "subscribe":
        throw new ReplyError(
          ErrorCode.BAD_REQUEST,
          "subscribe by opening a stream (sse) or a poll with the subscription",
        );
      case "unsubscribe": {
        // The stream stops delivering when the client reopens it without the channel; here
        // the client leaves the channel's presence, whichever node holds its entry.
        const ns = this.hub.namespaces.of(c.channel);
        if (ns?.presence === true) this.hub.leavePresence(client, c.channel);
        return {};
      }
      default: {
        if ("channel" in c) await this.claim(client, c.channel, claimed);
        const result = await this.hub.execute(client, c);
        result.after?.();
        return result.reply;
      }
    }
  }

  /**
   * The client says it is subscribed to `channel` (on the node that holds its stream). For the
   * namespace rules that look at subscriptions ("subscribers"), count it as subscribed when it
   * may subscribe: what it could do by subscribing, it may do.
   */
  private async claim(client: RequestClient, channel: string, claimed: Set<string>): Promise<void> {
    if (!claimed.has(channel) || client.channels.has(channel)) return;
    try {
      const ns = this.hub.namespaceOf(channel);
      await this.hub.allow(client, ns, "subscribe", channel);
      client.channels.set(channel, new Membership(client));
    } catch {
      // Not allowed to subscribe: not counted as a subscriber.
    }
  }
}

/**
 * A stream (SSE) or a long-poll of one client on this node: a subscriber of its channels for
 * as long as the response is open.
 */
class HttpStream implements HubSession {
  /** This stream in the hub's channel tables (the client's earlier streams had others). */
  readonly id: string;
  identity: Identity | undefined;
  info: ClientInfo | undefined;
  infoJson: string | undefined;
  readonly channels = new Map<string, Membership>();
  ended = false;
  /** Poll: frames waiting for the response, and whether one of them is news to the client. */
  private readonly batch: string[] = [];
  private batchBytes = 0;
  private news = false;
  private holding = false;
  private flushScheduled = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Cancels the disconnect at the token's expiry. */
  private cancelExpiry: () => void = () => undefined;
  /** SSE with `compression`, for a client that accepts gzip: the deflate stream. */
  private gzip: zlib.Gzip | undefined;

  constructor(
    /** The client's id (info.client), the same for all its requests. */
    readonly clientId: string,
    readonly request: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly transport: HttpTransport,
    readonly kind: "sse" | "poll",
  ) {
    this.id = transport.hub.newClientId();
  }

  get isClosed(): boolean {
    return this.ended;
  }

  /**
   * The client's next poll (here, or on another node) likely wants the same channels: keep
   * them subscribed in the broker for two poll timeouts rather than unsubscribing and
   * subscribing again at every poll. A stream that ends is reopened at once, or not at all.
   */
  get channelLingerMs(): number {
    return this.kind === "poll" ? 2 * this.transport.pollTimeoutMs : this.transport.keepaliveMs;
  }

  private get hub(): Hub {
    return this.transport.hub;
  }

  /** Whether the response may be gzipped (the option, and the client accepts it). */
  private get gzipAccepted(): boolean {
    if (!this.transport.compression) return false;
    const accepted = this.request.headers["accept-encoding"];
    return typeof accepted === "string" && /\bgzip\b/i.test(accepted);
  }

  /** Response headers (SSE: at once, with a first comment proving the stream flows). */
  start(): void {
    this.res.on("close", () => {
      this.gzip?.destroy(); // its deflate state goes now, not with the garbage collector
      this.finish(false);
    });
    if (this.kind !== "sse") return;
    const gzip = this.gzipAccepted;
    this.res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store, no-transform",
      "X-Accel-Buffering": "no",
      ...(this.transport.compression ? { Vary: "Accept-Encoding" } : {}),
      ...(gzip ? { "Content-Encoding": "gzip" } : {}),
    });
    if (gzip) {
      this.gzip = zlib.createGzip(SSE_GZIP);
      this.gzip.on("error", () => this.res.destroy());
      this.gzip.pipe(this.res);
    }
    this.out.write(": duplex.v1\n\n");
  }

  /** Where SSE bytes go: the gzip stream in front of the response, or the response. */
  private get out(): Writable {
    return this.gzip ?? this.res;
  }

  connected(identity: Identity): void {
    this.identity = identity;
    const { info, json } = infoOf(this.clientId, identity);
    this.info = info;
    this.infoJson = json;
    this.hub.sessions.add(this);
    this.cancelExpiry = onExpiry(identity.expiresAt, () =>
      this.disconnect(DisconnectCode.TOKEN_EXPIRED),
    );
    if (this.kind === "sse") {
      this.timer = setInterval(() => this.out.write(":\n\n"), this.transport.keepaliveMs);
      this.timer.unref?.();
    }
  }

  /** Every subscribe of the request is answered: a poll with nothing new waits for news. */
  subscribed(): void {
    if (this.ended || this.kind !== "poll") return;
    if (this.news) {
      this.scheduleFlush();
      return;
    }
    this.holding = true;
    this.timer = setTimeout(() => this.end(), this.transport.pollTimeoutMs);
    this.timer.unref?.();
  }

  /** Write a frame; `news`: the client learns something it did not know (a poll answers). */
  write(text: string, news: boolean): void {
    if (this.ended) return;
    if (this.kind === "sse") {
      this.out.write(`data: ${text}\n\n`);
      return;
    }
    this.batch.push(text);
    this.batchBytes += text.length + 1;
    if (news) {
      this.news = true;
      if (this.holding) this.scheduleFlush();
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Publications that arrive together go out together.
    setImmediate(() => this.end());
  }

  /** Finish the response (a poll: with its frames); the client goes on with a new request. */
  end(): void {
    if (this.ended) return;
    if (this.kind === "poll" && !this.res.headersSent) {
      const text = this.batch.length === 0 ? "" : `${this.batch.join("\n")}\n`;
      let body = Buffer.from(text, "utf8");
      const gzip = body.length >= COMPRESS_MIN_BYTES && this.gzipAccepted;
      if (gzip) body = zlib.gzipSync(body);
      this.res.writeHead(200, {
        "Content-Type": NDJSON,
        "Cache-Control": "no-store",
        "Content-Length": body.length,
        ...(this.transport.compression ? { Vary: "Accept-Encoding" } : {}),
        ...(gzip ? { "Content-Encoding": "gzip" } : {}),
      });
      this.res.end(body);
    } else {
      this.out.end();
    }
    this.finish(false);
  }

  /** The client opened another stream or poll on this node: this one is over. */
  replaced(): void {
    this.end();
  }

  private finish(leavePresence: boolean): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.cancelExpiry();
    this.transport.forget(this);
    this.hub.sessionClosed(this, leavePresence);
  }

  // --- HubSession ----------------------------------------------------------------------------

  granted(op: Operation, channel: string): boolean {
    return this.identity !== undefined && isGranted(this.identity.grants, op, channel);
  }

  setIdentity(): void {
    throw new ReplyError(ErrorCode.ALREADY_CONNECTED);
  }

  refreshIdentity(): void {
    throw new ReplyError(ErrorCode.BAD_REQUEST, "send refresh to /send");
  }

  get presenceTtlMs(): number {
    return this.transport.presenceTtlMs;
  }

  /**
   * The server ends this client's connection: a `disconnect` push, and the client leaves its
   * channels' presence (it comes back, if it does, as a new connection). Except when this node
   * shuts down (4000): the client is not disconnected, only this stream ends, and the client
   * reopens it on another node (the connection, its client id and its presence go on).
   */
  disconnect(code: number, reason: string = ERROR_MESSAGES[code] ?? ""): void {
    if (this.ended) return;
    if (code === DisconnectCode.SHUTDOWN) {
      this.end();
      return;
    }
    this.write(disconnectPush(code, reason), true);
    for (const channel of this.channels.keys()) {
      if (this.hub.namespaces.of(channel)?.presence === true) this.hub.leavePresence(this, channel);
    }
    this.end();
  }

  // --- Subscriber ----------------------------------------------------------------------------

  bufferedAmount(): number {
    if (this.kind !== "sse") return this.batchBytes;
    const gzip = this.gzip;
    return (
      this.res.writableLength + (gzip === undefined ? 0 : gzip.writableLength + gzip.readableLength)
    );
  }

  writePub(_frame: Uint8Array, text: string): SendResult {
    if (this.ended) return "dropped";
    this.write(text, true);
    if (this.kind === "poll") return "queued";
    const buffered = this.bufferedAmount();
    if (buffered > this.transport.maxBufferedBytes) {
      this.disconnect(DisconnectCode.SLOW);
      return "dropped";
    }
    return buffered > 0 ? "queued" : "sent";
  }

  lostPosition(channel: string): void {
    this.channels.delete(channel);
    this.write(
      encodePush({
        type: "unsubscribed",
        channel,
        code: DisconnectCode.INSUFFICIENT_STATE,
        reason: ERROR_MESSAGES[DisconnectCode.INSUFFICIENT_STATE] ?? "",
        resubscribe: true,
      }),
      true,
    );
    this.hub.afterLeave(this, channel, false);
  }

  tooSlow(): void {
    this.disconnect(DisconnectCode.SLOW);
  }

  onDrainOnce(callback: () => void): void {
    if (this.kind === "sse") this.out.once("drain", callback);
    else queueMicrotask(callback); // a poll is answered as soon as it has something
  }
}

/** The client of one POST to /send: authenticated, subscribed to nothing on this node. */
class RequestClient implements HubSession {
  info: ClientInfo;
  infoJson: string;
  readonly channels = new Map<string, Membership>();
  readonly isClosed = false;

  constructor(
    readonly id: string,
    readonly request: http.IncomingMessage,
    public identity: Identity,
  ) {
    const { info, json } = infoOf(id, identity);
    this.info = info;
    this.infoJson = json;
  }

  granted(op: Operation, channel: string): boolean {
    return isGranted(this.identity.grants, op, channel);
  }

  setIdentity(): void {
    throw new ReplyError(ErrorCode.ALREADY_CONNECTED);
  }

  refreshIdentity(identity: Identity): void {
    if (identity.user !== this.identity.user) {
      throw new ReplyError(
        ErrorCode.PERMISSION_DENIED,
        "a refreshed token must be for the same user",
      );
    }
    this.identity = identity;
  }

  disconnect(): void {}
  bufferedAmount(): number {
    return 0;
  }
  writePub(): SendResult {
    return "dropped";
  }
  lostPosition(): void {}
  tooSlow(): void {}
  onDrainOnce(): void {}
}

// --- helpers ---------------------------------------------------------------------------------

type Fields = Record<string, unknown>;

function isObject(v: unknown): v is Fields {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`HTTP transports: ${name} must be a positive number, got ${value}`);
  }
  return value;
}

function disconnectPush(code: number, reason: string): string {
  const push: Push = { type: "disconnect", code, reason, reconnect: shouldReconnect(code) };
  return encodePush(push);
}

/** A failed command: its error reply, or an `error` push when it has no id. */
function failure(command: Command, error: WireError): string {
  if (command.id !== undefined) return encodeError(command.id, error);
  const channel = "channel" in command ? command.channel : undefined;
  return encodePush({
    type: "error",
    command: command.type,
    ...(channel === undefined ? {} : { channel }),
    error,
  });
}

async function originAllowed(
  policy: OriginPolicy,
  origin: string,
  req: http.IncomingMessage,
): Promise<boolean> {
  if (policy === undefined) return true;
  if (typeof policy === "function") return await policy(origin, req);
  return policy.includes(origin);
}

/** Answer with a JSON body (not cached): the HTTP API, the transports' refusals, /healthz. */
export function replyJson(res: http.ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-store",
  });
  res.end(text);
}

function replyNdjson(res: http.ServerResponse, frames: readonly string[]): void {
  const body = frames.length === 0 ? "" : `${frames.join("\n")}\n`;
  res.writeHead(200, {
    "Content-Type": NDJSON,
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
  });
  res.end(body);
}

/** The request body, at most `max` bytes (else an HttpError 413; the rest is discarded). */
export function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners("data");
        req.resume(); // discard the rest; the 413 goes out on the same connection
        reject(new HttpError(413, `body larger than ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
