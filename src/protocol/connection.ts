/**
 * The sans-I/O WebSocket connection (RFC 6455 §5-§7, RFC 7692 §6-§7) for both roles.
 *
 * Bytes in: {@link Connection.receiveData}, {@link Connection.receiveEof}.
 * Intents in: send, ping, pong, close, fail, abort.
 * Out: {@link ConnectionHandler} callbacks: messages, pings, pongs, the peer's Close frame,
 * failures, bytes to write, and the move to CLOSED. No sockets, no timers: the I/O layer arms the
 * timers (close timeout, heartbeat) and closes the transport when {@link Connection.state}
 * becomes CLOSED ({@link ConnectionHandler.onClosed}).
 *
 * Lifecycle (numbers match the WHATWG readyState):
 *
 *   CONNECTING --open()--> OPEN --close()--> CLOSING --peer Close--> CLOSED
 *                           |                                         ^
 *                           +--peer Close------> CLOSING --reply------+
 *   any state --protocol failure / fail() / abort() / receiveEof()--> CLOSED
 *
 * Order is kept across an asynchronous codec, in both directions:
 * - CLOSED after a Close exchange means both Close frames were handed to onWrite: messages sent
 *   before close() (or before the peer's Close was processed) that wait in the compressor are
 *   written first, and our Close last (§5.5.1, §7.1.2); until then the state is CLOSING.
 * - receiveEof() while frames wait behind a pending decompression processes those frames first,
 *   in order (a Close among them completes the handshake); only then is the end of input handled.
 *
 * Message rules enforced here (the frame parser enforces the per-frame header rules):
 * continuation order (§5.4), cumulative size before buffering (1009), fragment count with empty
 * fragments counted (1008), fail-fast UTF-8 of text across frame and chunk boundaries (1007,
 * §8.1), close payload validation (§5.5.1, §7.4), inflation bounded by the message limit.
 */
import { ByteAccumulator } from "./accumulator.js";
import { decodeClosePayload, encodeClosePayload } from "./close-codes.js";
import { CodecLimitError, type MessageCodec } from "./codec.js";
import { ProtocolError, StateError } from "./errors.js";
import {
  type Alloc,
  COPY_THRESHOLD,
  encodeFrame,
  encodeFrameParts,
  MAX_CONTROL_PAYLOAD,
  Opcode,
} from "./frame.js";
import { CONTINUE, FrameParser, type FrameSink, PAUSE, type SinkResult } from "./frame-parser.js";
import { DEFAULT_LIMITS, type Limits } from "./limits.js";
import { isValidUtf8, Utf8Validator } from "./utf8.js";

export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState];

export interface ConnectionHandler {
  /** A complete message. Text messages are valid UTF-8 (decode with TextDecoder or Buffer). */
  onMessage(data: Uint8Array, binary: boolean): void;
  /** A Ping; the Pong reply is already written unless `autoPong` is off. */
  onPing(data: Uint8Array): void;
  onPong(data: Uint8Array): void;
  /**
   * The peer's Close frame (code 1005 when it carried none), once our own Close frame (the reply,
   * or the Close we sent first) was written after everything queued before it. State is CLOSED.
   */
  onCloseFrame(code: number, reason: string): void;
  /** The peer broke the protocol. A Close frame with `error.closeCode` was written if possible. */
  onError(error: ProtocolError): void;
  /** Bytes for the transport, in order. */
  onWrite(chunk: Uint8Array): void;
  /**
   * The state became CLOSED, for whatever reason (Close exchange, failure, fail(), abort(), end
   * of input): the transport may be closed now; nothing more will be written. Called once, after
   * onCloseFrame or onError when those apply. Optional, but the only notice when CLOSED is
   * reached asynchronously after receiveEof() (frames waited for the codec).
   */
  onClosed?(): void;
}

export interface ConnectionOptions {
  readonly role: "server" | "client";
  /** Resolved limits (see resolveLimits). @default DEFAULT_LIMITS */
  readonly limits?: Limits;
  /** Buffer allocator; the Node layer passes Buffer.allocUnsafe. @default new Uint8Array */
  readonly alloc?: Alloc;
  /** Fills masking keys for client frames; must be unpredictable (§5.3). @default crypto.getRandomValues */
  readonly random?: (out: Uint8Array) => void;
  /** Whole-buffer UTF-8 check for unfragmented text (e.g. node:buffer isUtf8). */
  readonly validateUtf8?: (bytes: Uint8Array) => boolean;
  /** Answer Pings with Pongs automatically. @default true */
  readonly autoPong?: boolean;
}

