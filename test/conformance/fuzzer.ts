/**
 * The fuzzing endpoint: one WebSocket connection over a raw net.Socket, after the opening
 * handshake. Case scripts use it to put arbitrary bytes on the wire (frames with any header,
 * chopped writes, pauses), and it records what the peer sends back: messages, pings, pongs, the
 * peer's Close frame, who closed first, how TCP ended, and every protocol violation by the peer.
 *
 * As in Autobahn, only Close frames sent through sendClose() enter the closing handshake; a Close
 * frame sent raw with sendFrame() is just bytes (cases 3.7 and 7.1.2 rely on that).
 *
 * As a client (testing a server) the fuzzer masks its frames and expects unmasked frames; as a
 * server (testing a client) the reverse. After the closing handshake the fuzzing server closes
 * TCP; the fuzzing client waits for the server to do it (RFC 6455 §7.1.1).
 */
import type { Socket } from "node:net";
import { setTimeout as sleep, setImmediate as tick } from "node:timers/promises";
import {
  type AcceptRule,
  Compressor,
  Decompressor,
  type DeflateParams,
  type Offer,
} from "./deflate.js";
import { describeEvent, type Event, type Observed, type ScriptOutcome } from "./model.js";
import {
  bytes,
  encodeFrame,
  FrameReader,
  type FrameSpec,
  OP,
  PartialFrame,
  type WireFrame,
} from "./wire.js";

/** permessage-deflate setup of a case: offers of a fuzzing client / answer of a fuzzing server. */
export interface DeflateSetup {
  /** What the fuzzing client offers, in order (server role); the first one also configures our client (client role). */
  readonly offers: readonly Offer[];
  /** How the fuzzing server answers (client role). */
  readonly accept: readonly AcceptRule[];
}

export interface SendOptions {
  /** Write the bytes in pieces of this many octets, one event-loop turn apart. */
  readonly chop?: number;
  /** Write the frame on its own and pause briefly afterwards (Autobahn's sync=True). */
  readonly sync?: boolean;
}

const MAX_TRACE = 60;
const textDecoder = new TextDecoder("utf-8", { fatal: true });

function isUtf8(data: Buffer): boolean {
  try {
    textDecoder.decode(data);
    return true;
  } catch {
    return false;
  }
}

/** Close codes a peer may put on the wire (RFC 6455 §7.4, IANA registry). */
export function wireCloseCodeValid(code: number): boolean {
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return code >= 3000 && code <= 4999;
}

export class Fuzzer {
  /** "client": masks what it sends and tests a server. */
  readonly side: "client" | "server";
  readonly events: Event[] = [];
  /** Set by scripts that judge the behaviour themselves. */
  outcome: ScriptOutcome | null = null;
  /** Free-form notes the script adds to the report (timings, ratios). */
  readonly notes: string[] = [];
  opened = false;
  handshake = "";
  extensions = "";
  deflate: DeflateParams | null = null;
  /** Largest message the fuzzer buffers from the peer. */
  maxMessage = 64 * 1024 * 1024;
  /** Called after every received message, ping or pong. */
  onEvent: (() => void) | null = null;

  private socket: Socket | null = null;
  private readonly reader = new FrameReader();
  private readonly violations: string[] = [];
  private readonly trace: string[] = [];
  private traceDropped = 0;
  private closeSent: { code: number | null; reason: Buffer } | null = null;
  private closeReceived: { code: number | null; reason: Buffer } | null = null;
  private closeSentFirst = false;
  private killedByFuzzer = false;
  private droppedByClient = false;
  private tcpReset = false;
  private peerEnded = false;
  private tcpClosed = false;
  private closedPromise: Promise<void> = Promise.resolve();
  private closeHandshakeTimer: NodeJS.Timeout | null = null;
  private bytesSent = 0;
  private bytesReceived = 0;
  private peerMessages = 0;
  private peerCompressed = 0;
  private peerWireBytes = 0;
  private peerPayloadBytes = 0;
  // Message in progress.
  private msgOpcode = -1;
  private msgCompressed = false;
  private msgParts: Buffer[] = [];
  private msgLength = 0;
  // Received messages and control frames are handled in order through this chain (inflation is
  // asynchronous).
  private chain: Promise<void> = Promise.resolve();
  private compressor: Compressor | null = null;
  private decompressor: Decompressor | null = null;
  private messageWaiters: ((e: Event | null) => void)[] = [];
  private messageQueue: Event[] = [];

  constructor(side: "client" | "server") {
    this.side = side;
  }

