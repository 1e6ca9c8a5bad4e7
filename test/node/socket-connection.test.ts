/**
 * SocketConnection driven through a scripted socket: the test decides exactly when bytes, the
 * end of input ('end') and the socket's 'close' arrive, while the zlib codec works for real
 * (asynchronously). Order is what is checked: messages before `close`, replies before our Close
 * frame, our Close frame before the FIN.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { describe, it } from "node:test";
import { constants, deflateRawSync, inflateRawSync } from "node:zlib";
import { DeflateCodec } from "../../src/node/deflate-codec.js";
import { SocketConnection } from "../../src/node/socket-connection.js";
import { encodeFrame, Opcode } from "../../src/protocol/frame.js";
import { resolveLimits } from "../../src/protocol/limits.js";

const KEY = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
const NO_CONTEXT = {
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};

/** A stand-in for net.Socket: records writes and end(); events are emitted by the test. */
class ScriptedSocket extends EventEmitter {
  /** Everything written, with "FIN" where end() was called. */
  readonly log: (Buffer | "FIN")[] = [];
  destroyed = false;
  writableLength = 0;
  writableHighWaterMark = 16 * 1024;
  remoteAddress = "127.0.0.1";
  private paused = false;
  private ended = false;
  private onEnd: (() => void) | null = null;
  /** Resolves when end() is called. */
  readonly finished = new Promise<void>((resolve) => {
    this.onEnd = resolve;
  });
  setNoDelay(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  isPaused(): boolean {
    return this.paused;
  }
  cork(): void {}
  uncork(): void {}
  write(chunk: Uint8Array): boolean {
    assert.ok(!this.ended, "write after end()");
    this.log.push(Buffer.from(chunk));
    return true;
  }
  end(): this {
    if (!this.ended) {
      this.ended = true;
      this.log.push("FIN");
      this.onEnd?.();
    }
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

function connection(role: "server" | "client", socket: ScriptedSocket): SocketConnection {
  return new SocketConnection(socket as unknown as Socket, {
    role,
    limits: resolveLimits({}),
    protocol: "",
    extensions: "permessage-deflate",
    codec: new DeflateCodec({ role, ...NO_CONTEXT }),
    closeTimeoutMs: 60_000,
  });
}

/** A compressed, unmasked text frame as a server sends it. */
function compressedFromServer(text: string): Uint8Array {
  const deflated = deflateRawSync(Buffer.from(text), { finishFlush: constants.Z_SYNC_FLUSH });
  const payload = deflated.subarray(0, deflated.length - 4); // without 00 00 ff ff
  return encodeFrame({ opcode: Opcode.TEXT, payload, rsv1: true });
}

/** A frame as a client sends it (masked); compressed when `rsv1`. */
function fromClient(opcode: number, payload: Uint8Array, rsv1 = false): Uint8Array {
  return encodeFrame({ opcode, payload: payload.slice(), rsv1, mask: KEY });
}

function deflate(text: string): Uint8Array {
  const deflated = deflateRawSync(Buffer.from(text), { finishFlush: constants.Z_SYNC_FLUSH });
  return deflated.subarray(0, deflated.length - 4);
}

const CLOSE_1000 = new Uint8Array([0x03, 0xe8]);

/** Frames a server wrote (unmasked), compressed payloads inflated (no context takeover). */
function serverFrames(bytes: Buffer): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < bytes.length) {
    const b0 = bytes[at] ?? 0;
    const length = (bytes[at + 1] ?? 0) & 0x7f;
    assert.ok(length < 126, "short frames only in these tests");
    const payload = bytes.subarray(at + 2, at + 2 + length);
    at += 2 + length;
    const opcode = b0 & 0x0f;
    if (opcode === Opcode.CLOSE) out.push(`close ${payload.readUInt16BE(0)}`);
    else if ((b0 & 0x40) !== 0) {
      const text = inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), {
        finishFlush: constants.Z_SYNC_FLUSH,
      });
      out.push(`compressed ${text.toString()}`);
    } else out.push(`text ${payload.toString()}`);
  }
  return out;
}

/** What the socket saw: frames, then "FIN" where end() came. */
function transcript(socket: ScriptedSocket): string[] {
  const out: string[] = [];
  for (const entry of socket.log) {
    if (entry === "FIN") out.push("FIN");
    else out.push(...serverFrames(entry));
  }
  return out;
}

