/**
 * Subscription: one channel of a client. It keeps the application's wish (subscribed or not)
 * across reconnects, and the position (offset, epoch) of the last publication delivered, so
 * that after a reconnect, a gap or a server request it subscribes again with recovery and
 * delivers every publication once, in order.
 */

import type {
  ClientInfo,
  Command,
  HistoryCommand,
  Json,
  PresenceCommand,
  PresenceResult,
  Publication,
  PublishResult,
  PubPush,
  Reply,
  StreamPosition,
  SubscribeCommand,
  UnsubscribedPush,
  WireError,
} from "../wire.js";
import type { Backoff } from "./backoff.js";
import { isReplyError, noop } from "./calls.js";
import { Emitter, type Listener } from "./emitter.js";
import { isTemporary, RealtimeError } from "./errors.js";
import type {
  HistoryOptions,
  HistoryResult,
  PresenceOptions,
  PublicationEvent,
  PublishOptions,
  SubscriptionEvents,
  SubscriptionState,
} from "./types.js";

type Timer = ReturnType<typeof setTimeout>;

/** What a Subscription needs from its client. */
export interface SubscriptionHost {
  readonly connected: boolean;
  /** Send a command with an id now; false when there is no open socket. */
  call(command: Command, onReply: (reply: Reply) => void): boolean;
  newBackoff(): Backoff;
  publish(channel: string, data: unknown, options: PublishOptions): Promise<PublishResult>;
  request(command: Command): Promise<Record<string, unknown>>;
  /** Called by the Subscription constructor (from client.channel()) with its hooks. */
  register(hooks: SubscriptionHooks): void;
}

/** A push of the server about one channel, as the client hands it to the Subscription. */
export type ChannelPush =
  | PubPush
  | UnsubscribedPush
  | { type: "join" | "leave"; member: ClientInfo };

/** What the client tells a Subscription. */
export interface SubscriptionHooks {
  connected(): void;
  disconnected(): void;
  push(push: ChannelPush): void;
  error(error: Error): void;
}

function publicationEvent<T>(
  channel: string,
  epoch: string,
  p: { offset: number; data: unknown; from?: ClientInfo; time?: number },
): PublicationEvent<T> {
  return {
    channel,
    epoch,
    offset: p.offset,
    data: p.data as T,
    ...(p.from === undefined ? {} : { from: p.from }),
    ...(p.time === undefined ? {} : { time: p.time }),
  };
}

/**
 * One channel of a client (get it with client.channel(name); there is one per name). It keeps
 * its desired state across reconnects: subscribe() once, and the client re-subscribes (and
 * recovers) after every reconnect until unsubscribe().
 */
export class Subscription<T = Json> {
  readonly channel: string;
  readonly #host: SubscriptionHost;
  readonly #events = new Emitter<SubscriptionEvents<T>>();
  readonly #backoff: Backoff;
  #state: SubscriptionState = "unsubscribed";
  /** subscribe() was called and neither unsubscribe() nor a final server refusal since. */
  #desired = false;
  /** Offset and epoch of the last publication delivered (or of the subscribe reply). */
  #position: StreamPosition | undefined;
  #recoverable = false;
  /** Subscribed at least once since subscribe(): the next "subscribed" is a resubscribe. */
  #established = false;
  /** Bumped whenever a subscribe in flight must be forgotten. */
  #gen = 0;
  #inflight = false;
  #retryTimer: Timer | undefined;

