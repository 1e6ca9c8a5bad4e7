/**
 * Typing indicators. Incoming: a name shows for TYPING_SHOW_MS after its last signal (or until
 * that person's message arrives). Outgoing: at most one signal per TYPING_SEND_MS while the
 * input changes.
 */
import { TYPING_SEND_MS, TYPING_SHOW_MS } from "./model.js";

export class TypingIndicator {
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #onChange: () => void;

  constructor(onChange: () => void) {
    this.#onChange = onChange;
  }

  /** `name` is typing (again): show it, and hide it TYPING_SHOW_MS from now. */
  saw(name: string): void {
    const old = this.#timers.get(name);
    if (old !== undefined) clearTimeout(old);
    this.#timers.set(
      name,
      setTimeout(() => this.stop(name), TYPING_SHOW_MS),
    );
    if (old === undefined) this.#onChange();
  }

  /** `name` stopped (sent their message, or the signal expired). */
  stop(name: string): void {
    const timer = this.#timers.get(name);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#timers.delete(name);
    this.#onChange();
  }

  clear(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    const had = this.#timers.size > 0;
    this.#timers.clear();
    if (had) this.#onChange();
  }

  names(): string[] {
    return [...this.#timers.keys()].sort((a, b) => a.localeCompare(b));
  }
}

/** "ada is typing…", "ada and bob are typing…", "3 people are typing…", or "". */
export function typingText(names: readonly string[]): string {
  const [a, b] = names;
  if (a === undefined) return "";
  if (b === undefined) return `${a} is typing…`;
  if (names.length === 2) return `${a} and ${b} are typing…`;
  return `${names.length} people are typing…`;
}

/** Rate limit for outgoing signals. */
export class TypingThrottle {
  #last = Number.NEGATIVE_INFINITY;

  /** Call `send` unless it was called less than TYPING_SEND_MS ago. */
  tick(send: () => void): void {
    const now = Date.now();
    if (now - this.#last < TYPING_SEND_MS) return;
    this.#last = now;
    send();
  }
}
