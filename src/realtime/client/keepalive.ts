/**
 * The keepalive of one connection, at the interval the connect reply gave (`ping`): every
 * `interval` ms, if the previous ping is still unanswered the connection is dead (the client
 * closes it with 3008 and reconnects), else the next ping is sent. So a ping reply has
 * `interval` ms to arrive.
 */

type Timer = ReturnType<typeof setTimeout>;

/** What a Keepalive needs from its connection. */
export interface KeepaliveHost {
  /** Send a ping; call pong() when its reply arrives. */
  ping(pong: () => void): void;
  /** The previous ping is still unanswered after a whole interval. */
  timeout(): void;
}

export class Keepalive {
  readonly #interval: number;
  readonly #host: KeepaliveHost;
  #timer: Timer | undefined;
  #outstanding = false;

  /** Starts at once: the first ping goes out after `interval` ms. */
  constructor(interval: number, host: KeepaliveHost) {
    this.#interval = interval;
    this.#host = host;
    this.#timer = setTimeout(this.#tick, interval);
  }

  /** For good (the connection is gone). */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    if (this.#outstanding) {
      this.#host.timeout();
      return;
    }
    this.#outstanding = true;
    this.#host.ping(() => {
      this.#outstanding = false;
    });
    this.#timer = setTimeout(this.#tick, this.#interval);
  };
}
