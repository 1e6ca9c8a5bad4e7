/**
 * The connection of a RealtimeClient to the server: its state machine, the WebSocket, the
 * `connect` handshake, reconnects with backoff, the keepalive and the token's renewal.
 *
 *            connect()                connect reply ok
 *   disconnected ───────► connecting ─────────────────► connected
 *        ▲    ▲               │  ▲                          │
 *        │    └── failure ────┘  └── backoff timer ──┐      │ socket closed / ping timeout
 *        │      (reconnect)                          │      ▼
 *        └───────────────────────────────────────── disconnected (reconnect: true)
 *   close(), or a close code 4500–4999, or a refused connect that cannot get better → closed
 *   (terminal until connect()).
 *
 * Transports (options.transports, WebSocket then SSE then long-polling by default): an attempt
 * that fails before the connect reply for a reason of the way there — the socket closed without
 * a `disconnect` push, a connect timeout (an upgrade that passes nothing, a proxy that buffers
 * a stream), a socket that cannot be created — moves on to the next transport at once, the
 * state staying "connecting"; when the last one fails the client waits its backoff and starts
 * again from the first, reporting the first failure of the round. A transport that connected
 * is kept for reconnects, and trusted: when it fails, the client retries it with backoff (a
 * server restarting, a network glitch) for PROVEN_RETRIES attempts before moving on to the next
 * one (a network that now blocks it).
 *
 * While on another transport than the first, every probeIntervalMs the client probes the ones
 * before it, best first (on long-polling: WebSocket, and if that fails, SSE); once a probe's
 * connect reply comes (and no rpc waits for its reply, or
 * requestTimeoutMs passed), it becomes the connection: the old one is let go and everything is
 * re-established on the new one, as after a reconnect — the subscriptions recover from their
 * positions and the outbox re-sends with the same keys, so nothing is lost or doubled across
 * the switch; the state stays "connected".
 *
 * It emits the client's "state", "transport", "connected", "disconnected" and "error" events,
 * and tells the client (ConnectionHost) when to re-send what survives a reconnect, when the
 * socket is gone, when what is queued must fail, and what the server pushes.
 */

import { DisconnectCode, ErrorCode, shouldReconnect } from "../codes.js";
import type {
  Command,
  ConnectCommand,
  ConnectResult,
  DisconnectPush,
  Push,
  Reply,
  WireError,
} from "../wire.js";
import { SUBPROTOCOL } from "../wire.js";
import { Backoff } from "./backoff.js";
import { isReplyError, noop } from "./calls.js";
import type { Emitter } from "./emitter.js";
import { ClientErrorCode, errorMessage, isTemporary, RealtimeError, toError } from "./errors.js";
import { HttpSocket } from "./http-socket.js";
import { Keepalive } from "./keepalive.js";
import { OnlineWatch } from "./online.js";
import type { ResolvedOptions } from "./options.js";
import { ServerSocket, type SocketHandlers } from "./socket.js";
import { Tokens } from "./tokens.js";
import type { ClientEvents, ConnectionState, TransportKind, WebSocketLike } from "./types.js";

type Timer = ReturnType<typeof setTimeout>;

/** IANA-registered WebSocket close codes the client uses for its own decisions. */
const CLOSE_NORMAL = 1000;
const CLOSE_ABNORMAL = 1006;
const CLOSE_UNAUTHORIZED = 3000;
const CLOSE_TIMEOUT = 3008;

/**
 * Reconnect attempts that may fail on the transport that last connected before the client
 * falls back to the next one (each attempt after its backoff).
 */
const PROVEN_RETRIES = 3;

/** What the connection tells its client. */
export interface ConnectionHost {
  /** Connected (again): re-send what survives a reconnect, before any event is emitted. */
  reestablish(): void;
  /** The socket is gone (its commands in flight were lost just before). */
  lost(): void;
  /** Closed for good: reject every queued publish and request with `error`. */
  fail(error: RealtimeError): void;
  /** A push of the server other than `disconnect`. */
  push(push: Exclude<Push, DisconnectPush>): void;
}

export class Connection {
  readonly #url: string;
  readonly #options: ResolvedOptions;
  readonly #events: Emitter<ClientEvents>;
  readonly #client: ConnectionHost;
  readonly #backoff: Backoff;
  /** The connection's socket; replaced by a probe's when the client moves back to a transport. */
  #socket = new ServerSocket();
  readonly #tokens: Tokens;
  readonly #online: OnlineWatch;

