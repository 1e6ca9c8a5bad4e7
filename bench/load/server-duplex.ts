/**
 * Duplex load-test server: `node --expose-gc server-duplex.mjs <mode> <port>` (the runner
 * bundles this file with esbuild first). Heartbeat off, permessage-deflate off.
 *
 *   echo | idle | handshake   every message is sent back on its connection
 *   broadcast                 every message is broadcast to all clients (WebSocketServer.broadcast:
 *                             framed once, the same bytes written to everyone)
 */
import { WebSocketServer } from "../../src/server/index.js";
import { listeningPort, parseServerArgs, ready } from "./server-common.js";

const { mode, port } = parseServerArgs(["echo", "broadcast", "idle", "handshake"]);

const server = new WebSocketServer(
  {
    port,
    host: "127.0.0.1",
    perMessageDeflate: false,
    pingIntervalMs: 0,
    // The loadgen reads as fast as it can; a closed loop bounds what is in flight. Keep the
    // slow-consumer policy out of the way so both servers do the same work.
    maxOutboundBytes: 256 * 1024 * 1024,
  },
  () => {
    ready(listeningPort(server.address(), port), () => ({
      clients: server.clients.size,
    }));
  },
);

if (mode === "broadcast") {
  server.on("connection", (conn) => {
    conn.on("message", (data: Buffer, isBinary: boolean) => {
      server.broadcast(data, undefined, { binary: isBinary });
    });
  });
} else {
  server.on("connection", (conn) => {
    conn.on("message", (data: Buffer, isBinary: boolean) => {
      conn.send(data, { binary: isBinary });
    });
  });
}
