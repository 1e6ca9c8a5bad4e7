/**
 * One realtime connection: the duplex.v1 command loop on top of a WebSocket connection.
 * Commands of a session run one after another (a publish is acknowledged before the next
 * command starts), so a client's publishes keep their order; replies are written in order.
 */

import type { SendResult, WebSocketConnection } from "../server/index.js";
import { AuthError, type Identity, isGranted, type Operation, onExpiry } from "./auth.js";
import { BrokerUnavailableError } from "./broker.js";
import type { Membership, Subscriber } from "./channel.js";
import { DisconnectCode, ERROR_MESSAGES, ErrorCode, shouldReconnect } from "./codes.js";
import type { Hub } from "./hub.js";
import type { Namespace } from "./namespaces.js";
import {
  type ClientInfo,
  type Command,
  CommandError,
  encodeError,
  encodePush,
  encodeResult,
  type Json,
  parseCommand,
  type WireError,
} from "./wire.js";

/** An error a command handler throws to answer with this code. */
export class ReplyError extends Error {
  constructor(
    readonly code: number,
    message: string = ERROR_MESSAGES[code] ?? "error",
  ) {
    super(message);
    this.name = "ReplyError";
  }
}

const MAX_QUEUED_COMMANDS = 256;

/** A Close frame's reason is at most 123 bytes of UTF-8 (RFC 6455 5.5): cut on a character boundary. */
export function closeReason(reason: string, maxBytes = 123): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= maxBytes) return reason;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}

