/**
 * The message list of one room: an <ol> kept in offset order, one item per offset (history,
 * live and recovered publications may overlap; each offset is shown once), the user's own
 * messages that are still on their way at the end ("sending", then ✓ or a visible failure),
 * and notices. Everything a user wrote goes in as text nodes.
 */
import { paintUser } from "../shared/colour.js";
import { h } from "../shared/dom.js";
import { formatTime, type Person } from "./model.js";

/** sending/sent/failed: own messages; received: everyone else's. */
export type DeliveryStatus = "sending" | "sent" | "failed" | "received";

export interface MessageItem {
  readonly el: HTMLLIElement;
  readonly text: string;
  readonly status: HTMLElement;
  offset: number | undefined;
}

export class MessageLog {
  readonly el: HTMLOListElement;
  readonly #byOffset = new Map<number, MessageItem>();
  /** Items with an offset, ascending. */
  #order: MessageItem[] = [];
  /** Own messages not yet given an offset, in send order; always after #order in the DOM. */
  #pending: MessageItem[] = [];

  constructor(room: string) {
    this.el = h("ol", { class: "messages", "data-testid": "messages", "data-room": room });
  }

  /** How many stored messages are shown. */
  get size(): number {
    return this.#order.length;
  }

  has(offset: number): boolean {
    return this.#byOffset.has(offset);
  }

  /** Show a stored publication; false when its offset is already shown. */
  add(offset: number, text: string, from: Person, time: number | undefined, own: boolean): boolean {
    if (this.#byOffset.has(offset)) return false;
    const item = this.#create(text, from, time, own ? "sent" : "received");
    this.#place(item, offset);
    return true;
  }

  /** An own message on its way: shown at once as "sending". */
  addPending(text: string, from: Person): MessageItem {
    const item = this.#create(text, from, Date.now(), "sending");
    this.#pending.push(item);
    this.el.append(item.el);
    return item;
  }

  /**
   * A publication of this very connection arrived before its publish was acknowledged: it is
   * the oldest pending message with the same text (the outbox sends in order). That item takes
   * the offset; undefined when there is none.
   */
  adopt(offset: number, text: string): MessageItem | undefined {
    if (this.#byOffset.has(offset)) return undefined;
    const item = this.#pending.find((p) => p.text === text);
    if (item === undefined) return undefined;
    this.#pending = this.#pending.filter((p) => p !== item);
    this.#place(item, offset);
    return item;
  }

  /** The publish of `item` was acknowledged at `offset`: ✓. */
  confirm(item: MessageItem, offset: number): void {
    const existing = this.#byOffset.get(offset);
    if (existing !== undefined && existing !== item) {
      // Already shown (it came back through recovery before the ack): keep that one.
      this.#dropPending(item);
      item.el.remove();
      setStatus(existing, "sent");
      return;
    }
    if (item.offset === undefined) {
      this.#dropPending(item);
      this.#place(item, offset);
    }
    setStatus(item, "sent");
  }

  /** The publish of `item` failed for good: say so, with a retry button. */
  fail(item: MessageItem, reason: string, retry: () => void): void {
    setStatus(item, "failed");
    const button = h("button", { type: "button", class: "retry", "data-testid": "retry" }, "Retry");
    button.addEventListener("click", () => {
      setStatus(item, "sending");
      retry();
    });
    item.status.replaceChildren(
      h("span", { class: "failed-text", title: reason }, "Not sent"),
      " ",
      button,
    );
  }

  /** A line from the app itself (e.g. "history reloaded"), after the stored messages. */
  notice(text: string): void {
    const li = h("li", { class: "notice", "data-testid": "notice" }, text);
    this.el.insertBefore(li, this.#pending[0]?.el ?? null);
  }

  /** Forget every stored message and notice (the own messages on their way stay). */
  clear(): void {
    for (const child of [...this.el.children]) {
      if (!this.#pending.some((p) => p.el === child)) child.remove();
    }
    this.#byOffset.clear();
    this.#order = [];
  }

  #dropPending(item: MessageItem): void {
    this.#pending = this.#pending.filter((p) => p !== item);
  }

  /** Give `item` its offset and move it to its place in offset order. */
  #place(item: MessageItem, offset: number): void {
    item.offset = offset;
    item.el.dataset.offset = String(offset);
    this.#byOffset.set(offset, item);
    // First item with a larger offset (usually none: new messages go last).
    let lo = 0;
    let hi = this.#order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#order[mid]?.offset ?? 0) < offset) lo = mid + 1;
      else hi = mid;
    }
    const next = this.#order[lo]?.el ?? this.#pending[0]?.el ?? null;
    this.#order.splice(lo, 0, item);
    if (item.el.nextSibling !== next || item.el.parentNode !== this.el) {
      this.el.insertBefore(item.el, next);
    }
  }

  #create(text: string, from: Person, time: number | undefined, status: DeliveryStatus) {
    const t = formatTime(time);
    const initial = (Array.from(from.name)[0] ?? "?").toUpperCase();
    const author = h("span", { class: "author", "data-testid": "message-author" }, from.name);
    const statusEl = h("span", { class: "status", "data-testid": "message-status" });
    const li = h(
      "li",
      { class: status === "received" ? "message" : "message own", "data-testid": "message" },
      h("span", { class: "avatar", "aria-hidden": "true" }, initial),
      h(
        "div",
        { class: "body" },
        h(
          "div",
          { class: "meta" },
          author,
          h(
            "time",
            { class: "time", datetime: t.iso, title: t.full, "data-testid": "message-time" },
            t.short,
          ),
          statusEl,
        ),
        h("p", { class: "text", "data-testid": "message-text" }, text),
      ),
    );
    paintUser(li, from.colour);
    const item: MessageItem = { el: li, text, status: statusEl, offset: undefined };
    setStatus(item, status);
    return item;
  }
}

function setStatus(item: MessageItem, status: DeliveryStatus): void {
  item.el.dataset.status = status;
  switch (status) {
    case "sending":
      item.status.replaceChildren(h("span", { class: "sending" }, "sending…"));
      return;
    case "sent":
      item.status.replaceChildren(
        h("span", { class: "tick", "aria-hidden": "true", title: "Delivered" }, "✓"),
        h("span", { class: "sr-only" }, "delivered"),
      );
      return;
    case "failed":
    case "received":
      item.status.replaceChildren();
      return;
  }
}
