/**
 * A WebSocket connection over a Node stream socket: drives the protocol core's Connection with
 * the socket's bytes, writes what it produces (corked per tick), and owns what the core leaves
 * out: timers (close handshake timeout, heartbeat), outbound backpressure policy and inbound
 * flow control. Shared by the server and the client.
 */
import { isUtf8 } from "node:buffer";
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import {
  Connection,
  type ConnectionHandler,
  type MessageCodec,
  ReadyState,
} from "../protocol/index.js";
import type { Limits } from "../protocol/limits.js";

export type SendData = string | Buffer | ArrayBuffer | ArrayBufferView;

/** What `send` did with the message. */
export type SendResult = "sent" | "queued" | "dropped";

/** What happens when a send would push `bufferedAmount` over `maxOutboundBytes`. */
export type SlowConsumerPolicy = "close" | "drop";

/** Close code used when the `close` slow-consumer policy ends a connection (Policy Violation). */
export const SLOW_CONSUMER_CLOSE_CODE = 1008;

export interface SocketConnectionOptions {
  readonly role: "server" | "client";
  readonly limits: Limits;
  readonly protocol: string;
  readonly extensions: string;
  readonly codec: MessageCodec | null;
  /** The negotiated server_no_context_takeover (lets a broadcast share compressed bytes). */
  readonly serverNoContextTakeover?: boolean;
  /** How long to wait for the peer's Close (and, for a client, the server's TCP close). */
  readonly closeTimeoutMs: number;
  /** Outbound bytes allowed to wait in memory. @default 4 MiB */
  readonly maxOutboundBytes?: number;
  /** @default "close" */
  readonly slowConsumerPolicy?: SlowConsumerPolicy;
}

export interface SendOptions {
  /** @default true for anything but a string */
  readonly binary?: boolean;
  /** @default true */
  readonly fin?: boolean;
  /** Compress when permessage-deflate was negotiated. @default true */
  readonly compress?: boolean;
}

const allocUnsafe = (n: number): Uint8Array => Buffer.allocUnsafe(n);

/** Frames written in one tick up to this many bytes in all are copied into one buffer. */
const JOIN_LIMIT = 16 * 1024;

export function toBuffer(data: SendData): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("data must be a string, Buffer, ArrayBuffer or typed array");
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
}

// biome-ignore lint/suspicious/noExplicitAny: EventEmitter listeners take any arguments.
type Listener = (...args: any[]) => void;

/** The connection a socket belongs to: socket listeners are shared functions, not closures. */
const kConn = Symbol("duplex.connection");
type OwnedSocket = Socket & { [kConn]?: SocketConnection };

function onSocketData(this: OwnedSocket, chunk: Buffer): void {
  this[kConn]?.onData(chunk);
}
function onSocketEnd(this: OwnedSocket): void {
  this[kConn]?.onEnd();
}
function onSocketError(): void {
  // ECONNRESET and friends end in 'close'; the code reported is 1006.
}
function onSocketClose(this: OwnedSocket): void {
  this[kConn]?.onSocketClose();
}
function onSocketDrain(this: OwnedSocket): void {
  this[kConn]?.emit("drain");
}

/**
 * Output written during one tick is flushed at its end, for every connection at once: one
 * process.nextTick per tick instead of one per connection.
 */
const toFlush: SocketConnection[] = [];
function flushAll(): void {
  // Connections added while flushing (a write from a 'drain' listener...) flush in this loop.
  for (let i = 0; i < toFlush.length; i++) toFlush[i]!.flush();
  toFlush.length = 0;
}

/** The core's callbacks, one small object per connection instead of six closures. */
class CoreHandler implements ConnectionHandler {
  constructor(private readonly conn: SocketConnection) {}
  onMessage(data: Uint8Array, binary: boolean): void {
    this.conn.emit("message", asBuffer(data), binary);
  }
  onPing(data: Uint8Array): void {
    this.conn.emit("ping", asBuffer(data));
  }
  onPong(data: Uint8Array): void {
    this.conn.onPong(data);
  }
  onCloseFrame(): void {
    // Reported by the `close` event (closeStatus); onClosed follows.
  }
  onError(error: Error): void {
    if (this.conn.listenerCount("error") > 0) this.conn.emit("error", error);
  }
  onWrite(chunk: Uint8Array): void {
    this.conn.write(chunk);
  }
  onClosed(): void {
    this.conn.afterCoreClosed();
  }
}

