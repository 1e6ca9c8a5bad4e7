/**
 * A WebSocket connection over a Node stream socket: drives the protocol core's Connection with
 * the socket's bytes, writes what it produces (corked per tick), and owns the timers the core
 * leaves out (close handshake timeout). Shared by the server and the client.
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

export interface SocketConnectionOptions {
  readonly role: "server" | "client";
  readonly limits: Limits;
  readonly protocol: string;
  readonly extensions: string;
  readonly codec: MessageCodec | null;
  /** How long to wait for the peer's Close (and, for a client, the server's TCP close). */
  readonly closeTimeoutMs: number;
}

const allocUnsafe = (n: number): Uint8Array => Buffer.allocUnsafe(n);

function toBuffer(data: SendData): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("data must be a string, Buffer, ArrayBuffer or typed array");
}

/**
 * Events: `message` (data: Buffer, isBinary: boolean), `ping` (Buffer), `pong` (Buffer),
 * `close` (code: number, reason: string), `error` (Error), `drain`.
 */
export class SocketConnection extends EventEmitter {
  readonly protocol: string;
  readonly extensions: string;
  private readonly socket: Socket;
  private readonly core: Connection;
  private readonly isClient: boolean;
  private readonly closeTimeoutMs: number;
  private readonly codec: MessageCodec | null;
  private corked = false;
  private closeTimer: NodeJS.Timeout | null = null;
  private emittedClose = false;

  constructor(socket: Socket, options: SocketConnectionOptions) {
    super();
    this.socket = socket;
    this.protocol = options.protocol;
    this.extensions = options.extensions;
    this.isClient = options.role === "client";
    this.closeTimeoutMs = options.closeTimeoutMs;
    this.codec = options.codec;
    const handler: ConnectionHandler = {
      onMessage: (data, binary) => this.emit("message", data as Buffer, binary),
      onPing: (data) => this.emit("ping", data as Buffer),
      onPong: (data) => this.emit("pong", data as Buffer),
      onCloseFrame: () => this.afterCoreClosed(),
      onError: (error) => {
        if (this.listenerCount("error") > 0) this.emit("error", error);
        this.afterCoreClosed();
      },
      onWrite: (chunk) => this.write(chunk),
    };
    this.core = new Connection(
      { role: options.role, limits: options.limits, alloc: allocUnsafe, validateUtf8: isUtf8 },
      handler,
    );
    this.core.open(options.codec);
    socket.setNoDelay(true);
    socket.setTimeout(0);
    socket.on("data", (chunk: Buffer) => {
      this.core.receiveData(chunk);
      if (this.core.isReceivePaused && !socket.isPaused()) {
        socket.pause();
        setImmediate(() => this.resumeWhenReady());
      }
    });
    socket.on("end", () => {
      this.core.receiveEof();
      socket.end();
    });
    socket.on("error", () => {
      // ECONNRESET and friends end in 'close' below; the code reported is 1006.
    });
    socket.on("close", () => this.onSocketClose());
    socket.on("drain", () => this.emit("drain"));
  }

  /** WHATWG readyState numbers: 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED. */
  get readyState(): ReadyState {
    if (this.emittedClose) return ReadyState.CLOSED;
    const s = this.core.state;
    return s === ReadyState.CLOSED ? ReadyState.CLOSING : s;
  }

  /** Bytes accepted by send() but not yet handed to the operating system. */
  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  /** Feed bytes that arrived together with the upgrade request/response. */
  receiveHead(head: Buffer): void {
    if (head.length > 0) this.core.receiveData(head);
  }

  send(
    data: SendData,
    options: { binary?: boolean; fin?: boolean; compress?: boolean } = {},
  ): void {
    const binary = options.binary ?? typeof data !== "string";
    const sendOptions = {
      ...(options.fin === undefined ? {} : { fin: options.fin }),
      ...(options.compress === undefined ? {} : { compress: options.compress }),
    };
    this.core.send(toBuffer(data), binary, sendOptions);
  }

  ping(data: SendData = Buffer.alloc(0)): void {
    this.core.ping(toBuffer(data));
  }

  pong(data: SendData = Buffer.alloc(0)): void {
    this.core.pong(toBuffer(data));
  }

  /** Start the closing handshake; the TCP connection ends when it completes or times out. */
  close(code?: number, reason?: string): void {
    if (this.core.state === ReadyState.CLOSED) return;
    this.core.close(code, reason);
    this.armCloseTimer();
  }

  /** Destroy the TCP connection at once (no closing handshake). */
  terminate(): void {
    this.core.receiveEof();
    this.socket.destroy();
  }

  private write(chunk: Uint8Array): void {
    if (this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(chunk);
  }

  private resumeWhenReady(): void {
    if (this.socket.destroyed) return;
    if (this.core.isReceivePaused) {
      setImmediate(() => this.resumeWhenReady());
      return;
    }
    this.socket.resume();
  }

  /** The core reached CLOSED (handshake done or failed): end the transport. */
  private afterCoreClosed(): void {
    if (this.isClient) {
      // RFC 6455 §7.1.1: the server closes TCP first; wait for it, then give up.
      this.armCloseTimer();
      return;
    }
    process.nextTick(() => this.socket.end());
    this.armCloseTimer();
  }

  private armCloseTimer(): void {
    if (this.closeTimer !== null) return;
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.closeTimeoutMs);
    this.closeTimer.unref();
  }

  private onSocketClose(): void {
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.core.receiveEof();
    this.codec?.close();
    if (this.emittedClose) return;
    this.emittedClose = true;
    const status = this.core.closeStatus;
    this.emit("close", status.code, status.reason, status.wasClean);
  }
}
