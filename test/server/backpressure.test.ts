/**
 * Outbound backpressure: a reader that stops reading while the server sends 100 MiB. The
 * policy is applied, the server's memory stays bounded, and another client keeps its pace.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SendResult, WebSocketConnection } from "../../src/server/index.js";
import { rawClient, startServer, wsEcho } from "./helpers.js";

const CHUNK = Buffer.alloc(64 * 1024, 0x61);
const TOTAL = 100 * 1024 * 1024;
const LIMIT = 1024 * 1024;

async function flood(
  conn: WebSocketConnection,
): Promise<{ results: Record<SendResult, number>; maxBuffered: number }> {
  const results: Record<SendResult, number> = { sent: 0, queued: 0, dropped: 0 };
  let maxBuffered = 0;
  for (let sent = 0; sent < TOTAL; sent += CHUNK.length) {
    if (conn.readyState !== 1) break;
    results[conn.send(CHUNK)]++;
    maxBuffered = Math.max(maxBuffered, conn.bufferedAmount);
    if (sent % (4 * 1024 * 1024) === 0) await new Promise((r) => setImmediate(r));
  }
  return { results, maxBuffered };
}

describe("slow consumers", () => {
  it("policy close: the connection is closed with 1008, memory bounded, others unaffected", async () => {
    const { server, url, port } = await startServer({
      maxOutboundBytes: LIMIT,
      slowConsumerPolicy: "close",
    });
    server.on("connection", (c: WebSocketConnection) =>
      c.on("message", (d: Buffer) => c.send(d.toString())),
    );
    const conn = new Promise<WebSocketConnection>((resolve) => server.once("connection", resolve));
    const { socket } = await rawClient(port); // handshake done, then never reads
    const c = await conn;
    server.on("connection", (x: WebSocketConnection) =>
      x.on("message", (d: Buffer) => x.send(d.toString())),
    );
    const closed = new Promise<number>((resolve) => c.on("close", (code: number) => resolve(code)));
    const before = process.memoryUsage().arrayBuffers;
    const { results, maxBuffered } = await flood(c);
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.equal(results.dropped, 1, "exactly one send was refused, then the connection closed");
    assert.ok(maxBuffered <= LIMIT + CHUNK.length, `buffered ${maxBuffered} bytes`);
    assert.ok(
      grown < 32 * 1024 * 1024,
      `array buffers grew by ${grown} bytes while sending 100 MiB`,
    );
    assert.equal(await closed, 1008);
    assert.equal(await wsEcho(url, "still fast"), "still fast");
    socket.destroy();
    await server.close(100);
  });

  it("policy drop: messages beyond the limit are dropped, the connection stays open", async () => {
    const { server, url, port } = await startServer({
      maxOutboundBytes: LIMIT,
      slowConsumerPolicy: "drop",
    });
    const conn = new Promise<WebSocketConnection>((resolve) => server.once("connection", resolve));
    const { socket } = await rawClient(port);
    const c = await conn;
    server.on("connection", (x: WebSocketConnection) =>
      x.on("message", (d: Buffer) => x.send(d.toString())),
    );
    const { results, maxBuffered } = await flood(c);
    assert.ok(results.dropped > 1000, `dropped ${results.dropped}`);
    assert.ok(results.sent + results.queued > 0);
    assert.ok(maxBuffered <= LIMIT + CHUNK.length, `buffered ${maxBuffered} bytes`);
    assert.equal(c.readyState, 1, "still open");
    assert.equal(await wsEcho(url, "unaffected"), "unaffected");
    socket.destroy();
    await server.close(100);
  });
});

describe("slow consumers with compression", () => {
  it("data held by the compressor counts toward maxOutboundBytes", {
    timeout: 30_000,
  }, async () => {
    const { server, url } = await startServer({
      perMessageDeflate: true,
      maxOutboundBytes: LIMIT,
      slowConsumerPolicy: "drop",
    });
    const conn = new Promise<WebSocketConnection>((resolve) => server.once("connection", resolve));
    const { default: WebSocket } = await import("ws");
    const ws = new WebSocket(url, { perMessageDeflate: true });
    await new Promise((resolve) => ws.once("open", resolve));
    const c = await conn;
    const results: Record<SendResult, number> = { sent: 0, queued: 0, dropped: 0 };
    let maxBuffered = 0;
    // 200 x 64 KiB in one synchronous burst: the compressor answers asynchronously, so all of it
    // would wait in memory if held bytes were not counted.
    for (let i = 0; i < 200; i++) {
      results[c.send(CHUNK)]++;
      maxBuffered = Math.max(maxBuffered, c.bufferedAmount);
    }
    assert.ok(results.dropped > 100, `dropped ${results.dropped}`);
    assert.ok(maxBuffered <= LIMIT + CHUNK.length, `buffered ${maxBuffered} bytes`);
    ws.terminate();
    await server.close(100);
  });
});