/**
 * Events: `message` (data: Buffer, isBinary: boolean), `ping` (Buffer), `pong` (Buffer),
 * `close` (code: number, reason: string, wasClean: boolean), `error` (Error), `drain`.
 * The same events are available through `addEventListener` as event objects.
 */
export class SocketConnection extends EventEmitter {
  readonly protocol: string;
  readonly extensions: string;
  readonly serverNoContextTakeover: boolean;
  private readonly socket: Socket;
  private readonly core: Connection;
  private readonly isClient: boolean;
  private readonly closeTimeoutMs: number;
  private readonly codec: MessageCodec | null;
  private readonly maxOutboundBytes: number;
  private readonly policy: SlowConsumerPolicy;
  /** Frames written this tick, flushed together at its end (see flushAll). */
  private pending: Uint8Array[] | null = null;
  private pendingBytes = 0;
  private closeTimer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private pongDeadline: NodeJS.Timeout | null = null;
  /** The socket's input ended ('end'). */
  private inputEnded = false;
  /** The socket is closed ('close'); the `close` event waits for the core to reach CLOSED. */
  private socketClosed = false;
  /** The core reached CLOSED (afterCoreClosed ran). */
  private coreClosed = false;
  private emittedClose = false;
  private userPaused = false;
  private wrappers: WeakMap<object, Listener> | null = null;

  constructor(socket: Socket, options: SocketConnectionOptions) {
    super();
    this.socket = socket;
    this.protocol = options.protocol;
    this.extensions = options.extensions;
    this.serverNoContextTakeover = options.serverNoContextTakeover ?? false;
    this.isClient = options.role === "client";
    this.closeTimeoutMs = options.closeTimeoutMs;
    this.codec = options.codec;
    this.maxOutboundBytes = options.maxOutboundBytes ?? 4 * 1024 * 1024;
    this.policy = options.slowConsumerPolicy ?? "close";
    this.core = new Connection(
      { role: options.role, limits: options.limits, alloc: allocUnsafe, validateUtf8: isUtf8 },
      new CoreHandler(this),
    );
    this.core.open(options.codec);
    socket.setNoDelay(true);
    socket.setTimeout(0);
    (socket as OwnedSocket)[kConn] = this;
    socket.on("data", onSocketData);
    socket.on("end", onSocketEnd);
    socket.on("error", onSocketError);
    socket.on("close", onSocketClose);
    socket.on("drain", onSocketDrain);
  }

  /** @internal socket 'data' */
  onData(chunk: Buffer): void {
    this.core.receiveData(chunk);
    const socket = this.socket;
    if (this.core.isReceivePaused && !socket.isPaused()) {
      socket.pause();
      setImmediate(() => this.resumeWhenReady());
    }
  }

  /**
   * @internal socket 'end'. Frames received before it that wait for the inflater are still
   * processed (and a Close among them answered) before TCP is ended, in afterCoreClosed.
   */
  onEnd(): void {
    this.inputEnded = true;
    if (this.coreClosed) this.endSocket();
    else this.core.receiveEof();
  }

  /** @internal core Pong */
  onPong(data: Uint8Array): void {
    this.clearPongDeadline();
    this.emit("pong", asBuffer(data));
  }

  /** WHATWG readyState numbers: 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED. */
  get readyState(): ReadyState {
    if (this.emittedClose) return ReadyState.CLOSED;
    const s = this.core.state;
    return s === ReadyState.CLOSED ? ReadyState.CLOSING : s;
  }

  /** Bytes accepted by send() but not yet handed to the operating system. */
  get bufferedAmount(): number {
    return this.buffered();
  }

  /** Bytes in the socket, in this tick's pending output and held by the core (compressor). */
  private buffered(): number {
    return this.socket.writableLength + this.pendingBytes + this.core.bufferedBytes;
  }