export interface SendOptions {
  /** Last frame of the message; false starts or continues a fragmented message. @default true */
  readonly fin?: boolean;
  /** Compress with permessage-deflate when negotiated (decided on a message's first frame). @default true */
  readonly compress?: boolean;
}

export interface CloseStatus {
  readonly code: number;
  readonly reason: string;
  /** Both Close frames were exchanged. */
  readonly wasClean: boolean;
}

const MASK_POOL_KEYS = 2048;
const encoder = new TextEncoder();

function defaultRandom(out: Uint8Array): void {
  globalThis.crypto.getRandomValues(out);
}

export class Connection implements FrameSink {
  private readonly handler: ConnectionHandler;
  private readonly limits: Limits;
  private readonly alloc: Alloc;
  private readonly isClient: boolean;
  private readonly random: (out: Uint8Array) => void;
  private readonly fastUtf8: (bytes: Uint8Array) => boolean;
  private readonly autoPong: boolean;
  private readonly parser: FrameParser;
  private codec: MessageCodec | null = null;
  private readyState: ReadyState = ReadyState.CONNECTING;

  // Inbound message in progress.
  private inMessage = false;
  private msgBinary = false;
  private msgCompressed = false;
  private msgBytes = 0;
  private fragments = 0;
  private frameFin = false;
  private frameOpcode = 0;
  // Allocated on first use: most connections never see a fragmented or split message.
  private utf8Validator: Utf8Validator | null = null;
  private readonly validateUtf8: ((bytes: Uint8Array) => boolean) | undefined;
  private messageAcc: ByteAccumulator | null = null;
  private frameAcc: ByteAccumulator | null = null;
  private controlBuf: Uint8Array | null = null;
  private controlLength = 0;

  // Outbound.
  private outFragmenting = false;
  private outCompressing = false;
  private outBusy = false;
  private readonly outQueue: (() => void)[] = [];
  /** Payload bytes accepted by send/sendFrame but not yet handed to onWrite (compressing, queued). */
  private heldBytes = 0;
  private maskPool: Uint8Array | null = null;
  private maskAt = 0;

  // Closing.
  /** Our Close frame is queued or written: nothing more may be sent. */
  private closeSent = false;
  /** Our Close frame was handed to onWrite. */
  private closeWritten = false;
  private closeReceived = false;
  /** receiveEof() arrived while the parser waited for the codec: handle it once drained. */
  private eofPending = false;
  private peerCode = 1005;
  private peerReason = "";
  private failure: ProtocolError | null = null;

  constructor(options: ConnectionOptions, handler: ConnectionHandler) {
    this.handler = handler;
    this.isClient = options.role === "client";
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.alloc = options.alloc ?? ((n) => new Uint8Array(n));
    this.random = options.random ?? defaultRandom;
    this.fastUtf8 = options.validateUtf8 ?? ((b) => isValidUtf8(b));
    this.autoPong = options.autoPong ?? true;
    this.validateUtf8 = options.validateUtf8;
    this.parser = new FrameParser(!this.isClient, this);
    this.parser.onError = (error) => this.failPeer(error);
  }

  private get utf8(): Utf8Validator {
    if (this.utf8Validator === null) this.utf8Validator = new Utf8Validator(this.validateUtf8);
    return this.utf8Validator;
  }

  private get message(): ByteAccumulator {
    if (this.messageAcc === null) this.messageAcc = new ByteAccumulator(this.alloc);
    return this.messageAcc;
  }

  private get frameBuffer(): ByteAccumulator {
    if (this.frameAcc === null) this.frameAcc = new ByteAccumulator(this.alloc);
    return this.frameAcc;
  }

  get state(): ReadyState {
    return this.readyState;
  }

  /** True while inbound parsing waits for the codec: the I/O layer may pause reading. */
  get isReceivePaused(): boolean {
    return this.parser.isPaused;
  }

  /** How the connection ended (meaningful once CLOSED). */
  get closeStatus(): CloseStatus {
    if (this.closeReceived && this.closeWritten && this.failure === null) {
      return { code: this.peerCode, reason: this.peerReason, wasClean: true };
    }
    if (this.failure !== null) {
      return { code: this.failure.closeCode, reason: this.failure.message, wasClean: false };
    }
    return { code: 1006, reason: "", wasClean: false };
  }

