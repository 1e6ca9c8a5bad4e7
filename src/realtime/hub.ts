/**
 * The hub: channel registry of one node, the commands of every session, and the bridge to the
 * broker. Subscribing registers the session for live delivery *before* the broker's history is
 * read, so the subscribe reply (position, recovered publications) and the live stream meet
 * exactly: publications that arrive meanwhile are buffered and de-duplicated by offset.
 */

import { randomBytes } from "node:crypto";
import { encodeFrame, Opcode } from "../protocol/index.js";
import {
  AuthError,
  createJwtVerifier,
  type Identity,
  type JwtOptions,
  type Operation,
} from "./auth.js";
import type { Broker, BrokerHandler, BrokerPublication, HistoryPage } from "./broker.js";
import { ChannelState, Membership, type Subscriber } from "./channel.js";
import { DisconnectCode, ErrorCode, isDisconnectCode } from "./codes.js";
import { type Namespace, type NamespaceOptions, Namespaces, type Rule } from "./namespaces.js";
import { type Executed, ReplyError } from "./session.js";
import {
  type ClientInfo,
  type Command,
  DEFAULT_WIRE_LIMITS,
  type HistoryResult,
  isValidChannel,
  type Json,
  type PresenceResult,
  type Publication,
  type PublishResult,
  type StreamPosition,
  type SubscribeResult,
  type WireLimits,
} from "./wire.js";

export interface AuthenticateContext {
  readonly token: string | undefined;
  readonly data: Json | undefined;
  /**
   * The HTTP request (node:http IncomingMessage): the WebSocket's upgrade request, or the request
   * of an HTTP transport (SSE stream, long-poll or command POST).
   */
  readonly request: unknown;
}

/**
 * What the hub needs of a client connection: a WebSocket Session (session.ts), or a stream or
 * request of the HTTP transports (http-transport.ts).
 */
export interface HubSession extends Subscriber {
  /**
   * `id` (from Subscriber) names this connection object in the channel tables; `info.client`
   * is the client id others see and presence is kept under. They are the same for a WebSocket
   * session; an HTTP client keeps its client id across the streams it opens.
   */
  readonly identity: Identity | undefined;
  readonly info: ClientInfo | undefined;
  readonly infoJson: string | undefined;
  /** Channels this client is subscribed to (or subscribing). */
  readonly channels: Map<string, Membership>;
  /** The HTTP request the client came with (given to the authenticate hook). */
  readonly request: unknown;
  /** Whether the token grants `op` on `channel`. */
  granted(op: Operation, channel: string): boolean;
  setIdentity(identity: Identity, name: string | undefined): void;
  /** Throws ReplyError(PERMISSION_DENIED) when the new identity is for another user. */
  refreshIdentity(identity: Identity): void;
  /** Tell the client why (a `disconnect` push) and end the connection. */
  disconnect(code: number, reason?: string): void;
  /** The connection ended (sessionClosed was called or is about to be). */
  readonly isClosed: boolean;
  /**
   * How long this client's presence entries live without a refresh (ms); such sessions are
   * refreshed by their owner (`refreshPresence`), not by the hub's timer. An HTTP stream says how
   * long its client may be away between two requests. @default the hub's presenceTtlMs
   */
  readonly presenceTtlMs?: number;
  /**
   * When this client's leaving leaves a channel without subscribers on this node, keep the
   * channel subscribed in the broker this long (ms): an HTTP client's next poll likely wants it
   * again. @default 0 (let it go at once)
   */
  readonly channelLingerMs?: number;
}

export interface RpcContext {
  readonly client: ClientInfo;
  readonly identity: Identity;
  readonly data: Json | undefined;
}

export type RpcHandler = (context: RpcContext) => Json | undefined | Promise<Json | undefined>;