  /** Not for applications: use client.channel(name). */
  constructor(host: SubscriptionHost, channel: string) {
    this.channel = channel;
    this.#host = host;
    this.#backoff = host.newBackoff();
    host.register({
      connected: () => {
        if (this.#desired) this.#sendSubscribe();
      },
      disconnected: () => this.#onDisconnected(),
      push: (push) => this.#onPush(push),
      error: (error) => this.#events.emit("error", error),
    });
  }

  get state(): SubscriptionState {
    return this.#state;
  }

  /** Position of the last publication delivered; undefined before the first subscribe reply. */
  get position(): StreamPosition | undefined {
    return this.#position;
  }

  on<K extends keyof SubscriptionEvents<T>>(
    event: K,
    listener: Listener<SubscriptionEvents<T>[K]>,
  ): () => void {
    return this.#events.on(event, listener);
  }

  once<K extends keyof SubscriptionEvents<T>>(
    event: K,
    listener: Listener<SubscriptionEvents<T>[K]>,
  ): () => void {
    return this.#events.once(event, listener);
  }

  off<K extends keyof SubscriptionEvents<T>>(
    event: K,
    listener: Listener<SubscriptionEvents<T>[K]>,
  ): void {
    this.#events.off(event, listener);
  }

  /** Subscribe now if connected, else as soon as the client is; idempotent. */
  subscribe(): void {
    if (this.#desired) return;
    this.#desired = true;
    this.#established = false;
    this.#backoff.reset();
    this.#sendSubscribe();
    this.#setState("subscribing");
  }

  /** Stop receiving; emits "unsubscribed" with code 0. The position is forgotten. */
  unsubscribe(): void {
    if (!this.#desired) return;
    const onServer = this.#inflight || this.#state === "subscribed";
    this.#forget();
    if (onServer && this.#host.connected) {
      this.#host.call({ type: "unsubscribe", channel: this.channel }, noop);
    }
    this.#setState("unsubscribed");
    this.#events.emit("unsubscribed", { code: 0, reason: "unsubscribe called" });
  }

  publish(data: T, options: PublishOptions = {}): Promise<PublishResult> {
    return this.#host.publish(this.channel, data, options);
  }

  /** The channel's history (server limits apply); re-sent after a reconnect until the timeout. */
  async history(options: HistoryOptions = {}): Promise<HistoryResult<T>> {
    const command: HistoryCommand = {
      type: "history",
      channel: this.channel,
      ...(options.since === undefined ? {} : { since: options.since }),
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(options.reverse === undefined ? {} : { reverse: options.reverse }),
    };
    const r = await this.#host.request(command);
    return {
      publications: Array.isArray(r.publications) ? (r.publications as Publication<T>[]) : [],
      offset: typeof r.offset === "number" ? r.offset : 0,
      epoch: typeof r.epoch === "string" ? r.epoch : "",
    };
  }

  /** One page of the channel's presence; pass the result's cursor back for the next one. */
  async presence(options: PresenceOptions = {}): Promise<PresenceResult> {
    const command: PresenceCommand = {
      type: "presence",
      channel: this.channel,
      ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    };
    const r = await this.#host.request(command);
    return {
      count: typeof r.count === "number" ? r.count : 0,
      members: Array.isArray(r.members) ? (r.members as ClientInfo[]) : [],
      ...(typeof r.cursor === "string" ? { cursor: r.cursor } : {}),
    };
  }

  // ---- internals ----------------------------------------------------------------------------

  #setState(state: SubscriptionState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#events.emit("state", { state, previous });
  }

  /** Drop the desire and everything that goes with it (no events). */
  #forget(): void {
    this.#desired = false;
    this.#established = false;
    this.#position = undefined;
    this.#recoverable = false;
    this.#stopInflight();
  }

  #stopInflight(): void {
    this.#gen++;
    this.#inflight = false;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  #onDisconnected(): void {
    this.#stopInflight();
    if (this.#desired) this.#setState("subscribing");
  }

  #sendSubscribe(): void {
    if (!this.#host.connected) return;
    const gen = ++this.#gen;
    const since = this.#recoverable ? this.#position : undefined;
    const command: SubscribeCommand =
      since === undefined
        ? { type: "subscribe", channel: this.channel }
        : { type: "subscribe", channel: this.channel, since };
    this.#inflight = this.#host.call(command, (reply) => {
      if (gen === this.#gen) this.#onSubscribeReply(reply, since);
    });
  }

