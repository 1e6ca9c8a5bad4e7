/**
 * The HTTP transports of the client (docs/protocol.md section 18) behind a WebSocket's face: the
 * connection sends it duplex.v1 commands and hears duplex.v1 frames, as from a WebSocket, while
 * underneath
 *
 * - `connect` and `subscribe` become the body of a stream (SSE) or of a poll: the credentials,
 *   and every subscription with the position it is at. Changing the set reopens the stream (or
 *   the next poll) with the positions, and the server's recovery fills the seam: nothing is lost
 *   and, since the position moves with every publication handed on, nothing comes twice;
 * - every other command goes out in a POST to /send (in order, one POST at a time, batched);
 * - a resumed subscription's reply is turned into what the client would have seen on a
 *   WebSocket: the recovered publications as `pub` pushes, or, when they could not be recovered
 *   (or the subscribe failed), an `unsubscribed` push asking to subscribe again — so the
 *   subscription itself learns `recovered: false` (or the error) from its own subscribe.
 *
 * Once connected, a stream or poll that fails in a way that may pass is reopened at once with
 * the same session instead of closing the socket: it ended or broke off, stayed silent past its
 * keepalive (it is aborted), its fetch() rejected (network error, connection refused or reset),
 * or it got 502, 503 or 504 (a proxy or load balancer without a live node, a node shutting
 * down). Whichever node serves the reopened request recovers what was missed from the
 * positions, and the client id, its presence and its subscriptions carry on: no leave, no join,
 * no reconnect. At most MAX_REOPENS reopens in a row may get nothing (the first at once, the
 * next after a short jittered delay); the count starts again once one is answered (a poll with
 * 200, an SSE stream with its first bytes `: duplex.v1`). Anything else closes the socket
 * (1006) and the connection reconnects as after a lost WebSocket, with a new session: any
 * failure before the connect reply (the connection has its backoff and transport fallback),
 * another HTTP status (4xx…), a response that is not duplex.v1, the reopens used up, a failed
 * POST to /send (its commands may have run: the outbox re-sends them, with their keys, after
 * the reconnect). A `disconnect` push closes it with the server's code. No Node-only imports
 * (runs in browsers).
 */

import { DisconnectCode } from "../codes.js";
import type { Command, ConnectCommand, StreamPosition } from "../wire.js";
import { errorMessage } from "./errors.js";
import { randomKey } from "./outbox.js";
import { SseParser } from "./sse.js";
import type { FetchLike, FetchResponseLike, HttpTransportKind, WebSocketLike } from "./types.js";

type Timer = ReturnType<typeof setTimeout>;
type Listener = (event: Event) => void;
// biome-ignore lint/suspicious/noExplicitAny: frames are read field by field.
type Frame = Record<string, any>;

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;
const CLOSE_ABNORMAL = 1006;
const CLOSE_TOO_BIG = 1009;

/** Commands per POST to /send (the server takes up to 100). */
const MAX_BATCH = 50;
/** A POST to /send unanswered this long is a dead connection. */
const SEND_TIMEOUT_MS = 30_000;
/** The goodbye (leaving presence at once) is given up after this long: the entries expire. */
const GOODBYE_TIMEOUT_MS = 5_000;
/** Reopens of a failed stream or poll in a row that get nothing before the socket fails. */
const MAX_REOPENS = 2;
/** Before a reopen after the first: this, jittered by ±50%. */
const REOPEN_DELAY_MS = 200;
/** HTTP statuses of a stream or poll worth reopening for: a proxy's or a draining node's. */
const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);
/** A duplex.v1 SSE stream starts at once with this comment (docs/protocol.md section 18). */
const SSE_PREAMBLE = new TextEncoder().encode(": duplex.v1");

/** One subscription as the transport carries it from request to request. */
interface Entry {
  /** The id of the subscribe command: its reply, in whichever request, carries it. */
  readonly id: number;
  readonly channel: string;
  /** Its reply was handed to the client: later requests resume it. */
  answered: boolean;
  recoverable: boolean;
  /** Where the client is: sent as `since`. */
  position: StreamPosition | undefined;
}

export interface HttpSocketOptions {
  readonly fetch: FetchLike;
}