export interface HubOptions {
  readonly broker: Broker;
  /** Namespace name → options; "" configures channels without a namespace. */
  readonly namespaces?: Readonly<Record<string, NamespaceOptions>>;
  /** Built-in JWT verification of the connect token (docs/auth.md). */
  readonly jwt?: JwtOptions;
  /**
   * Decide who connects: return an Identity, or throw an AuthError. Runs after JWT verification
   * when both are set (then `token` was verified). Without jwt and authenticate every client is
   * accepted as an anonymous user "".
   */
  readonly authenticate?: (context: AuthenticateContext) => Identity | Promise<Identity>;
  /** Close connections that send no `connect` within this time. @default 10_000 */
  readonly connectTimeoutMs?: number;
  /** How often clients should ping (sent in the connect reply). @default 25_000 */
  readonly clientPingMs?: number;
  /** @default 128 */
  readonly maxChannelsPerConnection?: number;
  /** Largest publication `data` (bytes of JSON). @default 65_536 */
  readonly maxPublishBytes?: number;
  /** A publish retried with the same key within this time is not published twice. @default 120_000 */
  readonly idempotencyTtlMs?: number;
  /**
   * Presence entries of WebSocket clients expire unless refreshed (every third of this): a node
   * that dies stops refreshing, and its clients leave (with `leave` pushes) this long after.
   * @default 60_000
   */
  readonly presenceTtlMs?: number;
  /**
   * How often the node removes the expired presence entries of the channels it has subscribers
   * in, announcing their leaves (one broker call per such channel). @default a third of
   * presenceTtlMs, at most 5_000
   */
  readonly presenceSweepMs?: number;
  /** @default 1000 */
  readonly maxHistoryPerRequest?: number;
  /** @default 1000 */
  readonly maxPresencePage?: number;
  /**
   * This node's name, sent in every connect reply (`node`): with several nodes behind a load
   * balancer, clients and operators can tell where a connection landed. @default none
   */
  readonly node?: string;
}

interface ResolvedOptions {
  readonly connectTimeoutMs: number;
  readonly clientPingMs: number;
  readonly maxChannelsPerConnection: number;
  readonly maxPublishBytes: number;
  readonly idempotencyTtlMs: number;
  readonly presenceTtlMs: number;
  readonly presenceSweepMs: number;
  readonly maxHistoryPerRequest: number;
  readonly maxPresencePage: number;
}

export interface PublishOptions {
  /** Idempotency key: a retry within the window is not published twice. */
  readonly key?: string;
  readonly conflate?: string;
  /** Publisher shown to subscribers (defaults to none for server-side publishes). */
  readonly from?: ClientInfo;
}

const ANONYMOUS: Identity = Object.freeze({ user: "", grants: [] });

/** The control messages hubs send each other through the broker (`Broker.publishControl`). */
interface ControlMessage {
  readonly type: "disconnect";
  readonly user: string;
  readonly code: number;
  /** The sending hub's instanceId. */
  readonly origin: string;
}

/** Whether `page` (read with since ≤ the member's offset) holds every publication it lacks. */
function covers(page: HistoryPage, m: Membership): boolean {
  // Position 0 of epoch "" is the start of a stream that did not exist yet: any epoch matches.
  const sameStream = page.epoch === m.epoch || (m.epoch === "" && m.offset === 0);
  if (!sameStream || page.offset < m.offset) return false;
  if (page.offset === m.offset) return true;
  // A page is a run of consecutive offsets (broker rule 1): it holds m.offset+1 … top when it
  // starts at or before the first and ends at the top (a page cut by its limit does not).
  const pubs = page.publications;
  const first = pubs[0]?.offset;
  return first !== undefined && first <= m.offset + 1 && pubs.at(-1)!.offset === page.offset;
}

function frameOf(text: string): Uint8Array {
  return encodeFrame({ opcode: Opcode.TEXT, payload: Buffer.from(text, "utf8") }, (n) =>
    Buffer.allocUnsafe(n),
  );
}

function toPublication(p: BrokerPublication): Publication {
  return {
    offset: p.offset,
    data: JSON.parse(p.data) as Json,
    ...(p.from === undefined ? {} : { from: JSON.parse(p.from) as ClientInfo }),
    time: p.time,
  };
}

