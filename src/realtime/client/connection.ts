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
 * It emits the client's "state", "connected", "disconnected" and "error" events, and tells the
 * client (ConnectionHost) when to re-send what survives a reconnect, when the socket is gone,
 * when what is queued must fail, and what the server pushes.
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
import { Keepalive } from "./keepalive.js";
import { OnlineWatch } from "./online.js";
import type { ResolvedOptions } from "./options.js";
import { ServerSocket } from "./socket.js";
import { Tokens } from "./tokens.js";
import type { ClientEvents, ConnectionState, WebSocketLike } from "./types.js";

type Timer = ReturnType<typeof setTimeout>;

/** IANA-registered WebSocket close codes the client uses for its own decisions. */
const CLOSE_NORMAL = 1000;
const CLOSE_ABNORMAL = 1006;
const CLOSE_UNAUTHORIZED = 3000;
const CLOSE_TIMEOUT = 3008;

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
  readonly #socket = new ServerSocket();
  readonly #tokens: Tokens;
  readonly #online: OnlineWatch;

  #state: ConnectionState = "disconnected";
  #clientId: string | undefined;
  #user: string | undefined;
  /** Connection generation: bumped whenever the current attempt or connection is let go. */
  #conn = 0;
  #disconnectPush: DisconnectPush | undefined;
  #reconnectTimer: Timer | undefined;
  #connectTimer: Timer | undefined;
  #keepalive: Keepalive | undefined;

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

  get user(): string | undefined {
    return this.#user;
  }

  /** See RealtimeClient.connect(). */
  connect(): void {
    if (this.#state === "connecting" || this.#state === "connected") return;
    if (this.#reconnectTimer !== undefined) return;
    this.#backoff.reset();
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
      if (this.#conn === conn) this.#drop(CLOSE_TIMEOUT, "connect timeout", true, true);
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

  #openSocket(conn: number, token: string | undefined, fresh: boolean): void {
    let ws: WebSocketLike;
    try {
      ws = new this.#options.WebSocket(this.#url, SUBPROTOCOL);
    } catch (error) {
      this.#emitError(toError(error));
      this.#drop(CLOSE_ABNORMAL, `cannot open a WebSocket: ${errorMessage(error)}`, false, false);
      return;
    }
    this.#socket.attach(ws, {
      open: () => this.#sendConnect(conn, token, fresh),
      push: (push) => {
        if (push.type === "disconnect") this.#disconnectPush = push;
        else this.#client.push(push);
      },
      error: (error) => this.#emitError(error),
      close: (event) => this.#onSocketClose(event),
    });
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
    this.#clientId = typeof r.client === "string" ? r.client : undefined;
    this.#user = typeof r.user === "string" ? r.user : undefined;
    const previous = this.#state;
    this.#state = "connected";
    // Re-establish before telling anyone: subscriptions, then the outbox oldest first, then
    // the requests that were waiting.
    this.#client.reestablish();
    this.#startPing(conn, typeof r.ping === "number" ? r.ping : 0);
    if (typeof r.expires === "number") this.#tokens.scheduleRefresh(conn, r.expires);
    this.#events.emit("state", { state: "connected", previous });
    if (this.#conn === conn) this.#events.emit("connected", r);
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
    this.#drop(code, reason, reconnect, false);
  }

  /** Let the current attempt or connection go; then reconnect later, or close for good. */
  #drop(code: number, reason: string, reconnect: boolean, closeSocket: boolean): void {
    const previous = this.#state;
    const socketCode =
      code === CLOSE_NORMAL || (code >= 3000 && code <= 4999) ? code : CLOSE_NORMAL;
    this.#teardown(closeSocket ? socketCode : undefined, reason);
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
    this.#tokens.cancelRefresh();
    this.#disconnectPush = undefined;
    this.#clientId = undefined;
    this.#user = undefined;
    this.#socket.detach(closeCode, reason);
    this.#client.lost();
  }
}