export class HttpSocket implements WebSocketLike {
  readyState = CONNECTING;
  readonly kind: HttpTransportKind;
  readonly #base: string;
  readonly #fetch: FetchLike;
  /** The secret of this connection; the server derives the client id from it. */
  readonly #session = randomKey();
  readonly #listeners = new Map<string, Listener[]>();
  #connect: (ConnectCommand & { readonly id: number }) | undefined;
  /** The connect reply came: later requests resume. */
  #connected = false;
  readonly #subs = new Map<string, Entry>();
  /** The stream or poll in flight, and its generation (bumped to let it go). */
  #request: AbortController | undefined;
  #gen = 0;
  #reopenQueued = false;
  /** Reopens in a row of a failed stream or poll that got nothing yet (see #broken). */
  #reopens = 0;
  /** From the connect reply: the SSE comment interval, or the longest a poll is held. */
  #keepalive = 0;
  #watchdog: Timer | undefined;
  readonly #outgoing: Command[] = [];
  #sending = false;
  /** refresh command id → its token, to use once the server accepted it. */
  readonly #refreshes = new Map<number, string>();
  #disconnect: { code: number; reason: string } | undefined;

  /** `base`: the HTTP URL of the realtime path (e.g. https://app.example/realtime). */
  constructor(base: string, kind: HttpTransportKind, options: HttpSocketOptions) {
    this.#base = base;
    this.kind = kind;
    this.#fetch = options.fetch;
    // Nothing to open: ready as soon as the caller listens; `connect` starts the first request.
    queueMicrotask(() => {
      if (this.readyState !== CONNECTING) return;
      this.readyState = OPEN;
      this.#emit("open", {});
    });
  }

  addEventListener(type: string, listener: Listener): void {
    const list = this.#listeners.get(type);
    if (list === undefined) this.#listeners.set(type, [listener]);
    else list.push(listener);
  }