  /** Start framing over `socket`; `rest` are bytes that came after the handshake head. */
  attach(socket: Socket, rest: Buffer, deflate: DeflateParams | null, compressionLevel = 6): void {
    this.socket = socket;
    this.opened = true;
    this.deflate = deflate;
    if (deflate !== null) {
      const own = this.side === "client" ? "client" : "server";
      const peer = own === "client" ? "server" : "client";
      this.compressor = new Compressor(
        deflate[`${own}MaxWindowBits`],
        deflate[`${own}NoContextTakeover`],
        compressionLevel,
      );
      this.decompressor = new Decompressor(
        deflate[`${peer}MaxWindowBits`],
        deflate[`${peer}NoContextTakeover`],
      );
    }
    socket.setNoDelay(true);
    this.closedPromise = new Promise<void>((resolve) => {
      socket.once("close", () => {
        this.tcpClosed = true;
        if (this.closeHandshakeTimer !== null) clearTimeout(this.closeHandshakeTimer);
        for (const w of this.messageWaiters.splice(0)) w(null);
        this.note("TCP closed");
        resolve();
      });
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNRESET") this.tcpReset = true;
      this.note(`socket error ${error.code ?? error.message}`);
    });
    socket.on("end", () => {
      this.peerEnded = true;
      this.note("peer closed its side of TCP");
    });
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    if (rest.length > 0) this.receive(rest);
    socket.resume();
  }

  // ---- state seen by scripts ----------------------------------------------------------------

  /** OPEN from the fuzzer's view: no Close sent or received, TCP up, no violation. */
  get open(): boolean {
    return (
      this.socket !== null &&
      !this.tcpClosed &&
      this.closeSent === null &&
      this.closeReceived === null &&
      this.violations.length === 0
    );
  }

  get ended(): boolean {
    return this.tcpClosed;
  }

  /** Resolves when the TCP connection is closed. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  /** Resolves when TCP is closed and every received frame has been handled (inflated, recorded). */
  async settled(): Promise<void> {
    await this.closedPromise;
    let chain: Promise<void>;
    do {
      chain = this.chain;
      await chain;
    } while (chain !== this.chain);
    this.compressor?.close();
    this.decompressor?.close();
  }

  get peerCloseCode(): number | null {
    return this.closeReceived?.code ?? null;
  }

  // ---- sending ------------------------------------------------------------------------------

  /** Send one frame (masked when the fuzzer is a client). Raw: never changes the close state. */
  async sendFrame(spec: FrameSpec, options: SendOptions = {}): Promise<void> {
    const frame = encodeFrame(spec, this.side === "client");
    this.note(`send ${frameSummary(spec)}${options.chop ? ` in chops of ${options.chop}` : ""}`);
    await this.write(frame, options);
  }

  /** Send a message split into frames of `fragmentSize` (0 = one frame), uncompressed. */
  async sendMessage(
    payload: Buffer | string,
    binary: boolean,
    options: SendOptions & { fragmentSize?: number } = {},
  ): Promise<void> {
    const data = bytes(payload);
    const size = options.fragmentSize ?? 0;
    const opcode = binary ? OP.BINARY : OP.TEXT;
    if (size <= 0 || data.length <= size) {
      await this.sendFrame({ opcode, payload: data }, options);
      return;
    }
    const frames: Buffer[] = [];
    for (let at = 0; at < data.length; at += size) {
      const part = data.subarray(at, Math.min(at + size, data.length));
      frames.push(
        encodeFrame(
          {
            opcode: at === 0 ? opcode : OP.CONTINUATION,
            payload: part,
            fin: at + size >= data.length,
          },
          this.side === "client",
        ),
      );
    }
    this.note(
      `send ${binary ? "binary" : "text"} message of ${data.length} bytes in ${frames.length} frames`,
    );
    if (options.chop !== undefined || options.sync === true) {
      for (const frame of frames) await this.write(frame, options);
    } else {
      await this.write(Buffer.concat(frames));
    }
  }

  /**
   * Send a message compressed with the negotiated permessage-deflate, the compressed bytes split
   * into frames of `autoFragmentSize` (0 = one frame). Returns the compressed size.
   */
  async sendCompressed(payload: Buffer, binary: boolean, autoFragmentSize = 0): Promise<number> {
    if (this.compressor === null) throw new Error("permessage-deflate was not negotiated");
    const compressed = await this.compressor.compress(payload);
    const opcode = binary ? OP.BINARY : OP.TEXT;
    const size = autoFragmentSize > 0 ? autoFragmentSize : compressed.length || 1;
    const frames: Buffer[] = [];
    let at = 0;
    do {
      const part = compressed.subarray(at, Math.min(at + size, compressed.length));
      frames.push(
        encodeFrame(
          {
            opcode: at === 0 ? opcode : OP.CONTINUATION,
            payload: part,
            fin: at + size >= compressed.length,
            rsv: at === 0 ? 4 : 0,
          },
          this.side === "client",
        ),
      );
      at += size;
    } while (at < compressed.length);
    await this.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
    return compressed.length;
  }