  /** The opening handshake succeeded: start framing. `codec` when permessage-deflate was agreed. */
  open(codec: MessageCodec | null = null): void {
    if (this.readyState !== ReadyState.CONNECTING) {
      throw new StateError("WS_ERR_NOT_OPEN", "open() called twice");
    }
    this.codec = codec;
    this.parser.rsv1Allowed = codec !== null;
    this.readyState = ReadyState.OPEN;
  }

  // ---- bytes in ---------------------------------------------------------------------------

  /** Feed bytes from the transport. Takes ownership of `chunk` (it may be unmasked in place). */
  receiveData(chunk: Uint8Array): void {
    if (this.readyState === ReadyState.CONNECTING) {
      throw new StateError("WS_ERR_NOT_OPEN", "receiveData() before open()");
    }
    if (this.readyState === ReadyState.CLOSED || this.eofPending) return;
    this.parser.push(chunk);
  }

  /**
   * The transport reached end of input. Frames received before it that wait behind a pending
   * decompression are processed first, in order; then, without a Close frame from the peer, the
   * connection is CLOSED abnormally (1006). After the peer's Close the end of input changes
   * nothing: the handshake completes once our Close frame is written.
   */
  receiveEof(): void {
    if (this.readyState === ReadyState.CLOSED) return;
    if (this.readyState !== ReadyState.CONNECTING && this.parser.isPaused) {
      this.eofPending = true;
      return;
    }
    this.endInput();
  }

  /**
   * The transport is gone (or is being destroyed): stop now. Input not processed yet and output
   * not written yet are discarded; the connection is CLOSED (1006 unless the closing handshake
   * had completed).
   */
  abort(): void {
    if (this.readyState === ReadyState.CLOSED) return;
    this.parser.stop();
    this.finish();
    this.handler.onClosed?.();
  }

  // ---- frame sink (called by the parser) ----------------------------------------------------

  onFrameHeader(
    fin: boolean,
    rsv1: boolean,
    opcode: number,
    length: number,
  ): ProtocolError | undefined {
    this.frameFin = fin;
    this.frameOpcode = opcode;
    if (opcode >= Opcode.CLOSE) {
      this.controlLength = 0;
      return undefined;
    }
    if (opcode === Opcode.CONTINUATION) {
      if (!this.inMessage) {
        return new ProtocolError(
          "WS_ERR_UNEXPECTED_CONTINUATION",
          1002,
          "continuation frame without a message in progress",
        );
      }
    } else {
      if (this.inMessage) {
        return new ProtocolError(
          "WS_ERR_EXPECTED_CONTINUATION",
          1002,
          "new data frame inside a fragmented message",
        );
      }
      this.inMessage = true;
      this.msgBinary = opcode === Opcode.BINARY;
      this.msgCompressed = rsv1;
      this.msgBytes = 0;
      this.fragments = 0;
      if (!this.msgBinary) this.utf8Validator?.reset();
    }
    if (++this.fragments > this.limits.maxFragments) {
      return new ProtocolError(
        "WS_ERR_TOO_MANY_FRAGMENTS",
        1008,
        `message split into more than ${this.limits.maxFragments} frames`,
      );
    }
    const max = this.limits.maxMessageBytes;
    if (this.msgCompressed) {
      // Compressed frames are inflated one by one and the output is bounded by the codec, so
      // only a single frame's compressed bytes are buffered: bound those. Stored blocks may make
      // the input slightly larger than the output, hence the small margin.
      if (length > max + (max >>> 10) + 64) return tooBig(max);
    } else {
      this.msgBytes += length;
      if (this.msgBytes > max) return tooBig(max);
    }
    // Nothing is reserved up front: buffers grow as bytes arrive, so memory follows what the
    // peer actually sent, not what a header announced.
    return undefined;
  }

