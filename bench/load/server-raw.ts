/**
 * Raw TCP echo (no WebSocket): the ceiling for the echo scenario. Whatever arrives is written
 * back as is; the loadgen (--raw) skips the handshake and parses its own masked frames.
 */
import * as net from "node:net";
import { listeningPort, parseServerArgs, ready } from "./server-common.js";

const { port } = parseServerArgs(["echo"]);

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on("data", (chunk) => socket.write(chunk));
  socket.on("error", () => {});
});
server.listen(port, "127.0.0.1", () => {
  ready(listeningPort(server.address(), port));
});