export class Hub {
  readonly options: ResolvedOptions;
  readonly wireLimits: WireLimits = DEFAULT_WIRE_LIMITS;
  readonly namespaces: Namespaces;
  readonly sessions = new Set<HubSession>();
  readonly broker: Broker;
  private readonly channels = new Map<string, ChannelState>();
  /** Channels without subscribers kept a while (channelLingerMs): their timers. */
  private readonly lingering = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly rpcs = new Map<string, RpcHandler>();
  private readonly verify: ((token: string) => Promise<Identity>) | undefined;
  private readonly authenticate: HubOptions["authenticate"];
  private presenceTimer: ReturnType<typeof setInterval> | undefined;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private started = false;
  /** Counters for /stats and tests. */
  readonly stats = { publications: 0, delivered: 0 };
  /** Sent in connect replies (option `node`); may be set until connections arrive. */
  node: string | undefined;
  /**
   * This hub's random id: the `origin` of the control messages it sends, so it can tell its own
   * apart when the broker delivers them back.
   */
  readonly instanceId: string = randomBytes(9).toString("base64url");

  constructor(options: HubOptions) {
    this.broker = options.broker;
    this.namespaces = new Namespaces(options.namespaces);
    this.verify = options.jwt === undefined ? undefined : createJwtVerifier(options.jwt);
    this.authenticate = options.authenticate;
    this.node = options.node;
    const presenceTtlMs = options.presenceTtlMs ?? 60_000;
    const presenceSweepMs =
      options.presenceSweepMs ?? Math.max(1, Math.min(5_000, Math.floor(presenceTtlMs / 3)));
    for (const [name, v] of [
      ["presenceTtlMs", presenceTtlMs],
      ["presenceSweepMs", presenceSweepMs],
    ] as const) {
      if (!(v > 0) || !Number.isFinite(v)) {
        throw new RangeError(`Hub: ${name} must be a positive number, got ${v}`);
      }
    }
    this.options = Object.freeze({
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      clientPingMs: options.clientPingMs ?? 25_000,
      maxChannelsPerConnection: options.maxChannelsPerConnection ?? 128,
      maxPublishBytes: options.maxPublishBytes ?? 65_536,
      idempotencyTtlMs: options.idempotencyTtlMs ?? 120_000,
      presenceTtlMs,
      presenceSweepMs,
      maxHistoryPerRequest: options.maxHistoryPerRequest ?? 1000,
      maxPresencePage: options.maxPresencePage ?? 1000,
    });
  }

  /** Connect to the broker. Call once before accepting connections. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const handler: BrokerHandler = {
      publication: (channel, epoch, pub) => this.onPublication(channel, epoch, pub),
      join: (channel, member) => this.onPresenceEvent("join", channel, member),
      leave: (channel, member) => this.onPresenceEvent("leave", channel, member),
      resync: () => this.onResync(),
      control: (message) => this.onControl(message),
    };
    await this.broker.start(handler);
    const every = Math.max(1, Math.floor(this.options.presenceTtlMs / 3));
    this.presenceTimer = setInterval(() => {
      this.refreshPresence([...this.sessions].filter((s) => s.presenceTtlMs === undefined));
    }, every);
    this.presenceTimer.unref?.();
    this.sweepTimer = setInterval(() => this.sweepPresence(), this.options.presenceSweepMs);
    this.sweepTimer.unref?.();
  }

  /** Stop the presence timers. Sessions are closed by the server that owns them. */
  stop(): void {
    if (this.presenceTimer !== undefined) clearInterval(this.presenceTimer);
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.presenceTimer = undefined;
    this.sweepTimer = undefined;
    for (const timer of this.lingering.values()) clearTimeout(timer);
    this.lingering.clear();
  }

  newClientId(): string {
    return randomBytes(12).toString("base64url");
  }

  /** Register an RPC method callable with the `rpc` command. */
  rpc(method: string, handler: RpcHandler): void {
    this.rpcs.set(method, handler);
  }