  /** Start a frame whose payload is sent later in parts (6.4.3, 6.4.4). */
  beginFrame(opcode: number, length: number, fin = true): PartialFrame {
    const frame = new PartialFrame(opcode, length, fin, this.side === "client");
    this.note(`send header of a ${length}-byte frame, opcode ${opcode}`);
    this.writeNow(frame.header);
    return frame;
  }

  /** Send the next part of a frame started with beginFrame. */
  sendFramePart(frame: PartialFrame, data: Uint8Array | string): void {
    const part = frame.part(data);
    this.note(`send ${part.length} payload bytes`);
    this.writeNow(part);
  }

  /**
   * Send a Close frame that starts (or answers) the closing handshake: `code` null for an empty
   * body; `reason` as bytes so invalid UTF-8 can be sent.
   */
  async sendClose(code: number | null = 1000, reason: Buffer | string = ""): Promise<void> {
    if (this.closeSent !== null || this.tcpClosed) return;
    const r = bytes(reason);
    let body: Buffer;
    if (code === null) body = r;
    else {
      body = Buffer.alloc(2 + r.length);
      body.writeUInt16BE(code, 0);
      r.copy(body, 2);
    }
    this.closeSent = { code, reason: r };
    if (this.closeReceived === null) this.closeSentFirst = true;
    this.note(
      `send Close ${code ?? "(no code)"}${r.length > 0 ? ` with ${r.length}-byte reason` : ""}`,
    );
    await this.write(encodeFrame({ opcode: OP.CLOSE, payload: body }, this.side === "client"));
    this.afterCloseFrames();
  }

  /** Wait `ms`, or less if the connection ends first. */
  async wait(ms: number): Promise<void> {
    if (this.tcpClosed) return;
    const ac = new AbortController();
    const timer = sleep(ms, undefined, { signal: ac.signal }).catch(() => {});
    await Promise.race([timer, this.closedPromise]);
    ac.abort();
  }

  /** Record a marker event (Autobahn's ("timeout", label) in 6.4.x). */
  mark(label: string): void {
    this.events.push({ kind: "marker", label });
    this.note(`marker ${label}`);
  }

  /** Wait until the connection ends; after `ms` drop TCP (the fuzzer gives up). */
  async killAfter(ms: number): Promise<void> {
    await this.wait(ms);
    if (!this.tcpClosed) this.kill(`no end after ${ms} ms`);
    await this.closedPromise;
  }

  /** After `ms`, start the closing handshake (1000) if nothing ended the connection; wait for the end. */
  async closeAfter(ms: number): Promise<void> {
    await this.wait(ms);
    if (!this.tcpClosed && this.closeSent === null) await this.sendClose(1000);
    await this.closedPromise;
  }

  /** Drop the TCP connection now. */
  kill(why: string): void {
    if (this.tcpClosed || this.socket === null) return;
    if (this.closeSent === null || this.closeReceived === null) this.killedByFuzzer = true;
    this.note(`fuzzer drops TCP: ${why}`);
    this.socket.destroy();
  }