  send(data: string): void {
    if (this.readyState !== OPEN) throw new Error("the HTTP transport is not open");
    const command = JSON.parse(data) as Command;
    const id = command.id;
    switch (command.type) {
      case "connect":
        if (id === undefined) return;
        this.#connect = { ...command, id };
        this.#open();
        return;
      case "subscribe":
        if (id === undefined) return;
        this.#subs.set(command.channel, {
          id,
          channel: command.channel,
          answered: false,
          recoverable: command.since !== undefined,
          position: command.since,
        });
        this.#reopenSoon();
        return;
      case "unsubscribe":
        // The stream stops carrying it; the POST makes the client leave its presence.
        this.#subs.delete(command.channel);
        this.#reopenSoon();
        this.#enqueue(command);
        return;
      case "refresh":
        if (id !== undefined) this.#refreshes.set(id, command.token);
        this.#enqueue(command);
        return;
      default:
        this.#enqueue(command);
    }
  }

  /** Let the connection go: the stream stops, and the server is told the client left. */
  close(): void {
    if (this.readyState === CLOSED) return;
    this.#shutdown();
  }

  // ---- streams and polls --------------------------------------------------------------------

  /** Reopen once the commands of this turn are in (several subscribes make one request). */
  #reopenSoon(): void {
    if (this.#reopenQueued || !this.#connected) return;
    this.#reopenQueued = true;
    queueMicrotask(() => {
      this.#reopenQueued = false;
      if (this.readyState === OPEN) this.#open();
    });
  }

  /** Start a new stream or poll loop with what the client wants now; the previous one is let go. */
  #open(): void {
    const gen = ++this.#gen;
    this.#request?.abort();
    const controller = new AbortController();
    this.#request = controller;
    if (this.kind === "sse") void this.#stream(gen, controller);
    else void this.#poll(gen, controller);
  }

  #openBody(): string {
    const subscribe = [...this.#subs.values()].map((e) => {
      const since =
        e.position !== undefined && (e.recoverable || !e.answered) ? e.position : undefined;
      return {
        id: e.id,
        type: "subscribe",
        channel: e.channel,
        ...(since === undefined ? {} : { since }),
        ...(e.answered ? { resume: true } : {}),
      };
    });
    return JSON.stringify({
      session: this.#session,
      connect: this.#connect,
      ...(this.#connected ? { resume: true } : {}),
      subscribe,
    });
  }

  #post(path: string, body: string, signal: AbortSignal): Promise<FetchResponseLike> {
    return this.#fetch(`${this.#base}/${path}`, {
      method: "POST",
      // text/plain keeps cross-origin requests "simple": no preflight.
      headers: { "content-type": "text/plain;charset=UTF-8" },
      body,
      signal,
    });
  }

  async #stream(gen: number, controller: AbortController): Promise<void> {
    this.#armWatchdog(gen);
    let res: FetchResponseLike;
    try {
      res = await this.#post("sse", this.#openBody(), controller.signal);
    } catch (error) {
      if (gen === this.#gen) this.#broken(`sse: ${errorMessage(error)}`);
      return;
    }
    if (gen !== this.#gen) return;
    if (!res.ok || res.body === null) {
      this.#broken(`sse: HTTP ${res.status}`, TRANSIENT_STATUSES.has(res.status));
      return;
    }
    const reader = res.body.getReader();
    const parser = new SseParser((data) => {
      if (gen === this.#gen) this.#frame(data);
    });
    /** Bytes of SSE_PREAMBLE the stream started with so far; -1: it started otherwise. */
    let preamble = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (gen !== this.#gen) break;
        if (done) {
          this.#broken("sse: the stream ended");
          return;
        }
        if (value !== undefined) {
          if (preamble >= 0 && preamble < SSE_PREAMBLE.length) {
            preamble = matchPreamble(preamble, value);
            // A duplex.v1 server answered: the failures in a row are over.
            if (preamble === SSE_PREAMBLE.length) this.#reopens = 0;
          }
          parser.push(value);
        }
        if (gen !== this.#gen) break;
        // After the frames: the first chunk brings the connect reply, and with it the keepalive.
        this.#armWatchdog(gen);
      }
    } catch (error) {
      if (gen === this.#gen) this.#broken(`sse: ${errorMessage(error)}`);
      return;
    }
    reader.cancel().catch(() => undefined);
  }

  async #poll(gen: number, controller: AbortController): Promise<void> {
    while (gen === this.#gen) {
      this.#armWatchdog(gen);
      let text: string;
      // Each poll has a signal of its own: fetch() leaves its listener on the signal it is
      // given, and a loop's signal would collect one per poll.
      const request = linkedSignal(controller.signal);
      try {
        const res = await this.#post("poll", this.#openBody(), request.signal);
        if (gen !== this.#gen) return;
        if (!res.ok) {
          this.#broken(`poll: HTTP ${res.status}`, TRANSIENT_STATUSES.has(res.status));
          return;
        }
        text = await res.text();
      } catch (error) {
        if (gen === this.#gen) this.#broken(`poll: ${errorMessage(error)}`);
        return;
      } finally {
        request.release();
      }
      if (gen !== this.#gen) return;
      this.#reopens = 0; // answered: the failures in a row are over
      this.#lines(text, () => gen === this.#gen);
      if (gen !== this.#gen) return;
      const bye = this.#disconnect;
      if (bye !== undefined) {
        this.#fail(bye.code, bye.reason); // the server ended the connection
        return;
      }
      if (!this.#connected) {
        // The first poll is always answered with the connect reply (or a refusal).
        this.#fail(CLOSE_ABNORMAL, "poll: no connect reply");
        return;
      }
      // The frames made the client change its subscriptions: the reopen polls next.
      if (this.#reopenQueued) return;
    }
  }

  /**
   * No byte within the keepalive (SSE), or no answer to a poll within its longest hold: the
   * request is dead (it is let go and reopened, see #broken). Before the connect reply the
   * connection's own timeout applies.
   */
  #armWatchdog(gen: number): void {
    if (this.#watchdog !== undefined) clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    if (!(this.#keepalive > 0)) return;
    this.#watchdog = setTimeout(
      () => {
        if (gen === this.#gen) this.#broken(`${this.kind}: nothing received within the keepalive`);
      },
      this.#keepalive * 1.5 + 1000,
    );
  }

  /**
   * The current stream or poll failed. If that may pass (`transient`) and the connection is
   * established, reopen it with the same session — at once the first time, after a short
   * jittered delay the next — unless MAX_REOPENS reopens in a row got nothing already; else the
   * socket fails.
   */
  #broken(reason: string, transient = true): void {
    const reopen =
      transient && this.#connected && this.#disconnect === undefined && this.#reopens < MAX_REOPENS;
    if (!reopen) {
      this.#fail(CLOSE_ABNORMAL, reason);
      return;
    }
    if (this.#reopens++ === 0) {
      this.#open();
      return;
    }
    // Let the failed request go now; a newer #open() (the subscriptions changed) or close()
    // moves the generation on, and the timer then does nothing.
    const gen = ++this.#gen;
    this.#request?.abort();
    this.#request = undefined;
    setTimeout(
      () => {
        if (gen === this.#gen) this.#open();
      },
      REOPEN_DELAY_MS * (0.5 + Math.random()),
    );
  }

  // ---- frames -------------------------------------------------------------------------------

  /** NDJSON: one frame per line, while `alive()`. */
  #lines(text: string, alive: () => boolean): void {
    for (const line of text.split("\n")) {
      if (!alive()) return;
      if (line !== "") this.#frame(line);
    }
  }

  #frame(text: string): void {
    if (this.readyState !== OPEN) return;
    let msg: Frame;
    try {
      msg = JSON.parse(text) as Frame;
    } catch {
      // Not from a duplex.v1 server (a captive portal's page, a proxy's error): a failed
      // connection, not something to poll again at once.
      this.#fail(CLOSE_ABNORMAL, `${this.kind}: the response is not duplex.v1`);
      return;
    }
    if (typeof msg.id === "number") {
      this.#reply(msg, text);
      return;
    }
    switch (msg.type) {
      case "pub": {
        const entry = this.#subs.get(msg.channel);
        if (entry === undefined || !entry.answered) return; // not (or no longer) wanted
        if (msg.offset > 0) entry.position = { offset: msg.offset, epoch: msg.epoch };
        break;
      }
      case "unsubscribed":
        this.#subs.delete(msg.channel);
        break;
      case "disconnect":
        this.#disconnect = { code: msg.code, reason: msg.reason ?? "" };
        break;
    }
    this.#message(text);
  }

  #reply(msg: Frame, text: string): void {
    const connect = this.#connect;
    if (connect !== undefined && msg.id === connect.id) {
      if (!this.#connected && msg.result !== undefined) {
        this.#connected = true;
        this.#keepalive = typeof msg.result.keepalive === "number" ? msg.result.keepalive : 0;
      }
      this.#message(text);
      return;
    }
    const token = this.#refreshes.get(msg.id);
    if (token !== undefined) {
      this.#refreshes.delete(msg.id);
      if (msg.result !== undefined && connect !== undefined) {
        // The next requests carry the new token; the stream's node learns its expiry.
        this.#connect = { ...connect, token };
        this.#reopenSoon();
      }
    }
    let entry: Entry | undefined;
    for (const e of this.#subs.values()) if (e.id === msg.id) entry = e;
    if (entry === undefined) {
      this.#message(text);
      return;
    }
    if (!entry.answered) {
      if (msg.result !== undefined) {
        entry.answered = true;
        entry.recoverable = msg.result.recoverable === true;
        entry.position = { offset: msg.result.offset, epoch: msg.result.epoch };
      } else {
        this.#subs.delete(entry.channel);
      }
      this.#message(text);
      return;
    }
    this.#resumed(entry, msg);
  }

  /** The reply to a subscription the client already had: hand on what it means. */
  #resumed(entry: Entry, msg: Frame): void {
    const r = msg.result;
    if (r !== undefined && (r.recovered === true || !entry.recoverable)) {
      const gen = this.#gen;
      const publications: Frame[] = Array.isArray(r.publications) ? r.publications : [];
      for (const p of publications) {
        const at = entry.position;
        if (at !== undefined && at.epoch === r.epoch && p.offset <= at.offset) continue;
        entry.position = { offset: p.offset, epoch: r.epoch };
        this.#message(
          JSON.stringify({ type: "pub", channel: entry.channel, epoch: r.epoch, ...p }),
        );
        if (gen !== this.#gen || this.readyState !== OPEN) return;
      }
      if (entry.recoverable) entry.position = { offset: r.offset, epoch: r.epoch };
      return;
    }
    // Not recovered, or refused: the subscription subscribes again, and learns it first-hand.
    this.#subs.delete(entry.channel);
    this.#message(
      JSON.stringify({
        type: "unsubscribed",
        channel: entry.channel,
        code: DisconnectCode.INSUFFICIENT_STATE,
        reason: r !== undefined ? "not recovered" : String(msg.error?.message ?? "refused"),
        resubscribe: true,
      }),
    );
  }

  // ---- commands -----------------------------------------------------------------------------

  #enqueue(command: Command): void {
    this.#outgoing.push(command);
    if (!this.#sending) void this.#flush();
  }

  /** POST the queued commands, one request at a time so they run in order. */
  async #flush(): Promise<void> {
    this.#sending = true;
    try {
      while (this.#outgoing.length > 0 && this.readyState === OPEN) {
        const commands = this.#outgoing.splice(0, MAX_BATCH);
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), SEND_TIMEOUT_MS);
        let text: string;
        try {
          const res = await this.#post(
            "send",
            JSON.stringify({
              session: this.#session,
              connect: this.#connect,
              channels: [...this.#subs.keys()],
              commands,
            }),
            controller.signal,
          );
          if (this.readyState !== OPEN) return;
          if (!res.ok) {
            this.#fail(
              res.status === 413 ? CLOSE_TOO_BIG : CLOSE_ABNORMAL,
              `send: HTTP ${res.status}`,
            );
            return;
          }
          text = await res.text();
        } catch (error) {
          this.#fail(CLOSE_ABNORMAL, `send: ${errorMessage(error)}`);
          return;
        } finally {
          clearTimeout(timer);
        }
        this.#lines(text, () => this.readyState === OPEN);
        const bye = this.#disconnect;
        if (bye !== undefined) {
          this.#fail(bye.code, bye.reason);
          return;
        }
      }
    } finally {
      this.#sending = false;
    }
  }

  // ---- the end ------------------------------------------------------------------------------

  /** The transport failed: closed, with the server's disconnect code if it sent one. */
  #fail(code: number, reason: string): void {
    if (this.readyState === CLOSED) return;
    const bye = this.#disconnect;
    this.#shutdown();
    this.#emit("close", {
      code: bye?.code ?? code,
      reason: bye?.reason ?? reason,
      wasClean: bye !== undefined,
    });
  }

  #shutdown(): void {
    this.readyState = CLOSED;
    this.#gen++;
    this.#request?.abort();
    this.#request = undefined;
    if (this.#watchdog !== undefined) clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    this.#outgoing.length = 0;
    this.#goodbye();
  }

  /**
   * Best effort: leave the presence of every channel now rather than when it expires (unless
   * the server ended the connection: then it did so itself).
   */
  #goodbye(): void {
    const connect = this.#connect;
    if (!this.#connected || connect === undefined || this.#disconnect !== undefined) return;
    const channels = [...this.#subs.keys()];
    if (channels.length === 0) return;
    const body = JSON.stringify({
      session: this.#session,
      connect,
      commands: channels.slice(0, MAX_BATCH).map((channel) => ({ type: "unsubscribe", channel })),
    });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), GOODBYE_TIMEOUT_MS);
    this.#post("send", body, controller.signal)
      .then(
        (res) => res.text(),
        () => "",
      )
      .catch(() => "")
      .finally(() => clearTimeout(timer));
  }

  #message(data: string): void {
    this.#emit("message", { data });
  }

  #emit(type: string, fields: object): void {
    const event = { type, ...fields } as unknown as Event;
    for (const listener of this.#listeners.get(type) ?? []) listener(event);
  }
}

/**
 * A signal aborted with `parent`, for one request; `release()` unlinks it from `parent` once
 * the request is over.
 */
function linkedSignal(parent: AbortSignal): { signal: AbortSignal; release: () => void } {
  const child = new AbortController();
  const abort = (): void => child.abort();
  if (parent.aborted) child.abort();
  else parent.addEventListener("abort", abort, { once: true });
  return { signal: child.signal, release: () => parent.removeEventListener("abort", abort) };
}

/**
 * `matched` bytes of SSE_PREAMBLE were seen at the start of a stream: how many are after
 * `chunk`, or -1 when the stream does not start with it.
 */
function matchPreamble(matched: number, chunk: Uint8Array): number {
  let n = matched;
  for (let i = 0; i < chunk.length && n >= 0 && n < SSE_PREAMBLE.length; i++) {
    n = chunk[i] === SSE_PREAMBLE[n] ? n + 1 : -1;
  }
  return n;
}