  /** Publish from the application (no permission checks). */
  async publish(channel: string, data: Json, options: PublishOptions = {}): Promise<PublishResult> {
    const ns = this.namespaceOf(channel);
    const json = JSON.stringify(data);
    if (json === undefined) throw new ReplyError(ErrorCode.BAD_REQUEST, "data is not JSON");
    if (Buffer.byteLength(json) > this.options.maxPublishBytes) {
      throw new ReplyError(ErrorCode.LIMIT_EXCEEDED, "publication too large");
    }
    const from =
      options.from !== undefined && ns.includePublisher ? JSON.stringify(options.from) : undefined;
    const outcome = await this.broker.publish(channel, {
      data: json,
      ...(from === undefined ? {} : { from }),
      ...(options.conflate === undefined ? {} : { conflate: options.conflate }),
      historySize: ns.historySize,
      historyTtlMs: ns.historyTtlMs,
      ...(options.key === undefined ? {} : { idempotencyKey: options.key }),
      idempotencyTtlMs: this.options.idempotencyTtlMs,
    });
    this.stats.publications++;
    return {
      offset: outcome.offset,
      epoch: outcome.epoch,
      ...(outcome.duplicate ? { duplicate: true } : {}),
    };
  }

  namespaceOf(channel: string): Namespace {
    if (!isValidChannel(channel, this.wireLimits.maxChannelBytes)) {
      throw new ReplyError(ErrorCode.UNKNOWN_CHANNEL, "invalid channel name");
    }
    const ns = this.namespaces.of(channel);
    if (ns === undefined) throw new ReplyError(ErrorCode.UNKNOWN_CHANNEL, "unknown namespace");
    return ns;
  }

  // --- Commands ------------------------------------------------------------------------------

  async execute(s: HubSession, c: Command): Promise<Executed> {
    switch (c.type) {
      case "connect":
        return this.connect(s, c.token, c.data, c.name);
      case "subscribe":
        return this.subscribe(s, c.channel, c.since);
      case "unsubscribe":
        if (s.channels.has(c.channel)) await this.leave(s, c.channel);
        return { reply: {} };
      case "publish": {
        const ns = this.namespaceOf(c.channel);
        await this.allow(s, ns, "publish", c.channel);
        const result = await this.publish(c.channel, c.data, {
          ...(c.key === undefined ? {} : { key: c.key }),
          ...(c.conflate === undefined ? {} : { conflate: c.conflate }),
          ...(s.info === undefined ? {} : { from: s.info }),
        });
        return { reply: result };
      }
      case "history":
        return { reply: await this.history(s, c.channel, c.since, c.limit, c.reverse) };
      case "presence":
        return { reply: await this.presence(s, c.channel, c.cursor, c.limit) };
      case "rpc": {
        const handler = this.rpcs.get(c.method);
        if (handler === undefined) throw new ReplyError(ErrorCode.METHOD_NOT_FOUND);
        const data = await handler({ client: s.info!, identity: s.identity!, data: c.data });
        return { reply: data === undefined ? {} : { data } };
      }
      case "refresh": {
        const identity = await this.identify(c.token, undefined, s.request);
        s.refreshIdentity(identity);
        return { reply: identity.expiresAt === undefined ? {} : { expires: identity.expiresAt } };
      }
      case "ping":
        return { reply: {} };
    }
  }

  /** Who presents this token (and data): the JWT verifier, then the authenticate hook. */
  async identify(
    token: string | undefined,
    data: Json | undefined,
    request: unknown,
  ): Promise<Identity> {
    let identity: Identity | undefined;
    if (this.verify !== undefined) {
      if (token === undefined) throw new AuthError(ErrorCode.UNAUTHORIZED, "a token is required");
      identity = await this.verify(token);
    }
    if (this.authenticate !== undefined) {
      identity = await this.authenticate({ token, data, request });
    }
    const result = identity ?? ANONYMOUS;
    if (result.expiresAt !== undefined && result.expiresAt <= Date.now()) {
      throw new AuthError(ErrorCode.TOKEN_EXPIRED, "token expired");
    }
    return result;
  }

