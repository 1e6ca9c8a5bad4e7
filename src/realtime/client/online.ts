/**
 * Listening to the platform's `online` event (the browser's window, or any OnlineEventSource),
 * while the client wants to be connected.
 */

import type { OnlineEventSource } from "./types.js";

export class OnlineWatch {
  readonly #source: OnlineEventSource | null;
  readonly #listener: () => void;
  #attached = false;

  /** `source` null: there are no online events to listen to, and attach() does nothing. */
  constructor(source: OnlineEventSource | null, listener: () => void) {
    this.#source = source;
    this.#listener = listener;
  }

  attach(): void {
    if (this.#source === null || this.#attached) return;
    this.#source.addEventListener("online", this.#listener);
    this.#attached = true;
  }

  detach(): void {
    if (this.#source === null || !this.#attached) return;
    this.#source.removeEventListener("online", this.#listener);
    this.#attached = false;
  }
}
