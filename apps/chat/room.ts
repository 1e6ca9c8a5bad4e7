/**
 * One joined room: its two subscriptions (`chat:<room>` and `typing:<room>`), its messages
 * (history on join, then live and recovered publications, each offset once), its presence,
 * who is typing, and its unread count.
 */
import type {
  PublicationEvent,
  RealtimeClient,
  SubscribedEvent,
  Subscription,
} from "../../src/realtime/client/index.js";
import { MessageLog } from "./messages.js";
import {
  type ChatMessage,
  chatChannel,
  HISTORY_LIMIT,
  messageText,
  type Person,
  personOf,
  type TypingSignal,
  typingChannel,
} from "./model.js";
import { Presence } from "./presence.js";
import { TypingIndicator, TypingThrottle } from "./typing.js";

/** What a room needs from the app. */
export interface RoomHost {
  readonly client: RealtimeClient;
  /** The user's nickname. */
  readonly me: string;
  isActive(room: string): boolean;
  /** Something shown about the room changed. */
  changed(room: string, what: "unread" | "presence" | "typing" | "subscription"): void;
  /** A message of the user's own went out (the log should scroll to it). */
  sent(room: string): void;
}

export class Room {
  readonly name: string;
  readonly log: MessageLog;
  readonly presence = new Presence();
  readonly typing: TypingIndicator;
  unread = 0;
  readonly #host: RoomHost;
  readonly #chat: Subscription<ChatMessage>;
  readonly #typingSub: Subscription<TypingSignal>;
  readonly #offs: Array<() => void> = [];
  readonly #throttle = new TypingThrottle();
  /** Bumped on every history load: a late answer for an older load is dropped. */
  #historyGen = 0;
  #disposed = false;

  constructor(host: RoomHost, name: string) {
    this.#host = host;
    this.name = name;
    this.log = new MessageLog(name);
    this.typing = new TypingIndicator(() => host.changed(name, "typing"));
    this.#chat = host.client.channel<ChatMessage>(chatChannel(name));
    this.#typingSub = host.client.channel<TypingSignal>(typingChannel(name));
    const chat = this.#chat;
    this.#offs.push(
      chat.on("subscribed", (e) => this.#onSubscribed(e)),
      chat.on("publication", (p) => this.#onPublication(p)),
      chat.on("join", (m) => {
        this.presence.join(m);
        host.changed(name, "presence");
      }),
      chat.on("leave", (m) => {
        this.presence.leave(m);
        host.changed(name, "presence");
      }),
      chat.on("state", () => host.changed(name, "subscription")),
      chat.on("unsubscribed", (e) => {
        if (e.code !== 0) {
          this.log.notice(`You are no longer in #${name}: ${e.reason || `error ${e.code}`}.`);
        }
      }),
      this.#typingSub.on("publication", (p) => {
        const who = personOf(p.from);
        if (who.user !== host.me && who.name !== host.me) this.typing.saw(who.name);
      }),
    );
  }

  /** Subscribed to the room's messages (sending is possible). */
  get live(): boolean {
    return this.#chat.state === "subscribed";
  }

  start(): void {
    this.#chat.subscribe();
    this.#typingSub.subscribe();
  }

  /** Leave: unsubscribe and stop listening. */
  dispose(): void {
    this.#disposed = true;
    for (const off of this.#offs.splice(0)) off();
    this.#chat.unsubscribe();
    this.#typingSub.unsubscribe();
    this.typing.clear();
    this.#historyGen++;
  }

  markRead(): void {
    if (this.unread === 0) return;
    this.unread = 0;
    this.#host.changed(this.name, "unread");
  }

  /** Send a message: shown at once as "sending", ✓ on the server's ack, or a failure. */
  send(text: string): void {
    const me = this.#me();
    const item = this.log.addPending(text, me);
    const attempt = (): void => {
      this.#chat.publish({ text }).then(
        (result) => {
          if (!this.#disposed) this.log.confirm(item, result.offset);
        },
        (error: unknown) => {
          if (this.#disposed) return;
          const reason = error instanceof Error ? error.message : String(error);
          this.log.fail(item, reason, attempt);
        },
      );
    };
    attempt();
    this.#host.sent(this.name);
  }

  /** The composer changed: tell the room (at most once per TYPING_SEND_MS). */
  typed(hasText: boolean): void {
    if (!hasText || this.#typingSub.state !== "subscribed") return;
    if (this.#host.client.state !== "connected") return;
    this.#throttle.tick(() => {
      this.#typingSub.publish({ typing: true }).catch(() => {
        // rate limited (103) or offline: a typing signal is not worth retrying
      });
    });
  }

  #me(): Person {
    const client = this.#host.client;
    return personOf({
      client: client.clientId ?? "",
      user: this.#host.me,
      info: { name: this.#host.me },
    });
  }

  #onSubscribed(e: SubscribedEvent): void {
    if (!e.resubscribed) {
      void this.#loadHistory();
    } else if (e.recovered !== true) {
      // The server could not replay what we missed (history expired, or it lost its state).
      this.log.clear();
      this.log.notice(
        "Reconnected, but the messages sent meanwhile could not be replayed: history reloaded.",
      );
      void this.#loadHistory();
    }
    void this.#loadPresence();
  }

  #onPublication(p: PublicationEvent<ChatMessage>): void {
    const text = messageText(p.data);
    if (text === undefined) return;
    const from = personOf(p.from);
    this.typing.stop(from.name);
    const client = this.#host.client;
    if (from.client !== "" && from.client === client.clientId && this.log.adopt(p.offset, text)) {
      return;
    }
    const own = from.user === this.#host.me;
    if (!this.log.add(p.offset, text, from, p.time, own)) return;
    if (!own && !this.#host.isActive(this.name)) {
      this.unread++;
      this.#host.changed(this.name, "unread");
    }
  }

  async #loadHistory(): Promise<void> {
    const gen = ++this.#historyGen;
    try {
      const page = await this.#chat.history({ limit: HISTORY_LIMIT, reverse: true });
      if (gen !== this.#historyGen) return;
      for (const p of [...page.publications].reverse()) {
        const text = messageText(p.data);
        if (text === undefined) continue;
        const from = personOf(p.from);
        this.log.add(p.offset, text, from, p.time, from.user === this.#host.me);
      }
    } catch (error) {
      if (gen !== this.#historyGen) return;
      this.log.notice(`Could not load the history: ${errorText(error)}`);
    }
  }

  async #loadPresence(): Promise<void> {
    try {
      const page = await this.#chat.presence({ limit: 200 });
      if (this.#disposed) return;
      this.presence.reset(page.members);
      this.#host.changed(this.name, "presence");
    } catch {
      // the next subscribe (or join/leave events) will refresh it
    }
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