  private async connect(
    s: HubSession,
    token: string | undefined,
    data: Json | undefined,
    name: string | undefined,
  ): Promise<Executed> {
    if (s.identity !== undefined) throw new ReplyError(ErrorCode.ALREADY_CONNECTED);
    const identity = await this.identify(token, data, s.request);
    s.setIdentity(identity, name);
    return {
      reply: {
        client: s.id,
        user: identity.user,
        ...(identity.expiresAt === undefined ? {} : { expires: identity.expiresAt }),
        ping: this.options.clientPingMs,
        ...(this.node === undefined ? {} : { node: this.node }),
        maxPublishBytes: this.options.maxPublishBytes,
      },
    };
  }

  /** Throw PERMISSION_DENIED unless the namespace rule or the token allows `op`. */
  async allow(s: HubSession, ns: Namespace, op: Operation, channel: string): Promise<void> {
    if (s.granted(op, channel)) return;
    const rule: Rule = ns.rules[op];
    const subscribed = s.channels.has(channel);
    let ok: boolean;
    if (rule === "all") ok = true;
    else if (rule === "subscribers") ok = subscribed;
    else if (rule === "grant") ok = false;
    else
      ok = await rule({
        channel,
        operation: op,
        client: s.info!,
        identity: s.identity!,
        subscribed,
      });
    if (!ok) throw new ReplyError(ErrorCode.PERMISSION_DENIED, `${op} not allowed on ${channel}`);
  }

  private async subscribe(
    s: HubSession,
    channel: string,
    since: StreamPosition | undefined,
  ): Promise<Executed> {
    const ns = this.namespaceOf(channel);
    if (s.channels.has(channel)) throw new ReplyError(ErrorCode.ALREADY_SUBSCRIBED);
    await this.allow(s, ns, "subscribe", channel);
    if (s.channels.size >= this.options.maxChannelsPerConnection) {
      throw new ReplyError(ErrorCode.LIMIT_EXCEEDED, "too many channels on this connection");
    }
    const state = this.channelState(channel, ns);
    state.pending++;
    const m = new Membership(s);
    try {
      await state.ready;
      // Closed meanwhile: sessionClosed already ran, nothing of it may stay in the channel.
      if (s.isClosed) throw new ReplyError(ErrorCode.INTERNAL, "connection closed");
      // Live delivery first (buffered in m), then read the stream: nothing falls in between.
      state.members.set(s.id, m);
      s.channels.set(channel, m);
      const reply = await this.position(channel, ns, since);
      return {
        reply,
        after: () => {
          if (s.channels.get(channel) !== m) return;
          state.goLive(m, reply.offset, reply.epoch);
          // Lost at once (a gap in what was buffered, or a resync): it joins when it resubscribes.
          if (s.channels.get(channel) !== m) return;
          if (ns.presence) this.joinPresence(s, channel);
        },
      };
    } catch (e) {
      if (state.members.get(s.id) === m) state.members.delete(s.id);
      if (s.channels.get(channel) === m) s.channels.delete(channel);
      throw e;
    } finally {
      state.pending--;
      this.dropIfIdle(state);
    }
  }

