/**
 * The broadcast server `duplex bench` starts for its broadcast scenario, as a child process:
 * `node broadcast-server.js [--port N]`. Every message a connection sends is broadcast to all
 * the other connections with WebSocketServer.broadcast (framed once, the same bytes written to
 * everyone). Prints `duplex bench broadcast server listening on ws://127.0.0.1:PORT/` once
 * ready; exits on SIGTERM/SIGINT and when its standard input ends (the bench went away).
 */
import { type WebSocketConnection, WebSocketServer } from "../../server/index.js";

const portIndex = process.argv.indexOf("--port");
const port = portIndex === -1 ? 0 : Number(process.argv[portIndex + 1]);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write("usage: broadcast-server [--port N]\n");
  process.exit(2);
}

const server: WebSocketServer = new WebSocketServer(
  {
    port,
    host: "127.0.0.1",
    perMessageDeflate: false,
    // The bench keeps one broadcast in flight: nothing piles up. No heartbeat traffic either.
    pingIntervalMs: 0,
  },
  () => {
    const address = server.address();
    const actual = typeof address === "object" && address !== null ? address.port : port;
    process.stdout.write(`duplex bench broadcast server listening on ws://127.0.0.1:${actual}/\n`);
  },
);
server.on("error", (e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
server.on("connection", (conn: WebSocketConnection) => {
  conn.on("message", (data: Buffer, isBinary: boolean) => {
    server.broadcast(data, (c) => c !== conn, { binary: isBinary });
  });
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void server.close(1_000).finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