  onFramePayload(data: Uint8Array, last: boolean, whole: boolean): SinkResult {
    if (this.frameOpcode >= Opcode.CLOSE) {
      if (whole) return this.onControl(this.frameOpcode, data);
      if (this.controlBuf === null) this.controlBuf = new Uint8Array(MAX_CONTROL_PAYLOAD);
      const buf = this.controlBuf;
      buf.set(data, this.controlLength);
      this.controlLength += data.length;
      return last ? this.onControl(this.frameOpcode, buf.slice(0, this.controlLength)) : CONTINUE;
    }
    if (this.msgCompressed) {
      if (whole) return this.inflate(data, this.frameFin);
      this.frameBuffer.append(data, this.limits.maxMessageBytes * 2);
      return last ? this.inflate(this.frameBuffer.take(), this.frameFin) : CONTINUE;
    }
    const complete = last && this.frameFin;
    if (whole && complete && this.fragments === 1) {
      // Unfragmented message in one piece: validate once, deliver the view without copying.
      if (!this.msgBinary && !isShortAscii(data) && !this.fastUtf8(data)) return invalidUtf8();
      return this.deliver(data);
    }
    if (!this.msgBinary && !this.utf8.update(data)) return invalidUtf8();
    this.message.append(data, this.limits.maxMessageBytes);
    if (!complete) return CONTINUE;
    if (!this.msgBinary && !this.utf8.isComplete()) return invalidUtf8();
    return this.deliver(this.message.take());
  }

  private inflate(data: Uint8Array, fin: boolean): SinkResult {
    const codec = this.codec;
    if (codec === null) return new ProtocolError("WS_ERR_INTERNAL", 1011, "no codec");
    let sync = true;
    let result: SinkResult = PAUSE;
    codec.decompress(data, fin, this.limits.maxMessageBytes - this.msgBytes, (error, out) => {
      if (this.readyState === ReadyState.CLOSED) return;
      const r = this.inflated(error, out, fin);
      if (sync) {
        result = r;
      } else if (r === CONTINUE) {
        this.parser.resume();
        if (this.eofPending && !this.parser.isPaused) this.endInput();
      } else if (r instanceof ProtocolError) {
        this.parser.stop();
        this.failPeer(r);
      }
    });
    sync = false;
    return result;
  }

  private inflated(error: Error | null, out: Uint8Array | null, fin: boolean): SinkResult {
    if (error !== null || out === null) {
      if (error instanceof CodecLimitError) return tooBig(this.limits.maxMessageBytes);
      return new ProtocolError("WS_ERR_INFLATE_FAILED", 1007, "invalid compressed data");
    }
    this.msgBytes += out.length;
    if (this.msgBytes > this.limits.maxMessageBytes) return tooBig(this.limits.maxMessageBytes);
    if (!this.msgBinary && !this.utf8.update(out)) return invalidUtf8();
    if (!fin) {
      this.message.append(out, this.limits.maxMessageBytes);
      return CONTINUE;
    }
    if (!this.msgBinary && !this.utf8.isComplete()) return invalidUtf8();
    if (this.messageAcc === null || this.messageAcc.length === 0) return this.deliver(out);
    this.message.append(out, this.limits.maxMessageBytes);
    return this.deliver(this.message.take());
  }

  private deliver(data: Uint8Array): SinkResult {
    this.inMessage = false;
    this.handler.onMessage(data, this.msgBinary);
    return CONTINUE;
  }

  private onControl(opcode: number, data: Uint8Array): SinkResult {
    if (opcode === Opcode.PING) {
      if (this.autoPong && this.canSend())
        this.enqueue(() => this.writeFrame(Opcode.PONG, data.slice(), true, false));
      this.handler.onPing(data);
      return CONTINUE;
    }
    if (opcode === Opcode.PONG) {
      this.handler.onPong(data);
      return CONTINUE;
    }
    const close = decodeClosePayload(data);
    if (close instanceof ProtocolError) return close;
    this.closeReceived = true;
    this.peerCode = close.code;
    this.peerReason = close.reason;
    this.parser.stop();
    if (!this.closeSent) {
      // §5.5.1: reply with a Close frame, echoing the status code (and reason) received. It goes
      // after what is still queued (messages in the compressor), and it is the last frame.
      const payload =
        close.code === 1005 ? new Uint8Array(0) : encodeClosePayload(close.code, close.reason);
      this.readyState = ReadyState.CLOSING;
      this.queueClose(payload);
    } else if (this.closeWritten) {
      this.completeClose();
    }
    // Otherwise our Close is still queued behind the compressor: it completes the handshake.
    return CONTINUE;
  }

  /** Queue our Close frame (the last one); once written, a Close received completes the handshake. */
  private queueClose(payload: Uint8Array): void {
    this.closeSent = true;
    this.enqueue(() => {
      this.writeFrame(Opcode.CLOSE, payload, true, false);
      this.closeWritten = true;
      if (this.closeReceived) this.completeClose();
    });
  }