  /** The subscribe reply: the current position, and the recovery when `since` was given. */
  private async position(
    channel: string,
    ns: Namespace,
    since: StreamPosition | undefined,
  ): Promise<SubscribeResult> {
    const recoverable = ns.historySize > 0;
    if (since === undefined || !recoverable) {
      const page = await this.broker.history(channel, { limit: 0, historyTtlMs: ns.historyTtlMs });
      return {
        offset: page.offset,
        epoch: page.epoch,
        recoverable,
        ...(since === undefined ? {} : { recovered: false }),
      };
    }
    const page = await this.broker.history(channel, {
      since: since.offset,
      limit: ns.historySize,
      historyTtlMs: ns.historyTtlMs,
    });
    const pubs = page.publications;
    const missing = page.offset - since.offset;
    // Recovered only when the epoch is the same and history holds every missing publication:
    // exactly since+1 … top, nothing partial.
    // Position 0 of epoch "" is the start of a stream that did not exist yet: any epoch matches.
    const sameStream = page.epoch === since.epoch || (since.epoch === "" && since.offset === 0);
    const recovered =
      sameStream &&
      missing >= 0 &&
      pubs.length === missing &&
      (missing === 0 ||
        (pubs[0]?.offset === since.offset + 1 && pubs.at(-1)?.offset === page.offset));
    return {
      offset: page.offset,
      epoch: page.epoch,
      recoverable,
      recovered,
      ...(recovered && missing > 0 ? { publications: pubs.map(toPublication) } : {}),
    };
  }

  private async history(
    s: HubSession,
    channel: string,
    since: StreamPosition | undefined,
    limit: number | undefined,
    reverse: boolean | undefined,
  ): Promise<HistoryResult> {
    const ns = this.namespaceOf(channel);
    await this.allow(s, ns, "history", channel);
    if (ns.historySize === 0)
      throw new ReplyError(ErrorCode.NOT_AVAILABLE, "no history in this namespace");
    const max = this.options.maxHistoryPerRequest;
    if (limit !== undefined && limit > max) {
      throw new ReplyError(ErrorCode.LIMIT_EXCEEDED, `limit is at most ${max}`);
    }
    const page = await this.broker.history(channel, {
      ...(since === undefined ? {} : { since: since.offset }),
      limit: limit ?? Math.min(100, max),
      ...(reverse === undefined ? {} : { reverse }),
      historyTtlMs: ns.historyTtlMs,
    });
    return {
      publications: page.publications.map(toPublication),
      offset: page.offset,
      epoch: page.epoch,
    };
  }

  private async presence(
    s: HubSession,
    channel: string,
    cursor: string | undefined,
    limit: number | undefined,
  ): Promise<PresenceResult> {
    const ns = this.namespaceOf(channel);
    await this.allow(s, ns, "presence", channel);
    if (!ns.presence)
      throw new ReplyError(ErrorCode.NOT_AVAILABLE, "no presence in this namespace");
    const max = this.options.maxPresencePage;
    if (limit !== undefined && limit > max) {
      throw new ReplyError(ErrorCode.LIMIT_EXCEEDED, `limit is at most ${max}`);
    }
    const page = await this.broker.presence(channel, cursor, limit ?? Math.min(100, max));
    return {
      count: page.count,
      members: page.members.map((m) => JSON.parse(m) as ClientInfo),
      ...(page.cursor === undefined ? {} : { cursor: page.cursor }),
    };
  }

  // --- Channel registry ----------------------------------------------------------------------

  private channelState(channel: string, ns: Namespace): ChannelState {
    let state = this.channels.get(channel);
    if (state === undefined) {
      const created = new ChannelState(channel, ns, frameOf);
      created.ready = this.broker.subscribe(channel).catch((e: unknown) => {
        if (this.channels.get(channel) === created) this.channels.delete(channel);
        throw e;
      });
      this.channels.set(channel, created);
      state = created;
    }
    return state;
  }

  private dropIfIdle(state: ChannelState, lingerMs = 0): void {
    if (!state.idle || this.channels.get(state.name) !== state) return;
    const lingering = this.lingering.get(state.name);
    if (lingering !== undefined) clearTimeout(lingering);
    this.lingering.delete(state.name);
    if (lingerMs > 0) {
      const timer = setTimeout(() => {
        this.lingering.delete(state.name);
        this.dropIfIdle(state);
      }, lingerMs);
      timer.unref?.();
      this.lingering.set(state.name, timer);
      return;
    }
    this.channels.delete(state.name);
    this.broker.unsubscribe(state.name).catch(() => {
      // The broker is down: its subscription is gone with it, and it resyncs on return.
    });
  }

