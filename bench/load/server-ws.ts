/**
 * ws 8.x load-test server: `node --expose-gc server-ws.mjs <mode> <port>`. permessage-deflate
 * off (ws has no heartbeat unless the application writes one).
 *
 *   echo | idle | handshake   every message is sent back on its connection
 *   broadcast                 the README idiom: `for (const c of wss.clients) c.send(data)` (ws
 *                             frames the message once per recipient and writes it at once)
 *   broadcast-preframed       frame once with WebSocket.Sender.frame, then write the same bytes
 *                             to every client's socket, corked until the end of the tick (the
 *                             fastest thing an application can do with ws; what Duplex's
 *                             broadcast does internally)
 */
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { listeningPort, parseServerArgs, ready } from "./server-common.js";

const { mode, port } = parseServerArgs([
  "echo",
  "broadcast",
  "broadcast-preframed",
  "idle",
  "handshake",
]);

/**
 * `WebSocket.Sender` is attached by ws's CommonJS entry point (not by its ESM wrapper) and is
 * missing from @types/ws: take it from there, typed with the one function used.
 */
interface SenderStatic {
  frame(
    data: Buffer,
    options: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean },
  ): Buffer[];
}
const Sender = (createRequire(import.meta.url)("ws") as { Sender: SenderStatic }).Sender;

const wss = new WebSocketServer({ port, host: "127.0.0.1", perMessageDeflate: false }, () => {
  ready(listeningPort(wss.address(), port), () => ({
    clients: wss.clients.size,
  }));
});

if (mode === "broadcast") {
  wss.on("connection", (ws) => {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      for (const c of wss.clients) {
        if (c.readyState === WebSocket.OPEN) c.send(data, { binary: isBinary });
      }
    });
  });
} else if (mode === "broadcast-preframed") {
  const corked: Socket[] = [];
  const uncorkAll = (): void => {
    for (const s of corked) s.uncork();
    corked.length = 0;
  };
  wss.on("connection", (ws) => {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      const parts = Sender.frame(data, {
        fin: true,
        rsv1: false,
        opcode: isBinary ? 2 : 1,
        mask: false,
        readOnly: false,
      });
      const frame = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (corked.length === 0) process.nextTick(uncorkAll);
      for (const c of wss.clients) {
        if (c.readyState !== WebSocket.OPEN) continue;
        const socket = (c as unknown as { _socket: Socket })._socket;
        if (socket.writableCorked === 0) {
          socket.cork();
          corked.push(socket);
        }
        socket.write(frame);
      }
    });
  });
} else {
  wss.on("connection", (ws) => {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      ws.send(data, { binary: isBinary });
    });
  });
}