  /** Subscribe again, recovering from the position (after a gap or the server's request). */
  #resubscribe(sendUnsubscribe: boolean): void {
    this.#stopInflight();
    if (sendUnsubscribe && this.#host.connected) {
      this.#host.call({ type: "unsubscribe", channel: this.channel }, noop);
    }
    this.#sendSubscribe();
    this.#setState("subscribing");
  }

  #onSubscribeReply(reply: Reply, since: StreamPosition | undefined): void {
    this.#inflight = false;
    if (isReplyError(reply)) this.#onSubscribeRefused(reply.error);
    else this.#onSubscribed(reply.result, since);
  }

  /** A temporary error is retried with backoff; any other one ends the subscription. */
  #onSubscribeRefused(e: WireError): void {
    if (isTemporary(e)) {
      const gen = this.#gen;
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        if (gen === this.#gen && this.#desired) this.#sendSubscribe();
      }, this.#backoff.next());
      return;
    }
    this.#forget();
    this.#setState("unsubscribed");
    this.#events.emit(
      "error",
      new RealtimeError(e.code, `subscribe to ${this.channel} failed: ${e.message}`, false),
    );
    this.#events.emit("unsubscribed", { code: e.code, reason: e.message });
  }

  /**
   * Subscribed: emit "subscribed", then the publications recovered (those after `since`), then
   * move the position to the reply's. A listener may unsubscribe or resubscribe meanwhile
   * (the generation changes): then the rest is not delivered.
   */
  #onSubscribed(r: Record<string, unknown>, since: StreamPosition | undefined): void {
    const offset = typeof r.offset === "number" ? r.offset : 0;
    const epoch = typeof r.epoch === "string" ? r.epoch : "";
    const final: StreamPosition = { offset, epoch };
    const recovered = since === undefined ? undefined : r.recovered === true;
    const publications =
      recovered === true && Array.isArray(r.publications)
        ? (r.publications as Publication<unknown>[])
        : [];
    this.#backoff.reset();
    const resubscribed = this.#established;
    this.#established = true;
    this.#recoverable = r.recoverable === true;
    this.#position = recovered === true ? since : final;
    const gen = this.#gen;
    this.#setState("subscribed");
    if (gen !== this.#gen) return;
    this.#events.emit("subscribed", {
      ...(recovered === undefined ? {} : { recovered }),
      recoverable: this.#recoverable,
      offset,
      epoch,
      resubscribed,
    });
    for (const p of publications) {
      if (gen !== this.#gen) return;
      const at = this.#position;
      if (at !== undefined && at.epoch === epoch && p.offset <= at.offset) continue;
      this.#position = { offset: p.offset, epoch };
      this.#events.emit("publication", publicationEvent<T>(this.channel, epoch, p));
    }
    if (gen === this.#gen) this.#position = final;
  }

  #onPush(push: ChannelPush): void {
    switch (push.type) {
      case "pub":
        this.#onPub(push);
        return;
      case "join":
      case "leave":
        if (this.#state === "subscribed") this.#events.emit(push.type, push.member);
        return;
      case "unsubscribed":
        this.#onUnsubscribedPush(push);
        return;
    }
  }

  /** The server ended the subscription: subscribe again if it asks to, else it is over. */
  #onUnsubscribedPush(push: UnsubscribedPush): void {
    if (!this.#desired) return;
    if (push.resubscribe) {
      // A subscribe of ours in flight already re-establishes the subscription.
      if (!this.#inflight) this.#resubscribe(false);
      return;
    }
    if (this.#inflight && this.#host.connected) {
      // The subscribe in flight may still succeed on the server: undo it.
      this.#host.call({ type: "unsubscribe", channel: this.channel }, noop);
    }
    this.#forget();
    this.#setState("unsubscribed");
    this.#events.emit("unsubscribed", { code: push.code, reason: push.reason ?? "" });
  }

  #onPub(push: PubPush): void {
    // Before the subscribe reply (or after unsubscribe) pubs belong to a stream we are not in:
    // the reply's position (and recovery) accounts for them.
    if (!this.#desired || this.#state !== "subscribed") return;
    if (push.offset === 0 && push.epoch === "") {
      // A channel without history: no positions to check.
      this.#events.emit("publication", publicationEvent<T>(this.channel, "", push));
      return;
    }
    const at = this.#position;
    if (at !== undefined) {
      const sameEpoch = push.epoch === at.epoch;
      if (sameEpoch && push.offset <= at.offset) return; // a duplicate
      // Offset 0 of epoch "": the stream did not exist at subscribe time; offset 1 starts it.
      const starts = at.epoch === "" && at.offset === 0 && push.offset === 1;
      const next = starts || (sameEpoch && push.offset === at.offset + 1);
      if (!next && this.#recoverable) {
        // A gap, or a new epoch: never deliver out of order; get the missing part first.
        this.#resubscribe(true);
        return;
      }
    }
    this.#position = { offset: push.offset, epoch: push.epoch };
    this.#events.emit("publication", publicationEvent<T>(this.channel, push.epoch, push));
  }
}