  private async leave(s: HubSession, channel: string): Promise<void> {
    s.channels.delete(channel);
    this.afterLeave(s, channel, true);
  }

  /** Remove a session from a channel (after an unsubscribe, a lost position or a close). */
  afterLeave(s: HubSession, channel: string, presence: boolean): void {
    const state = this.channels.get(channel);
    if (state === undefined) return;
    state.members.delete(s.id);
    if (state.ns.presence && presence) this.leavePresence(s, channel);
    this.dropIfIdle(state, s.channelLingerMs);
  }

  /**
   * A client connection ended: it leaves its channels, and their presence unless
   * `leavePresence` is false (an HTTP stream whose client goes on with another request).
   */
  sessionClosed(s: HubSession, leavePresence = true): void {
    this.sessions.delete(s);
    for (const channel of [...s.channels.keys()]) {
      s.channels.delete(channel);
      this.afterLeave(s, channel, leavePresence);
    }
  }

  /**
   * Disconnect every connection of a user on every node (e.g. after a ban) with a disconnect
   * code (4000–4999; 4500–4999 tell the client not to reconnect). This node's connections are
   * disconnected at once; then the other nodes are told through the broker (a control message)
   * and disconnect theirs when it reaches them. Resolves with the number of this node's
   * connections disconnected, once the broker accepted the message. When the broker is
   * unavailable the local disconnects still happened, but the other nodes were not told: the
   * promise rejects with BrokerUnavailableError (calling again is harmless). A node whose
   * connection to the broker is down at that moment misses the message: refuse the user at
   * authentication too for a lasting ban. Rejects with RangeError for a code outside 4000–4999.
   */
  async disconnectUser(user: string, code: number = DisconnectCode.FORCED): Promise<number> {
    if (typeof user !== "string") throw new TypeError("disconnectUser: user must be a string");
    if (!isDisconnectCode(code)) {
      throw new RangeError(`disconnectUser: code must be an integer in 4000–4999, got ${code}`);
    }
    const n = this.disconnectLocal(user, code);
    const message: ControlMessage = { type: "disconnect", user, code, origin: this.instanceId };
    await this.broker.publishControl(JSON.stringify(message));
    return n;
  }

  /**
   * Disconnect the user's connections on this node; returns how many. Servers with connections
   * the hub does not hold in `sessions` (HTTP clients between two polls) add theirs.
   */
  protected disconnectLocal(user: string, code: number): number {
    let n = 0;
    for (const s of [...this.sessions]) {
      if (s.identity?.user === user && !s.isClosed) {
        s.disconnect(code);
        n++;
      }
    }
    return n;
  }

  /** Number of channels with local subscribers. */
  get channelCount(): number {
    return this.channels.size;
  }

  // --- Broker events -------------------------------------------------------------------------

  private onPublication(channel: string, epoch: string, pub: BrokerPublication): void {
    const state = this.channels.get(channel);
    if (state === undefined) return;
    this.stats.delivered += state.members.size;
    state.deliver(epoch, pub);
  }

  private onPresenceEvent(type: "join" | "leave", channel: string, member: string): void {
    const state = this.channels.get(channel);
    if (state === undefined || !state.ns.joinLeave) return;
    const text = `{"type":"${type}","channel":${JSON.stringify(channel)},"member":${member}}`;
    const frame = frameOf(text);
    for (const m of state.members.values()) {
      if (m.buffer === null) m.subscriber.writePub(frame, text);
    }
  }

  /**
   * The broker may have missed deliveries. Each channel with a stream reads what it may have
   * missed from history and delivers it as if live (fillGap); subscribers that history cannot
   * bring up to date resubscribe with recovery (and learn recovered:false if need be).
   */
  private onResync(): void {
    for (const state of [...this.channels.values()]) {
      if (state.ns.historySize === 0) continue;
      for (const m of state.members.values()) {
        // Its subscribe reply is still being computed, maybe from history read before the
        // missed deliveries: it resubscribes as soon as the reply is out (goLive).
        if (m.buffer !== null) m.resync = true;
      }
      void this.fillGap(state);
    }
  }