  /** Both Close frames were exchanged. */
  private completeClose(): void {
    if (this.readyState === ReadyState.CLOSED) return;
    this.finish();
    this.handler.onCloseFrame(this.peerCode, this.peerReason);
    this.handler.onClosed?.();
  }

  // ---- intents ------------------------------------------------------------------------------

  /** Send a text message (UTF-8 bytes must be valid; strings are encoded here). */
  sendText(data: string | Uint8Array, options?: SendOptions): void {
    this.send(typeof data === "string" ? encoder.encode(data) : data, false, options);
  }

  sendBinary(data: Uint8Array, options?: SendOptions): void {
    this.send(data, true, options);
  }

  send(data: Uint8Array, binary: boolean, options?: SendOptions): void {
    this.assertCanSend();
    const fin = options?.fin ?? true;
    const first = !this.outFragmenting;
    const opcode = first ? (binary ? Opcode.BINARY : Opcode.TEXT) : Opcode.CONTINUATION;
    if (first) this.outCompressing = this.codec !== null && (options?.compress ?? true);
    this.outFragmenting = !fin;
    if (!this.outCompressing) {
      if (this.outBusy) this.hold(data.length, () => this.writeFrame(opcode, data, fin, false));
      else this.writeFrame(opcode, data, fin, false);
      return;
    }
    const codec = this.codec as MessageCodec;
    this.heldBytes += data.length;
    this.enqueue(() => {
      this.outBusy = true;
      codec.compress(data, fin, (error, out) => {
        this.outBusy = false;
        // finish() already forgot every held byte.
        if (this.readyState !== ReadyState.CLOSED) this.heldBytes -= data.length;
        if (error !== null || out === null) {
          this.fail(1011, "compression failed");
        } else if (this.readyState !== ReadyState.CLOSED) {
          this.writeFrame(opcode, out, fin, first);
        }
        this.runQueue();
      });
    });
  }

  /**
   * Write a frame that was encoded once for many connections (a broadcast). It must be an
   * unfragmented data frame encoded for this role (unmasked from a server).
   */
  sendFrame(frame: Uint8Array): void {
    this.assertCanSend();
    if (this.outFragmenting) {
      throw new StateError("WS_ERR_INVALID_ARGUMENT", "a fragmented message is in progress");
    }
    if (this.outBusy) this.hold(frame.length, () => this.handler.onWrite(frame));
    else this.handler.onWrite(frame);
  }

  /**
   * Bytes accepted by send()/sendFrame() that wait in this connection: in the compressor or
   * queued behind it. The I/O layer adds them to what its socket holds (bufferedAmount), so a
   * slow-consumer policy also sees data that has not reached the socket yet.
   */
  get bufferedBytes(): number {
    return this.heldBytes;
  }

  ping(data: Uint8Array = new Uint8Array(0)): void {
    this.sendControl(Opcode.PING, data);
  }

  pong(data: Uint8Array = new Uint8Array(0)): void {
    this.sendControl(Opcode.PONG, data);
  }

  /**
   * Start the closing handshake (§7.1.2). Without a code the Close frame is empty (the peer sees
   * 1005). Calling it again once a Close frame was sent does nothing.
   */
  close(code?: number, reason = ""): void {
    if (this.readyState === ReadyState.CONNECTING) {
      throw new StateError("WS_ERR_NOT_OPEN", "close() before open()");
    }
    if (this.closeSent || this.readyState === ReadyState.CLOSED) return;
    const payload = encodeClosePayload(code, reason);
    this.readyState = ReadyState.CLOSING;
    this.queueClose(payload);
  }

  /**
   * Fail the connection from the local side (§7.1.7), e.g. a policy violation decided by the
   * application: send a Close frame with `code` if none was sent, then stop processing input.
   */
  fail(code: number, reason = ""): void {
    if (this.readyState === ReadyState.CLOSED) return;
    this.failure ??= new ProtocolError("WS_ERR_INTERNAL", code, reason);
    this.stopWithClose(code, reason);
    this.handler.onClosed?.();
  }

  // ---- internals ----------------------------------------------------------------------------

  private failPeer(error: ProtocolError): void {
    if (this.readyState === ReadyState.CLOSED) return;
    this.failure = error;
    this.stopWithClose(error.closeCode, error.message);
    this.handler.onError(error);
    this.handler.onClosed?.();
  }

