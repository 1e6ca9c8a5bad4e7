/**
 * A deliberately broken WebSocket echo server for test/conformance/broken.test.ts: a minimal
 * raw-socket server (its own handshake and framing, nothing from src/) that is correct except
 * for two defects:
 *
 * 1. it accepts frames with RSV1/RSV2/RSV3 set (no extension was negotiated) and handles them as
 *    if the bits were clear;
 * 2. it never validates the UTF-8 of text messages: invalid text is echoed like valid text.
 *
 * Everything else follows RFC 6455: masking required, reserved opcodes and fragmented or
 * oversized control frames fail the connection with 1002, continuation rules, Ping → Pong,
 * close codes and close reasons (including their UTF-8) validated, the server closes TCP after
 * the closing handshake.
 */
import * as net from "node:net";
import type { ServerTarget } from "./suite.js";
import {
  acceptFor,
  encodeFrame,
  FrameReader,
  header,
  OP,
  parseHead,
  readHead,
  type WireFrame,
} from "./wire.js";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function validCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999)
  );
}

class BrokenConnection {
  private readonly socket: net.Socket;
  private readonly reader = new FrameReader(64 * 1024 * 1024);
  private messageOpcode = -1;
  private parts: Buffer[] = [];
  private closed = false;

  constructor(socket: net.Socket, rest: Buffer) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    if (rest.length > 0) this.receive(rest);
    socket.resume();
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    const frames = this.reader.push(chunk);
    if (typeof frames === "string") return this.fail(1009);
    for (const frame of frames) {
      if (this.closed) return;
      this.onFrame(frame);
    }
  }

  private onFrame(frame: WireFrame): void {
    // Defect 1: frame.rsv is never looked at.
    if (!frame.masked) return this.fail(1002);
    if (![0, 1, 2, 8, 9, 10].includes(frame.opcode)) return this.fail(1002);
    if (frame.opcode >= 8) {
      if (!frame.fin || frame.payload.length > 125) return this.fail(1002);
      if (frame.opcode === OP.PING) this.send(OP.PONG, frame.payload);
      else if (frame.opcode === OP.CLOSE) this.onClose(frame.payload);
      return;
    }
    if (frame.opcode === OP.CONTINUATION) {
      if (this.messageOpcode < 0) return this.fail(1002);
    } else {
      if (this.messageOpcode >= 0) return this.fail(1002);
      this.messageOpcode = frame.opcode;
      this.parts = [];
    }
    this.parts.push(frame.payload);
    if (!frame.fin) return;
    // Defect 2: text is echoed without checking that it is UTF-8.
    this.send(this.messageOpcode, Buffer.concat(this.parts));
    this.messageOpcode = -1;
    this.parts = [];
  }

  private onClose(payload: Buffer): void {
    if (payload.length === 1) return this.fail(1002);
    if (payload.length >= 2) {
      if (!validCloseCode(payload.readUInt16BE(0))) return this.fail(1002);
      try {
        strictUtf8.decode(payload.subarray(2));
      } catch {
        return this.fail(1007);
      }
    }
    this.send(OP.CLOSE, payload.subarray(0, Math.min(2, payload.length)));
    this.closed = true;
    this.socket.end();
  }

  private fail(code: number): void {
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code, 0);
    this.send(OP.CLOSE, body);
    this.closed = true;
    this.socket.end();
  }

  private send(opcode: number, payload: Buffer): void {
    if (!this.socket.writable) return;
    this.socket.write(encodeFrame({ opcode, payload }, false));
  }
}

/** Start the broken echo server on 127.0.0.1:0. */
export async function startBrokenServer(): Promise<ServerTarget> {
  const server = net.createServer(async (socket) => {
    socket.on("error", () => {});
    let head: string;
    let rest: Buffer;
    try {
      ({ head, rest } = await readHead(socket));
    } catch {
      socket.destroy();
      return;
    }
    const parsed = parseHead(head);
    const key = parsed === null ? undefined : header(parsed, "sec-websocket-key");
    if (
      parsed === null ||
      key === undefined ||
      header(parsed, "upgrade")?.toLowerCase() !== "websocket"
    ) {
      socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`,
    );
    new BrokenConnection(socket, rest);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    host: "127.0.0.1",
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}