  /**
   * Bring the live members of a channel up to date after a resync with one history read from
   * the oldest position among them: the publications go through `deliver`, which drops what a
   * member has and gives each the exact next offsets. A member the page cannot cover (another
   * epoch, history trimmed past its position, the read failing) resubscribes. Publications that
   * arrive live meanwhile are safe either way: a member that sees a gap resubscribes.
   */
  private async fillGap(state: ChannelState): Promise<void> {
    const live = [...state.members.values()].filter((m) => m.buffer === null);
    if (live.length === 0) return;
    // (A loop, not Math.min(...): a channel may have more members than a call has arguments.)
    let since = Number.POSITIVE_INFINITY;
    for (const m of live) since = Math.min(since, m.offset);
    let page: HistoryPage | undefined;
    try {
      page = await this.broker.history(state.name, {
        since,
        limit: state.ns.historySize,
        historyTtlMs: state.ns.historyTtlMs,
      });
    } catch {
      page = undefined; // the broker failed again: every member resubscribes (with backoff)
    }
    for (const m of live) {
      if (state.members.get(m.subscriber.id) !== m) continue; // gone, or already resubscribing
      if (page !== undefined && covers(page, m)) continue;
      state.members.delete(m.subscriber.id);
      m.subscriber.lostPosition(state.name);
    }
    if (page === undefined || this.channels.get(state.name) !== state) return;
    for (const pub of page.publications) state.deliver(page.epoch, pub);
  }

  /**
   * A control message from a node (this one included). Malformed messages, unknown types and
   * this hub's own messages (already acted on) are ignored.
   */
  private onControl(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message !== "object" || message === null) return;
    const m = message as Partial<Record<keyof ControlMessage, unknown>>;
    if (m.origin === this.instanceId) return;
    if (m.type === "disconnect" && typeof m.user === "string" && isDisconnectCode(m.code)) {
      this.disconnectLocal(m.user, m.code);
    }
  }

  // --- Presence ------------------------------------------------------------------------------

  /**
   * Enter the channel's presence. The broker announces the join (a `join` push) when the client
   * was not a member yet — an HTTP client's next stream, still a member, is not announced again.
   */
  private joinPresence(s: HubSession, channel: string): void {
    const ttl = s.presenceTtlMs ?? this.options.presenceTtlMs;
    this.broker.addPresence(channel, s.info!.client, s.infoJson!, ttl).catch(() => {
      // Added (and announced) by the next refresh once the broker is back.
    });
  }

  /** Remove the client from the channel's presence; the broker announces it (a `leave` push). */
  leavePresence(s: HubSession, channel: string): void {
    this.broker.removePresence(channel, s.info!.client).catch(() => {
      // The entry expires, and its leave is announced by a sweep.
    });
  }

  /**
   * Refresh the presence entries of these sessions (each with its own TTL). An entry that was
   * gone — it expired, or it could not be added during a broker outage — is added again, and
   * the broker announces the join.
   */
  refreshPresence(sessions: Iterable<HubSession>): void {
    for (const s of sessions) {
      if (s.infoJson === undefined || s.isClosed) continue;
      const ttl = s.presenceTtlMs ?? this.options.presenceTtlMs;
      for (const [channel, m] of s.channels) {
        if (m.buffer !== null) continue;
        const state = this.channels.get(channel);
        if (state?.ns.presence !== true) continue;
        this.broker.addPresence(channel, s.info!.client, s.infoJson, ttl).catch(() => undefined);
      }
    }
  }

  /**
   * Remove the expired presence entries of the channels with subscribers on this node: the
   * broker announces their leaves (clients of a node that died, HTTP clients that went away).
   */
  private sweepPresence(): void {
    for (const state of this.channels.values()) {
      if (state.ns.presence) this.broker.expirePresence(state.name).catch(() => undefined);
    }
  }
}
