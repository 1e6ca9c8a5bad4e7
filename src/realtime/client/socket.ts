/**
 * The client's WebSocket to the server, one at a time. Commands go out with a fresh id (never
 * reused during the life of the client); a reply goes to the handler waiting for its id, and a
 * reply nobody waits for any more (its request timed out) is ignored. Everything else the
 * server sends is decoded and handed to the connection. A socket let go (detach) is ignored from
 * then on, whatever events it still delivers. The socket may be a WebSocket or an HTTP transport
 * with a WebSocket's face (http-socket.ts).
 */

import { type Command, encodeCommand, type Push, parseServerMessage, type Reply } from "../wire.js";
import { ClientErrorCode, errorMessage, RealtimeError } from "./errors.js";
import type { WebSocketLike } from "./types.js";

/** WebSocket readyState OPEN. */
const OPEN = 1;

/** What the connection hears of its socket. */
export interface SocketHandlers {
  open(): void;
  push(push: Push): void;
  /** The server sent something that is not duplex.v1 (ignored). */
  error(error: RealtimeError): void;
  close(event: Event): void;
}

/** Handlers of a command waiting for its reply on the current socket. */
interface Pending {
  /** The command's type (an rpc lost to a switch of socket is lost to the application). */
  readonly type: Command["type"];
  onReply(reply: Reply): void;
  /** The socket went away before the reply. */
  onLost(): void;
}

export class ServerSocket {
  #ws: WebSocketLike | null = null;
  #handlers: SocketHandlers | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  /** Called once when no rpc waits for its reply any more (whenSettled). */
  #settled: (() => void) | undefined;

  /** Use `ws` from now on (the previous socket, if any, was detached). */
  attach(ws: WebSocketLike, handlers: SocketHandlers): void {
    this.#ws = ws;
    this.#handlers = handlers;
    ws.addEventListener("open", () => {
      if (this.#ws === ws) this.#handlers?.open();
    });
    ws.addEventListener("message", (event) => {
      if (this.#ws === ws && this.#handlers !== undefined) this.#onMessage(event, this.#handlers);
    });
    ws.addEventListener("close", (event) => {
      if (this.#ws === ws) this.#handlers?.close(event);
    });
  }

  /** Hand the socket's events to other handlers from now on (a probe socket being adopted). */
  rebind(handlers: SocketHandlers): void {
    this.#handlers = handlers;
  }

  /** A socket is attached and open. */
  get isOpen(): boolean {
    return this.#ws !== null && this.#ws.readyState === OPEN;
  }

  /** Commands waiting for their reply. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Call `callback` once no rpc waits for its reply (now, if none does): then letting the socket
   * go loses nothing the client cannot re-send (publishes, history, presence, subscribes).
   */
  whenSettled(callback: () => void): void {
    this.#settled = callback;
    this.#checkSettled();
  }

  #checkSettled(): void {
    const settled = this.#settled;
    if (settled === undefined) return;
    for (const p of this.#pending.values()) if (p.type === "rpc") return;
    this.#settled = undefined;
    settled();
  }

  /** Let the socket go, closing it unless closeCode is undefined; its commands in flight are lost. */
  detach(closeCode: number | undefined, reason: string): void {
    const ws = this.#ws;
    this.#ws = null;
    this.#settled = undefined;
    if (ws !== null && closeCode !== undefined) {
      try {
        ws.close(closeCode, reason.slice(0, 60));
      } catch {
        // already closing
      }
    }
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.onLost();
  }

  /** Send a command with a fresh id on the open socket; undefined when there is none. */
  call(command: Command, onReply: (reply: Reply) => void, onLost: () => void): number | undefined {
    const ws = this.#ws;
    if (ws === null || ws.readyState !== OPEN) return undefined;
    const id = this.#nextId++;
    this.#pending.set(id, { type: command.type, onReply, onLost });
    try {
      ws.send(encodeCommand({ ...command, id }));
    } catch {
      // The socket is going away; its close event calls onLost.
    }
    return id;
  }

  /** Stop waiting for the reply to command `id` (its caller gave up on it). */
  forget(id: number): void {
    this.#pending.delete(id);
    this.#checkSettled();
  }

  #onMessage(event: Event, handlers: SocketHandlers): void {
    const data = (event as unknown as { data?: unknown }).data;
    if (typeof data !== "string") {
      handlers.error(
        new RealtimeError(ClientErrorCode.PROTOCOL, "binary message from the server ignored"),
      );
      return;
    }
    let msg: ReturnType<typeof parseServerMessage>;
    try {
      msg = parseServerMessage(data);
    } catch (error) {
      handlers.error(
        new RealtimeError(
          ClientErrorCode.PROTOCOL,
          `bad message from the server: ${errorMessage(error)}`,
        ),
      );
      return;
    }
    if ("id" in msg) {
      const pending = this.#pending.get(msg.id);
      if (pending === undefined) return; // timed out, or not ours to care about
      this.#pending.delete(msg.id);
      pending.onReply(msg);
      this.#checkSettled();
      return;
    }
    handlers.push(msg);
  }
}