  /** The remote address of the underlying socket. */
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  /** Feed bytes that arrived together with the upgrade request/response. */
  receiveHead(head: Uint8Array): void {
    if (head.length > 0) this.core.receiveData(head);
  }

  /**
   * Send a message. Returns `"sent"` when the bytes went to the socket below its high-water
   * mark, `"queued"` when they wait in memory (or in the compressor), `"dropped"` when the
   * slow-consumer policy refused them (with policy `close` the connection is then closed with
   * 1008). Throws when the connection is not open.
   */
  send(data: SendData, options: SendOptions = {}): SendResult {
    const payload = toBuffer(data);
    if (this.overLimit(payload.length)) return this.slowConsumer();
    const binary = options.binary ?? typeof data !== "string";
    const before = this.pendingBytes;
    this.core.send(payload, binary, options);
    return this.result(before);
  }

  /**
   * Write a frame encoded once for many connections (see WebSocketServer.broadcast). Applies the
   * same slow-consumer policy as send().
   */
  sendFrame(frame: Uint8Array): SendResult {
    if (this.overLimit(frame.length)) return this.slowConsumer();
    this.core.sendFrame(frame);
    return this.buffered() >= this.socket.writableHighWaterMark ? "queued" : "sent";
  }

  /** True when this connection compresses what it sends. */
  get compresses(): boolean {
    return this.codec !== null;
  }

  ping(data: SendData = Buffer.alloc(0)): void {
    this.core.ping(toBuffer(data));
  }

  pong(data: SendData = Buffer.alloc(0)): void {
    this.core.pong(toBuffer(data));
  }

  /** Start the closing handshake; the TCP connection ends when it completes or times out. */
  close(code?: number, reason?: string): void {
    if (this.core.state === ReadyState.CLOSED || this.core.state === ReadyState.CLOSING) return;
    this.core.close(code, reason);
    this.armCloseTimer();
  }

  /** Destroy the TCP connection at once (no closing handshake). */
  terminate(): void {
    this.core.abort();
    this.socket.destroy();
  }

  /** Stop reading from the socket (TCP backpressure reaches the peer) until resume(). */
  pause(): void {
    this.userPaused = true;
    this.socket.pause();
  }

  resume(): void {
    this.userPaused = false;
    if (!this.core.isReceivePaused) this.socket.resume();
  }