  /** The next message from the peer (null when the connection ended first). */
  nextMessage(): Promise<Event | null> {
    const queued = this.messageQueue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.tcpClosed) return Promise.resolve(null);
    return new Promise((resolve) => this.messageWaiters.push(resolve));
  }

  note(line: string): void {
    if (this.trace.length < MAX_TRACE) this.trace.push(line);
    else this.traceDropped++;
  }

  // ---- receiving ----------------------------------------------------------------------------

  private receive(chunk: Buffer): void {
    if (this.tcpClosed) return;
    this.bytesReceived += chunk.length;
    const frames = this.reader.push(chunk);
    if (typeof frames === "string") {
      this.violation(frames);
      return;
    }
    for (const frame of frames) {
      if (this.violations.length > 0 || this.tcpClosed) return;
      this.onFrame(frame);
    }
  }

  private onFrame(frame: WireFrame): void {
    const expectMasked = this.side === "server";
    if (this.closeReceived !== null) {
      return this.violation(`frame (opcode ${frame.opcode}) after the peer's Close frame`);
    }
    if (frame.masked !== expectMasked) {
      return this.violation(
        expectMasked ? "unmasked frame from a client" : "masked frame from a server",
      );
    }
    if (frame.lengthMsbSet) return this.violation("64-bit payload length with the top bit set");
    if ((frame.rsv & 3) !== 0) return this.violation(`RSV2/RSV3 set (rsv=${frame.rsv})`);
    const isControl = frame.opcode >= 8;
    const known = [0, 1, 2, 8, 9, 10].includes(frame.opcode);
    if (!known) return this.violation(`reserved opcode ${frame.opcode}`);
    if ((frame.rsv & 4) !== 0) {
      const allowed =
        this.deflate !== null && (frame.opcode === OP.TEXT || frame.opcode === OP.BINARY);
      if (!allowed)
        return this.violation(
          `RSV1 set on opcode ${frame.opcode} without permessage-deflate for it`,
        );
    }
    if (isControl) {
      if (!frame.fin) return this.violation(`fragmented control frame (opcode ${frame.opcode})`);
      if (frame.payload.length > 125) return this.violation("control frame payload over 125 bytes");
      return this.onControl(frame);
    }
    if (frame.opcode === OP.CONTINUATION) {
      if (this.msgOpcode < 0)
        return this.violation("continuation frame without a message in progress");
    } else {
      if (this.msgOpcode >= 0) return this.violation("new data frame inside a fragmented message");
      this.msgOpcode = frame.opcode;
      this.msgCompressed = (frame.rsv & 4) !== 0;
      this.msgParts = [];
      this.msgLength = 0;
    }
    this.msgLength += frame.payload.length;
    if (this.msgLength > this.maxMessage)
      return this.violation("message larger than the fuzzer buffers");
    this.msgParts.push(frame.payload);
    if (!frame.fin) return;
    const binary = this.msgOpcode === OP.BINARY;
    const compressed = this.msgCompressed;
    const parts = this.msgParts;
    const length = this.msgLength;
    this.msgOpcode = -1;
    this.msgParts = [];
    this.enqueue(async () => {
      let data = parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
      this.peerMessages++;
      this.peerWireBytes += data.length;
      if (compressed) this.peerCompressed++;
      if (compressed) {
        try {
          data = await this.decompressor!.decompress(data, this.maxMessage);
        } catch (error) {
          this.violation(`could not inflate a compressed message: ${(error as Error).message}`);
          return;
        }
      }
      this.peerPayloadBytes += data.length;
      if (!binary && !isUtf8(data)) {
        this.violation("text message that is not valid UTF-8");
        return;
      }
      this.record({ kind: "message", binary, data });
    });
  }

  private onControl(frame: WireFrame): void {
    const payload = frame.payload;
    if (frame.opcode === OP.PING) {
      this.enqueue(async () => {
        this.record({ kind: "ping", data: payload });
        if (this.open)
          await this.write(encodeFrame({ opcode: OP.PONG, payload }, this.side === "client"));
      });
    } else if (frame.opcode === OP.PONG) {
      this.enqueue(async () => this.record({ kind: "pong", data: payload }));
    } else {
      // Close: validate now (ordering: frames after it are violations at once).
      let code: number | null = null;
      if (payload.length === 1) return this.violation("Close frame with a 1-byte body");
      if (payload.length >= 2) {
        code = payload.readUInt16BE(0);
        if (!wireCloseCodeValid(code))
          return this.violation(`Close frame with invalid code ${code}`);
        if (!isUtf8(payload.subarray(2)))
          return this.violation("Close reason that is not valid UTF-8");
      }
      this.closeReceived = { code, reason: payload.subarray(2) };
      this.enqueue(async () => {
        this.note(
          `received Close ${code ?? "(no code)"}${payload.length > 2 ? ` "${payload.subarray(2).toString()}"` : ""}`,
        );
        if (this.closeSent === null) {
          // Answer with the peer's code (RFC 6455 §5.5.1).
          await this.sendClose(code, "");
        } else {
          this.afterCloseFrames();
        }
      });
    }
  }

  private record(event: Event): void {
    this.events.push(event);
    this.note(`received ${describeEvent(event)}`);
    if (event.kind === "message") {
      const waiter = this.messageWaiters.shift();
      if (waiter !== undefined) waiter(event);
      else this.messageQueue.push(event);
    }
    this.onEvent?.();
  }

  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((error: unknown) => {
      this.harnessError((error as Error).message);
    });
  }

  /** The harness itself went wrong (a script threw): the case must not pass. */
  harnessError(what: string): void {
    this.violation(`harness error: ${what}`);
  }

  private violation(what: string): void {
    this.violations.push(what);
    this.note(`VIOLATION: ${what}`);
    if (this.socket !== null && !this.tcpClosed) this.socket.destroy();
  }

  /** Both Close frames exchanged (or ours sent): end TCP as the RFC says for each side. */
  private afterCloseFrames(): void {
    if (this.closeSent === null || this.closeReceived === null || this.tcpClosed) return;
    const socket = this.socket!;
    if (this.side === "server") {
      // The server closes TCP first (RFC 6455 §7.1.1).
      socket.end();
      this.closeHandshakeTimer = setTimeout(() => socket.destroy(), 2000);
    } else {
      // The client waits for the server to close TCP, then gives up.
      this.closeHandshakeTimer = setTimeout(() => {
        if (!this.tcpClosed && !this.peerEnded) {
          this.droppedByClient = true;
          this.note("the server did not close TCP within 2 s of the closing handshake");
        }
        socket.destroy();
      }, 2000);
    }
  }

  // ---- writing ------------------------------------------------------------------------------

  private writeNow(data: Buffer): boolean {
    const socket = this.socket;
    if (socket === null || this.tcpClosed || socket.destroyed || !socket.writable) return true;
    this.bytesSent += data.length;
    return socket.write(data);
  }

  private async write(data: Buffer, options: SendOptions = {}): Promise<void> {
    const chop = options.chop ?? 0;
    if (chop > 0) {
      for (let at = 0; at < data.length; at += chop) {
        if (this.tcpClosed) return;
        if (!this.writeNow(data.subarray(at, Math.min(at + chop, data.length)))) await this.drain();
        await tick();
      }
    } else if (!this.writeNow(data)) {
      await this.drain();
    }
    if (options.sync === true) await sleep(2);
  }

  private drain(): Promise<void> {
    const socket = this.socket;
    if (socket === null || this.tcpClosed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        socket.off("drain", done);
        socket.off("close", done);
        resolve();
      };
      socket.on("drain", done);
      socket.on("close", done);
    });
  }

  // ---- observation --------------------------------------------------------------------------

  observation(): Observed {
    const sent = this.closeSent;
    const received = this.closeReceived;
    let closedBy: "fuzzer" | "peer";
    if (sent !== null && (received === null || this.closeSentFirst)) closedBy = "fuzzer";
    else if (received !== null) closedBy = "peer";
    else if (this.killedByFuzzer || this.violations.length > 0) closedBy = "fuzzer";
    else closedBy = "peer";
    const describe = (c: { code: number | null; reason: Buffer } | null): string | null => {
      if (c === null) return null;
      const reason =
        c.reason.length === 0
          ? ""
          : ` reason ${c.reason.length <= 40 ? JSON.stringify(c.reason.toString("utf8")) : `${c.reason.length} bytes`}`;
      return `${c.code ?? "(no code)"}${reason}`;
    };
    const events = this.events.slice(0, 40).map(describeEvent);
    if (this.events.length > 40) events.push(`... ${this.events.length - 40} more`);
    const trace = [...this.trace];
    if (this.traceDropped > 0) trace.push(`... ${this.traceDropped} more lines`);
    return {
      handshake: this.handshake,
      extensions: this.extensions,
      events,
      eventCount: this.events.length,
      closedBy,
      closeSent: describe(sent),
      closeReceived: describe(received),
      remoteCloseCode: received?.code ?? null,
      wasClean:
        sent !== null && received !== null && !this.killedByFuzzer && this.violations.length === 0,
      killed: this.killedByFuzzer,
      droppedByFuzzerClient: this.droppedByClient,
      tcpReset: this.tcpReset,
      violations: [...this.violations],
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      trace,
      notes: [
        ...this.notes,
        ...(this.deflate === null
          ? []
          : [
              `peer compressed ${this.peerCompressed} of ${this.peerMessages} messages (${this.peerPayloadBytes} payload bytes in ${this.peerWireBytes} frame bytes)`,
            ]),
      ],
    };
  }
}

function frameSummary(spec: FrameSpec): string {
  const names: Record<number, string> = {
    0: "continuation",
    1: "text",
    2: "binary",
    8: "close",
    9: "ping",
    10: "pong",
  };
  const len = bytes(spec.payload).length;
  const flags = [
    spec.fin === false ? "fin=0" : "",
    spec.rsv !== undefined && spec.rsv !== 0 ? `rsv=${spec.rsv}` : "",
  ].filter((s) => s !== "");
  return `${names[spec.opcode] ?? `opcode ${spec.opcode}`} frame, ${len} bytes${flags.length > 0 ? ` (${flags.join(", ")})` : ""}`;
}