  /** Write a Close frame with `code` now (unless one was sent), then stop: §7.1.7. */
  private stopWithClose(code: number, reason: string): void {
    if (!this.closeSent && this.readyState !== ReadyState.CONNECTING) {
      const payload = encodeClosePayload(code, truncateReason(reason));
      this.closeSent = true;
      this.writeFrame(Opcode.CLOSE, payload, true, false);
      this.closeWritten = true;
    }
    this.parser.stop();
    this.finish();
  }

  /** End of input, after every frame received before it was processed. */
  private endInput(): void {
    this.eofPending = false;
    this.parser.stop();
    // After the peer's Close the handshake completes when our Close is written.
    if (this.readyState === ReadyState.CLOSED || this.closeReceived) return;
    this.finish();
    this.handler.onClosed?.();
  }

  /** CLOSED: drop buffered input and queued output. Callers notify the handler. */
  private finish(): void {
    this.readyState = ReadyState.CLOSED;
    this.eofPending = false;
    this.inMessage = false;
    this.messageAcc?.clear();
    this.frameAcc?.clear();
    this.outQueue.length = 0;
    this.heldBytes = 0;
  }

  private canSend(): boolean {
    return this.readyState === ReadyState.OPEN && !this.closeSent;
  }

  private assertCanSend(): void {
    if (!this.canSend()) {
      throw new StateError(
        "WS_ERR_NOT_OPEN",
        `cannot send: connection is ${stateName(this.readyState)}`,
      );
    }
  }

  private sendControl(opcode: number, data: Uint8Array): void {
    this.assertCanSend();
    if (data.length > MAX_CONTROL_PAYLOAD) {
      throw new StateError(
        "WS_ERR_CONTROL_PAYLOAD_TOO_LONG",
        "control frame payload exceeds 125 bytes",
      );
    }
    const copy = data.slice();
    this.enqueue(() => this.writeFrame(opcode, copy, true, false));
  }

  /** Queue `op` behind the compressor, counting its `size` bytes as held until it runs. */
  private hold(size: number, op: () => void): void {
    this.heldBytes += size;
    this.outQueue.push(() => {
      this.heldBytes -= size;
      op();
    });
  }

  private enqueue(op: () => void): void {
    if (this.outBusy) this.outQueue.push(op);
    else op();
  }

  private runQueue(): void {
    while (!this.outBusy) {
      const op = this.outQueue.shift();
      if (op === undefined) return;
      op();
    }
  }

  private writeFrame(opcode: number, payload: Uint8Array, fin: boolean, rsv1: boolean): void {
    if (!this.isClient && payload.length <= COPY_THRESHOLD) {
      this.handler.onWrite(encodeFrame({ opcode, payload, fin, rsv1 }, this.alloc));
      return;
    }
    if (!this.isClient) {
      for (const part of encodeFrameParts({ opcode, payload, fin, rsv1 }, this.alloc)) {
        this.handler.onWrite(part);
      }
      return;
    }
    this.handler.onWrite(
      encodeFrame({ opcode, payload, fin, rsv1, mask: this.nextMask() }, this.alloc),
    );
  }

  private nextMask(): Uint8Array {
    if (this.maskPool === null || this.maskAt >= this.maskPool.length) {
      this.maskPool = new Uint8Array(MASK_POOL_KEYS * 4);
      this.random(this.maskPool);
      this.maskAt = 0;
    }
    const key = this.maskPool.subarray(this.maskAt, this.maskAt + 4);
    this.maskAt += 4;
    return key;
  }
}

/** Short all-ASCII text is valid UTF-8: checked here, cheaper than a call into native code. */
function isShortAscii(data: Uint8Array): boolean {
  const n = data.length;
  if (n > 64) return false;
  let acc = 0;
  for (let i = 0; i < n; i++) acc |= data[i]!;
  return acc < 0x80;
}

function tooBig(max: number): ProtocolError {
  return new ProtocolError("WS_ERR_MESSAGE_TOO_BIG", 1009, `message exceeds ${max} bytes`);
}

function invalidUtf8(): ProtocolError {
  return new ProtocolError("WS_ERR_INVALID_UTF8", 1007, "invalid UTF-8 in text message");
}

/** Keep a (generated, ASCII) failure reason within the 123 bytes a Close frame allows. */
function truncateReason(reason: string): string {
  let out = reason.length > 123 ? reason.slice(0, 123) : reason;
  while (encoder.encode(out).length > 123) out = out.slice(0, -1);
  return out;
}

function stateName(state: ReadyState): string {
  return ["CONNECTING", "OPEN", "CLOSING", "CLOSED"][state] ?? "UNKNOWN";
}