  #state: ConnectionState = "disconnected";
  #clientId: string | undefined;
  #maxPublishBytes: number | undefined;
  #user: string | undefined;
  /** Connection generation: bumped whenever the current attempt or connection is let go. */
  #conn = 0;
  #disconnectPush: DisconnectPush | undefined;
  #reconnectTimer: Timer | undefined;
  #connectTimer: Timer | undefined;
  #keepalive: Keepalive | undefined;
  /** Index in options.transports of the transport of this attempt or connection. */
  #index = 0;
  /** The transport of the last connection (for the "transport" event, and trusted on failure). */
  #connectedKind: TransportKind | undefined;
  /** Attempts on #connectedKind that failed in a row. */
  #provenFailures = 0;
  /** The first failure of this round through the transports (what "disconnected" reports). */
  #roundFailure: { code: number; reason: string } | undefined;
  #probeTimer: Timer | undefined;
  /** A probe in progress (or waiting to take over): how to stop it. */
  #probeStop: (() => void) | undefined;

  constructor(
    url: string,
    options: ResolvedOptions,
    events: Emitter<ClientEvents>,
    client: ConnectionHost,
  ) {
    this.#url = url;
    this.#options = options;
    this.#events = events;
    this.#client = client;
    this.#backoff = new Backoff(options.backoff);
    const connection = this;
    this.#tokens = new Tokens(options.token, options.getToken, {
      get connected() {
        return connection.#state === "connected";
      },
      call: (command, onReply, onLost) => this.call(command, onReply, onLost),
      isCurrent: (conn) => this.#conn === conn,
      error: (error) => this.#emitError(error),
    });
    this.#online = new OnlineWatch(options.online, () => this.#onOnline());
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** The largest publication data the server takes (from the last connect reply). */
  get maxPublishBytes(): number | undefined {
    return this.#maxPublishBytes;
  }

  get user(): string | undefined {
    return this.#user;
  }

  /** The transport of the connection or attempt (or of the next attempt). */
  get transport(): TransportKind {
    return this.#options.transports[this.#index] ?? "websocket";
  }

  /** See RealtimeClient.connect(). */
  connect(): void {
    if (this.#state === "connecting" || this.#state === "connected") return;
    if (this.#reconnectTimer !== undefined) return;
    this.#backoff.reset();
    this.#index = 0;
    this.#roundFailure = undefined;
    this.#online.attach();
    this.#startAttempt();
  }

  /** See RealtimeClient.close(). */
  close(): void {
    if (this.#state === "closed") return;
    const previous = this.#state;
    this.#clearReconnectTimer();
    this.#online.detach();
    this.#client.fail(new RealtimeError(ClientErrorCode.CLOSED, "the client was closed", false));
    this.#teardown(CLOSE_NORMAL, "client closed");
    this.#setState("closed");
    if (previous === "connecting" || previous === "connected") {
      this.#events.emit("disconnected", {
        code: CLOSE_NORMAL,
        reason: "client closed",
        reconnect: false,
      });
    }
  }

  /** Send a command with a fresh id on the open socket; undefined when there is none. */
  call(command: Command, onReply: (reply: Reply) => void, onLost: () => void): number | undefined {
    return this.#socket.call(command, onReply, onLost);
  }

  /** Stop waiting for the reply to command `id` (it timed out). */
  forget(id: number): void {
    this.#socket.forget(id);
  }

  // ---- connecting ---------------------------------------------------------------------------

  #setState(state: ConnectionState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#events.emit("state", { state, previous });
  }

  #emitError(error: Error): void {
    this.#events.emit("error", error);
  }

  #clearReconnectTimer(): void {
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
  }

  /** Back online while waiting to reconnect: reconnect now. */
  #onOnline(): void {
    if (this.#state !== "disconnected" || this.#reconnectTimer === undefined) return;
    this.#backoff.reset();
    this.#startAttempt();
  }

  #startAttempt(): void {
    this.#clearReconnectTimer();
    const conn = ++this.#conn;
    this.#connectTimer = setTimeout(() => {
      if (this.#conn === conn) this.#attemptFailed(CLOSE_TIMEOUT, "connect timeout", true);
    }, this.#options.connectTimeoutMs);
    this.#setState("connecting");
    if (this.#conn === conn) void this.#open(conn);
  }

  /** Get a new token first if one is due, then open the socket. */
  async #open(conn: number): Promise<void> {
    const tokens = this.#tokens;
    let token = tokens.current;
    const fresh = tokens.due;
    if (fresh) {
      try {
        token = await tokens.fetch();
      } catch (error) {
        if (this.#conn !== conn) return;
        this.#emitError(toError(error));
        this.#drop(CLOSE_UNAUTHORIZED, `getToken() failed: ${errorMessage(error)}`, true, false);
        return;
      }
      if (this.#conn !== conn) return;
      tokens.accept(token);
    }
    this.#openSocket(conn, token, fresh);
  }

  /** A socket of this transport: a WebSocket, or an HTTP transport with a WebSocket's face. */
  #createSocket(kind: TransportKind): WebSocketLike {
    const options = this.#options;
    if (kind === "websocket") {
      if (options.WebSocket === undefined) throw new TypeError("no WebSocket constructor");
      return new options.WebSocket(this.#url, SUBPROTOCOL);
    }
    if (options.fetch === undefined) throw new TypeError("no fetch() for the HTTP transports");
    return new HttpSocket(options.httpUrl, kind, { fetch: options.fetch });
  }

  /** What the connection hears of its socket (open: send the connect, if it is still to do). */
  #handlers(open: () => void): SocketHandlers {
    return {
      open,
      push: (push) => {
        if (push.type === "disconnect") this.#disconnectPush = push;
        else this.#client.push(push);
      },
      error: (error) => this.#emitError(error),
      close: (event) => this.#onSocketClose(event),
    };
  }

  #openSocket(conn: number, token: string | undefined, fresh: boolean): void {
    const kind = this.transport;
    let ws: WebSocketLike;
    try {
      ws = this.#createSocket(kind);
    } catch (error) {
      this.#emitError(toError(error));
      const reason = `cannot open a ${kind === "websocket" ? "WebSocket" : `${kind} connection`}: ${errorMessage(error)}`;
      if (this.#index + 1 < this.#options.transports.length) {
        this.#attemptFailed(CLOSE_ABNORMAL, reason, false);
      } else {
        this.#drop(CLOSE_ABNORMAL, reason, false, false);
      }
      return;
    }
    this.#socket.attach(
      ws,
      this.#handlers(() => this.#sendConnect(conn, token, fresh)),
    );
  }

  #sendConnect(conn: number, token: string | undefined, fresh: boolean): void {
    const { data, name } = this.#options;
    const command: ConnectCommand = {
      type: "connect",
      ...(token === undefined ? {} : { token }),
      ...(data === undefined ? {} : { data }),
      ...(name === undefined ? {} : { name }),
    };
    this.call(
      command,
      (reply) => {
        if (this.#conn === conn) this.#onConnectReply(conn, reply, fresh);
      },
      noop,
    );
  }

  #onConnectReply(conn: number, reply: Reply, freshToken: boolean): void {
    if (isReplyError(reply)) this.#onConnectRefused(reply.error, freshToken);
    else this.#onConnected(conn, reply.result as unknown as ConnectResult);
  }

  #onConnectRefused(e: WireError, freshToken: boolean): void {
    const renewable = this.#tokens.renewable;
    const tokenRefused = e.code === ErrorCode.TOKEN_EXPIRED || e.code === ErrorCode.UNAUTHORIZED;
    if (tokenRefused && renewable && !freshToken) {
      // Once per attempt: a new token, and the connect again at once on a new socket.
      this.#tokens.markStale();
      this.#teardown(CLOSE_NORMAL, "retrying with a new token");
      this.#startAttempt();
      return;
    }
    if (e.code === ErrorCode.TOKEN_EXPIRED) this.#tokens.markStale();
    const reconnect = isTemporary(e) || (e.code === ErrorCode.TOKEN_EXPIRED && renewable);
    this.#emitError(new RealtimeError(e.code, `connect refused: ${e.message}`, isTemporary(e)));
    this.#drop(e.code, e.message, reconnect, true);
  }

  #onConnected(conn: number, r: ConnectResult): void {
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#backoff.reset();
    this.#roundFailure = undefined;
    this.#provenFailures = 0;
    this.#clientId = typeof r.client === "string" ? r.client : undefined;
    this.#user = typeof r.user === "string" ? r.user : undefined;
    const limit = r.maxPublishBytes;
    if (typeof limit === "number" && limit > 0) this.#maxPublishBytes = limit;
    const previous = this.#state;
    this.#state = "connected";
    // Re-establish before telling anyone: subscriptions, then the outbox oldest first, then
    // the requests that were waiting.
    this.#client.reestablish();
    this.#startPing(conn, typeof r.ping === "number" ? r.ping : 0);
    if (typeof r.expires === "number") this.#tokens.scheduleRefresh(conn, r.expires);
    this.#scheduleProbe(conn);
    // (An upgrade keeps the state: it was "connected" already.)
    if (previous !== "connected") this.#events.emit("state", { state: "connected", previous });
    const kind = this.transport;
    if (this.#conn === conn && kind !== this.#connectedKind) {
      const before = this.#connectedKind;
      this.#connectedKind = kind;
      this.#events.emit("transport", { transport: kind, previous: before });
    }
    if (this.#conn === conn) this.#events.emit("connected", r);
  }

  // ---- probing the first transport ----------------------------------------------------------

  #scheduleProbe(conn: number): void {
    const every = this.#options.probeIntervalMs;
    if (this.#index === 0 || !(every > 0)) return;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined;
      if (this.#conn === conn && this.#state === "connected") this.#probe(conn);
    }, every);
  }

  /**
   * Open transport `candidate` (one before the connection's) next to the connection and send
   * it a connect; when the reply comes, move the connection to it (#takeOver). A failure tries
   * the next better transport at once, if there is one before the connection's; else the
   * round is over: probe again later.
   */
  #probe(conn: number, candidate = 0): void {
    const kind = this.#options.transports[candidate] ?? "websocket";
    const tokens = this.#tokens;
    if (tokens.due) {
      this.#scheduleProbe(conn);
      return;
    }
    // The next better transport, or the next round.
    const next = (): void => {
      if (this.#conn !== conn || this.#state !== "connected") return;
      if (candidate + 1 < this.#index) this.#probe(conn, candidate + 1);
      else this.#scheduleProbe(conn);
    };
    let ws: WebSocketLike;
    try {
      ws = this.#createSocket(kind);
    } catch {
      next();
      return;
    }
    const probe = new ServerSocket();
    let over = false;
    const end = (): void => {
      over = true;
      clearTimeout(timer);
      this.#probeStop = undefined;
    };
    const failed = (): void => {
      if (over) return;
      end();
      probe.detach(CLOSE_NORMAL, "probe failed");
      next();
    };
    const timer = setTimeout(failed, this.#options.connectTimeoutMs);
    this.#probeStop = () => {
      if (over) return;
      end();
      probe.detach(CLOSE_NORMAL, "probe over");
    };
    const { data, name } = this.#options;
    const token = tokens.current;
    const command: ConnectCommand = {
      type: "connect",
      ...(token === undefined ? {} : { token }),
      ...(data === undefined ? {} : { data }),
      ...(name === undefined ? {} : { name }),
    };
    probe.attach(ws, {
      open: () => {
        probe.call(
          command,
          (reply) => {
            if (over) return;
            if (isReplyError(reply)) {
              failed();
              return;
            }
            end();
            this.#takeOver(conn, kind, probe, reply.result as unknown as ConnectResult);
          },
          noop,
        );
      },
      push: (push) => {
        if (push.type === "disconnect") failed();
      },
      error: noop,
      close: failed,
    });
  }

  /**
   * The probe is connected: once no rpc waits for its reply on the current socket (everything
   * else in flight is re-sent on the new one), or after requestTimeoutMs, make it the
   * connection — if it is still open then; else probe again later.
   */
  #takeOver(conn: number, kind: TransportKind, probe: ServerSocket, r: ConnectResult): void {
    const current = this.#socket;
    let done = false;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      clearTimeout(timer);
      this.#probeStop = undefined;
      return true;
    };
    const switchNow = (): void => {
      if (!finish()) return;
      const still = this.#conn === conn && this.#state === "connected" && this.#socket === current;
      if (!still || !probe.isOpen) {
        probe.detach(CLOSE_NORMAL, "probe not used");
        if (still) this.#scheduleProbe(conn);
        return;
      }
      this.#teardown(CLOSE_NORMAL, `moving to ${kind}`);
      this.#index = this.#options.transports.indexOf(kind);
      this.#socket = probe;
      probe.rebind(this.#handlers(noop));
      this.#onConnected(this.#conn, r);
    };
    const timer = setTimeout(switchNow, this.#options.requestTimeoutMs);
    this.#probeStop = () => {
      if (finish()) probe.detach(CLOSE_NORMAL, "probe over");
    };
    current.whenSettled(switchNow);
  }

  #stopProbe(): void {
    if (this.#probeTimer !== undefined) clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    this.#probeStop?.();
  }

  /** Ping every `interval` ms (0: the server wants no pings); see keepalive.ts. */
  #startPing(conn: number, interval: number): void {
    if (!(interval > 0)) return;
    this.#keepalive = new Keepalive(interval, {
      ping: (pong) => {
        this.call(
          { type: "ping" },
          () => {
            if (this.#conn === conn) pong();
          },
          noop,
        );
      },
      timeout: () => {
        if (this.#conn === conn) this.#drop(CLOSE_TIMEOUT, "ping timeout", true, true);
      },
    });
  }

  // ---- losing the connection ----------------------------------------------------------------

  #onSocketClose(event: Event): void {
    const ev = event as unknown as { code?: number; reason?: string };
    const push = this.#disconnectPush;
    const code = push?.code ?? ev.code ?? CLOSE_ABNORMAL;
    const reason = push?.reason ?? ev.reason ?? "";
    const reconnect = shouldReconnect(code) && push?.reconnect !== false;
    if (code === DisconnectCode.TOKEN_EXPIRED) this.#tokens.markStale();
    if (this.#state === "connecting" && push === undefined && reconnect) {
      // Closed on the way, the server said nothing: maybe this transport cannot get through.
      this.#attemptFailed(code, reason, false);
      return;
    }
    this.#drop(code, reason, reconnect, false);
  }

  /**
   * An attempt failed before the connect reply, for a reason of the way there: the next
   * transport at once, or after the last one a reconnect with backoff from the first.
   */
  #attemptFailed(code: number, reason: string, closeSocket: boolean): void {
    const transports = this.#options.transports;
    if (this.transport === this.#connectedKind && this.#provenFailures < PROVEN_RETRIES) {
      // It worked before: most likely the server or the network is down for a moment.
      this.#provenFailures++;
      this.#drop(code, reason, true, closeSocket);
      return;
    }
    if (this.#index + 1 < transports.length) {
      this.#roundFailure ??= { code, reason };
      this.#teardown(closeSocket ? socketCloseCode(code) : undefined, reason);
      this.#index++;
      this.#startAttempt();
      return;
    }
    const first = this.#roundFailure ?? { code, reason };
    this.#roundFailure = undefined;
    this.#index = 0;
    this.#drop(first.code, first.reason, true, closeSocket);
  }

  /** Let the current attempt or connection go; then reconnect later, or close for good. */
  #drop(code: number, reason: string, reconnect: boolean, closeSocket: boolean): void {
    const previous = this.#state;
    this.#teardown(closeSocket ? socketCloseCode(code) : undefined, reason);
    if (reconnect) {
      this.#state = "disconnected";
      const delay = this.#backoff.next();
      this.#reconnectTimer = setTimeout(() => {
        this.#reconnectTimer = undefined;
        if (this.#state === "disconnected") this.#startAttempt();
      }, delay);
    } else {
      this.#state = "closed";
      this.#online.detach();
      this.#client.fail(
        new RealtimeError(ClientErrorCode.CLOSED, `connection closed: ${reason} (${code})`, false),
      );
    }
    if (previous !== this.#state) {
      this.#events.emit("state", { state: this.#state, previous });
    }
    this.#events.emit("disconnected", { code, reason, reconnect });
  }

  /** Forget the socket and everything tied to it (no state change, no events of the client). */
  #teardown(closeCode: number | undefined, reason: string): void {
    this.#conn++;
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#keepalive?.stop();
    this.#keepalive = undefined;
    this.#stopProbe();
    this.#tokens.cancelRefresh();
    this.#disconnectPush = undefined;
    this.#clientId = undefined;
    this.#user = undefined;
    this.#socket.detach(closeCode, reason);
    this.#client.lost();
  }
}

/** A code the client may close a socket with (1000, or 3000–4999). */
function socketCloseCode(code: number): number {
  return code === CLOSE_NORMAL || (code >= 3000 && code <= 4999) ? code : CLOSE_NORMAL;
}