export class Session implements Subscriber {
  readonly id: string;
  identity: Identity | undefined;
  info: ClientInfo | undefined;
  infoJson: string | undefined;
  /** Channels this session is subscribed to (or subscribing). */
  readonly channels = new Map<string, Membership>();
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private paused = false;
  private closed = false;
  /** Cancels the disconnect at the token's expiry. */
  private cancelExpiry: () => void = () => undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly ws: WebSocketConnection,
    private readonly hub: Hub,
    readonly request: unknown,
  ) {
    this.id = hub.newClientId();
    this.connectTimer = setTimeout(
      () => this.disconnect(DisconnectCode.CONNECT_TIMEOUT),
      hub.options.connectTimeoutMs,
    );
    this.connectTimer.unref?.();
    ws.on("message", (data: Buffer, binary: boolean) => this.onMessage(data, binary));
    ws.on("close", () => this.onClose());
  }

  get connected(): boolean {
    return this.identity !== undefined && !this.closed;
  }

  // --- Subscriber ----------------------------------------------------------------------------

  bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  writePub(frame: Uint8Array, text: string): SendResult {
    if (this.closed || this.ws.readyState !== 1) return "dropped";
    return this.ws.compresses ? this.ws.send(text) : this.ws.sendFrame(frame);
  }

  lostPosition(channel: string): void {
    this.channels.delete(channel);
    this.push({
      type: "unsubscribed",
      channel,
      code: DisconnectCode.INSUFFICIENT_STATE,
      reason: ERROR_MESSAGES[DisconnectCode.INSUFFICIENT_STATE] ?? "",
      resubscribe: true,
    });
    this.hub.afterLeave(this, channel, false);
  }

  tooSlow(): void {
    this.disconnect(DisconnectCode.SLOW);
  }

  onDrainOnce(callback: () => void): void {
    this.ws.once("drain", callback);
  }

  // --- Output --------------------------------------------------------------------------------

  write(text: string): void {
    if (this.closed || this.ws.readyState !== 1) return;
    this.ws.send(text);
  }

  push(push: Parameters<typeof encodePush>[0]): void {
    this.write(encodePush(push));
  }

  /** Tell the client why (a `disconnect` push), then close the WebSocket with the code. */
  disconnect(code: number, reason: string = ERROR_MESSAGES[code] ?? ""): void {
    if (this.closed) return;
    this.push({ type: "disconnect", code, reason, reconnect: shouldReconnect(code) });
    try {
      this.ws.close(code, closeReason(reason));
    } catch {
      this.ws.terminate();
    }
    this.onClose();
  }

  // --- Input ---------------------------------------------------------------------------------

  private onMessage(data: Buffer, binary: boolean): void {
    if (this.closed) return;
    if (binary) {
      this.disconnect(DisconnectCode.BAD_REQUEST, "duplex.v1 commands are text frames");
      return;
    }
    let command: Command;
    try {
      command = parseCommand(data.toString("utf8"), this.hub.wireLimits);
    } catch (e) {
      this.badCommand(e);
      return;
    }
    if (this.identity === undefined && command.type !== "connect") {
      this.fail(command, { code: ErrorCode.UNAUTHORIZED, message: "send connect first" });
      this.disconnect(DisconnectCode.UNAUTHORIZED, "connect first");
      return;
    }
    this.queued++;
    if (this.queued > MAX_QUEUED_COMMANDS && !this.paused) {
      this.paused = true;
      this.ws.pause(); // backpressure on a client that sends faster than we answer
    }
    this.queue = this.queue.then(() => this.run(command));
  }

  private badCommand(e: unknown): void {
    if (e instanceof CommandError && e.id !== undefined) {
      this.write(encodeError(e.id, { code: e.code, message: e.message }));
      return;
    }
    const message = e instanceof Error ? e.message : "bad command";
    this.disconnect(DisconnectCode.BAD_REQUEST, message.slice(0, 100));
  }

  private async run(command: Command): Promise<void> {
    try {
      if (this.closed) return;
      const result = await this.hub.execute(this, command);
      if (command.id !== undefined) this.write(encodeResult(command.id, result.reply));
      result.after?.();
    } catch (e) {
      this.fail(command, toWireError(e));
      if (e instanceof AuthError && command.type === "connect") {
        this.disconnect(
          e.code === ErrorCode.TOKEN_EXPIRED
            ? DisconnectCode.TOKEN_EXPIRED
            : DisconnectCode.UNAUTHORIZED,
          e.message.slice(0, 100),
        );
      }
    } finally {
      this.queued--;
      if (this.paused && this.queued < MAX_QUEUED_COMMANDS / 4) {
        this.paused = false;
        this.ws.resume();
      }
    }
  }

  private fail(command: Command, error: WireError): void {
    if (command.id !== undefined) {
      this.write(encodeError(command.id, error));
      return;
    }
    const channel = "channel" in command ? command.channel : undefined;
    this.push({
      type: "error",
      command: command.type,
      ...(channel === undefined ? {} : { channel }),
      error,
    });
  }

  // --- Identity ------------------------------------------------------------------------------

  setIdentity(identity: Identity, name: string | undefined): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.identity = identity;
    const info: ClientInfo = {
      client: this.id,
      user: identity.user,
      ...(identity.info === undefined ? {} : { info: identity.info }),
    };
    this.info = info;
    this.infoJson = JSON.stringify(info);
    void name;
    this.armExpiry(identity.expiresAt);
  }

  refreshIdentity(identity: Identity): void {
    if (this.identity === undefined || identity.user !== this.identity.user) {
      throw new ReplyError(
        ErrorCode.PERMISSION_DENIED,
        "a refreshed token must be for the same user",
      );
    }
    this.identity = identity;
    this.armExpiry(identity.expiresAt);
  }

  private armExpiry(expiresAt: number | undefined): void {
    this.cancelExpiry();
    this.cancelExpiry = onExpiry(expiresAt, () => this.disconnect(DisconnectCode.TOKEN_EXPIRED));
  }

  /** Whether the token grants `op` on `channel`. */
  granted(op: Operation, channel: string): boolean {
    return this.identity !== undefined && isGranted(this.identity.grants, op, channel);
  }

  // --- Close ---------------------------------------------------------------------------------

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.cancelExpiry();
    this.hub.sessionClosed(this);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

export function toWireError(e: unknown): WireError {
  if (e instanceof ReplyError || e instanceof AuthError || e instanceof CommandError) {
    return { code: e.code, message: e.message };
  }
  if (e instanceof BrokerUnavailableError) {
    return {
      code: ErrorCode.UNAVAILABLE,
      message: "broker unavailable, nothing done",
      temporary: true,
    };
  }
  return { code: ErrorCode.INTERNAL, message: "internal error", temporary: true };
}

/** A command's outcome: the reply's result, and what to do once it is written. */
export interface Executed {
  readonly reply: object;
  readonly after?: () => void;
}

export type { Json, Namespace };