  /**
   * Ping every `intervalMs`; when no Pong arrives within `timeoutMs` of a Ping the connection
   * is terminated (the peer or the path to it is dead). Timers do not keep the process alive.
   */
  startHeartbeat(intervalMs: number, timeoutMs: number): void {
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      if (this.core.state !== ReadyState.OPEN) return;
      this.core.ping(new Uint8Array(0));
      if (this.pongDeadline === null) {
        this.pongDeadline = setTimeout(() => this.terminate(), timeoutMs);
        this.pongDeadline.unref();
      }
    }, intervalMs);
    this.heartbeat.unref();
  }

  stopHeartbeat(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.clearPongDeadline();
  }

  addEventListener(type: string, listener: (event: Record<string, unknown>) => void): void {
    let wrapper: Listener;
    switch (type) {
      case "message":
        wrapper = ((data: Buffer, isBinary: boolean) =>
          listener({ type, data, isBinary, target: this })) as Listener;
        break;
      case "close":
        wrapper = ((code: number, reason: string, wasClean: boolean) =>
          listener({ type, code, reason, wasClean, target: this })) as Listener;
        break;
      case "error":
        wrapper = ((error: Error) =>
          listener({ type, error, message: error.message, target: this })) as Listener;
        break;
      case "ping":
      case "pong":
        wrapper = ((data: Buffer) => listener({ type, data, target: this })) as Listener;
        break;
      default:
        wrapper = (() => listener({ type, target: this })) as Listener;
    }
    if (this.wrappers === null) this.wrappers = new WeakMap();
    this.wrappers.set(listener, wrapper);
    this.on(type, wrapper);
  }

  removeEventListener(type: string, listener: (event: Record<string, unknown>) => void): void {
    const wrapper = this.wrappers?.get(listener);
    if (wrapper !== undefined) this.off(type, wrapper);
  }

  private overLimit(size: number): boolean {
    const buffered = this.buffered();
    return buffered > 0 && buffered + size > this.maxOutboundBytes;
  }

  private slowConsumer(): SendResult {
    if (this.policy === "close") {
      this.core.fail(SLOW_CONSUMER_CLOSE_CODE, "slow consumer: outbound buffer full");
      // The Close frame cannot get past the full buffer: do not wait for it.
      this.socket.destroy();
    }
    return "dropped";
  }

  private result(before: number): SendResult {
    if (this.pendingBytes === before && this.codec !== null) return "queued";
    return this.buffered() >= this.socket.writableHighWaterMark ? "queued" : "sent";
  }

  /** @internal Queue bytes for the end of this tick. */
  write(chunk: Uint8Array): void {
    if (this.socket.destroyed) return;
    if (this.pending === null) {
      this.pending = [chunk];
      if (toFlush.length === 0) process.nextTick(flushAll);
      toFlush.push(this);
    } else {
      this.pending.push(chunk);
    }
    this.pendingBytes += chunk.length;
  }

  /** @internal Hand this tick's output to the socket: one write (small frames are joined). */
  flush(): void {
    const pending = this.pending;
    if (pending === null) return;
    const bytes = this.pendingBytes;
    this.pending = null;
    this.pendingBytes = 0;
    const socket = this.socket;
    if (socket.destroyed) return;
    if (pending.length === 1) {
      socket.write(pending[0]!);
    } else if (bytes <= JOIN_LIMIT) {
      socket.write(Buffer.concat(pending, bytes));
    } else {
      socket.cork();
      for (const chunk of pending) socket.write(chunk);
      socket.uncork();
    }
  }

  private resumeWhenReady(): void {
    if (this.socket.destroyed) return;
    if (this.core.isReceivePaused) {
      setImmediate(() => this.resumeWhenReady());
      return;
    }
    if (!this.userPaused) this.socket.resume();
  }

  /**
   * @internal The core reached CLOSED (handshake done, failed, or input ended): everything it
   * had to write was written, our Close frame last. End the transport.
   */
  afterCoreClosed(): void {
    if (this.coreClosed) return;
    this.coreClosed = true;
    this.stopHeartbeat();
    if (this.socketClosed) {
      this.emitClose();
      return;
    }
    // A client waits for the server to close TCP first (RFC 6455 §7.1.1), then gives up.
    if (!this.isClient || this.inputEnded) process.nextTick(() => this.endSocket());
    this.armCloseTimer();
  }

  /** Hand what is pending to the socket, then end it (FIN after our last frame). */
  private endSocket(): void {
    if (this.socket.destroyed) return;
    this.flush();
    this.socket.end();
  }

  private armCloseTimer(): void {
    if (this.closeTimer !== null) return;
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.closeTimeoutMs);
    this.closeTimer.unref();
  }

  private clearPongDeadline(): void {
    if (this.pongDeadline !== null) clearTimeout(this.pongDeadline);
    this.pongDeadline = null;
  }

  /**
   * @internal socket 'close'. Frames received before it that wait for the inflater are still
   * delivered, then `close` is emitted (from afterCoreClosed when the core gets there later).
   */
  onSocketClose(): void {
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    this.stopHeartbeat();
    this.socketClosed = true;
    if (this.coreClosed) {
      this.emitClose();
      return;
    }
    this.core.receiveEof();
    if (this.coreClosed || this.emittedClose) return;
    // Waiting for the codec; should it never answer, give up after the close timeout.
    this.closeTimer = setTimeout(() => this.core.abort(), this.closeTimeoutMs);
    this.closeTimer.unref();
  }

  private emitClose(): void {
    if (this.emittedClose) return;
    this.emittedClose = true;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    this.codec?.close();
    const status = this.core.closeStatus;
    this.emit("close", status.code, status.reason, status.wasClean);
  }
}
