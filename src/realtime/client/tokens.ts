/**
 * The token sent with `connect`, and its renewal through options.getToken(): before a connect
 * when there is no token yet or the last one was refused or expired (markStale), and in-band
 * (a `refresh` command) at ~90% of the lifetime the server announced (`expires`).
 */

import { ErrorCode } from "../codes.js";
import type { Reply } from "../wire.js";
import { isReplyError, type Link, noop } from "./calls.js";
import { errorMessage, isTemporary, RealtimeError } from "./errors.js";

type Timer = ReturnType<typeof setTimeout>;

/** setTimeout's largest delay (larger ones fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the tokens need from the connection. */
export interface TokenHost extends Link {
  /** Whether connection generation `conn` is still the current one. */
  isCurrent(conn: number): boolean;
  /** Report an error (as the client's "error" event). */
  error(error: Error): void;
}

export class Tokens {
  readonly #host: TokenHost;
  readonly #getToken: (() => Promise<string>) | undefined;
  #token: string | undefined;
  /** The token was refused or expired: ask getToken() before the next connect. */
  #stale = false;
  #refreshTimer: Timer | undefined;

  constructor(
    token: string | undefined,
    getToken: (() => Promise<string>) | undefined,
    host: TokenHost,
  ) {
    this.#token = token;
    this.#getToken = getToken;
    this.#host = host;
  }

  /** The token to send with the next connect, unless `due`. */
  get current(): string | undefined {
    return this.#token;
  }

  /** There is a getToken() to ask for new tokens. */
  get renewable(): boolean {
    return this.#getToken !== undefined;
  }

  /** getToken() must be asked (fetch, then accept) before the next connect. */
  get due(): boolean {
    return this.#getToken !== undefined && (this.#token === undefined || this.#stale);
  }

  /** The server refused or expired the current token. */
  markStale(): void {
    this.#stale = true;
  }

  /** A new token from getToken() (keep it with accept()); rejects when it fails or there is none. */
  async fetch(): Promise<string> {
    const getToken = this.#getToken;
    if (getToken === undefined) throw new TypeError("no getToken() to ask for a token");
    const token = await getToken();
    if (typeof token !== "string") throw new TypeError("getToken() must resolve to a string");
    return token;
  }

  /** Use `token` from now on. */
  accept(token: string): void {
    this.#token = token;
    this.#stale = false;
  }

  /** Refresh in-band at ~90% of the token's remaining lifetime (`expires`: ms since the epoch). */
  scheduleRefresh(conn: number, expires: number): void {
    this.cancelRefresh();
    if (this.#getToken === undefined) return; // the server will disconnect with 4003
    const at = Date.now() + Math.max(0, expires - Date.now()) * 0.9;
    const arm = (): void => {
      const wait = at - Date.now();
      this.#refreshTimer = setTimeout(
        () => {
          this.#refreshTimer = undefined;
          if (!this.#host.isCurrent(conn)) return;
          if (Date.now() < at) arm();
          else void this.#refresh(conn);
        },
        Math.min(Math.max(0, wait), MAX_TIMER_MS),
      );
    };
    arm();
  }

  cancelRefresh(): void {
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
  }

  async #refresh(conn: number): Promise<void> {
    if (this.#getToken === undefined) return;
    let token: string;
    try {
      token = await this.fetch();
    } catch (error) {
      if (this.#host.isCurrent(conn)) {
        this.#host.error(
          new RealtimeError(
            ErrorCode.UNAUTHORIZED,
            `token refresh failed: ${errorMessage(error)}`,
            true,
          ),
        );
      }
      return;
    }
    this.accept(token);
    if (!this.#host.isCurrent(conn) || !this.#host.connected) return;
    this.#host.call({ type: "refresh", token }, (reply) => this.#onRefreshReply(conn, reply), noop);
  }

  #onRefreshReply(conn: number, reply: Reply): void {
    if (!this.#host.isCurrent(conn)) return;
    if (isReplyError(reply)) {
      const e = reply.error;
      this.#host.error(
        new RealtimeError(e.code, `token refresh refused: ${e.message}`, isTemporary(e)),
      );
      return;
    }
    const expires = reply.result.expires;
    if (typeof expires === "number") this.scheduleRefresh(conn, expires);
  }
}