function closed(conn: SocketConnection, log: string[]): Promise<void> {
  return new Promise((resolve) =>
    conn.on("close", (code: number, _reason: string, wasClean: boolean) => {
      log.push(`close ${code} ${wasClean ? "clean" : "unclean"}`);
      resolve();
    }),
  );
}

describe("SocketConnection: TCP ending while the inflater is busy", () => {
  it("client: frames waiting for the inflater when TCP ends and closes are delivered before `close`", async () => {
    const socket = new ScriptedSocket();
    const conn = connection("client", socket);
    const log: string[] = [];
    conn.on("message", (data: Buffer) => log.push(`message ${data}`));
    const done = closed(conn, log);
    conn.send("a");
    conn.close(1000); // end of input in `duplex connect`: close right after the last send
    // The server's echoes and its Close arrive in one chunk, then its FIN, then the socket closes
    // (a client socket does not allow half-open connections), all before zlib answers.
    socket.emit(
      "data",
      Buffer.concat([
        compressedFromServer("a"),
        compressedFromServer("b"),
        encodeFrame({ opcode: Opcode.CLOSE, payload: CLOSE_1000 }),
      ]),
    );
    socket.emit("end");
    socket.destroyed = true;
    socket.emit("close");
    await done;
    assert.deepEqual(log, ["message a", "message b", "close 1000 clean"]);
  });

  it("server: a client that sends, closes and ends TCP at once still gets every reply, then the Close, then the FIN", async () => {
    const socket = new ScriptedSocket();
    const conn = connection("server", socket);
    const log: string[] = [];
    conn.on("message", (data: Buffer) => {
      log.push(`message ${data}`);
      conn.send(data.toString()); // an echo server
    });
    const done = closed(conn, log);
    socket.emit(
      "data",
      Buffer.concat([
        fromClient(Opcode.TEXT, deflate("one"), true),
        fromClient(Opcode.TEXT, deflate("two"), true),
        fromClient(Opcode.TEXT, Buffer.from("three")),
        fromClient(Opcode.CLOSE, CLOSE_1000),
      ]),
    );
    socket.emit("end");
    await socket.finished;
    assert.deepEqual(transcript(socket), [
      "compressed one",
      "compressed two",
      "compressed three",
      "close 1000",
      "FIN",
    ]);
    socket.destroyed = true;
    socket.emit("close");
    await done;
    assert.deepEqual(log, ["message one", "message two", "message three", "close 1000 clean"]);
  });
});

describe("SocketConnection: the server's Close reply and FIN after queued replies", () => {
  it("replies still in the compressor are written before the Close reply, and TCP ends after both", async () => {
    const socket = new ScriptedSocket();
    const conn = connection("server", socket);
    conn.on("message", (data: Buffer) => conn.send(`echo ${data}`));
    socket.emit(
      "data",
      Buffer.concat([
        fromClient(Opcode.TEXT, Buffer.from("a")),
        fromClient(Opcode.TEXT, Buffer.from("b")),
        fromClient(Opcode.CLOSE, CLOSE_1000),
      ]),
    );
    assert.equal(conn.readyState, 2, "CLOSING while the replies are compressed");
    await socket.finished;
    assert.deepEqual(transcript(socket), [
      "compressed echo a",
      "compressed echo b",
      "close 1000",
      "FIN",
    ]);
    const log: string[] = [];
    const done = closed(conn, log);
    socket.destroyed = true;
    socket.emit("close");
    await done;
    assert.deepEqual(log, ["close 1000 clean"]);
  });

  it("terminate() does not wait for the codec: `close` with 1006 once the socket closes", async () => {
    const socket = new ScriptedSocket();
    const conn = connection("server", socket);
    const log: string[] = [];
    conn.on("message", (data: Buffer) => log.push(`message ${data}`));
    const done = closed(conn, log);
    socket.emit("data", Buffer.from(fromClient(Opcode.TEXT, deflate("late"), true)));
    conn.terminate();
    assert.equal(socket.destroyed, true);
    socket.emit("close");
    await done;
    assert.deepEqual(log, ["close 1006 unclean"]);
  });
});
