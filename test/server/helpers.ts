/** Shared helpers for server tests on loopback. */
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import WebSocket from "ws";
import { type ServerOptions, WebSocketServer } from "../../src/server/index.js";

export async function startServer(
  options: Omit<ServerOptions, "port"> = {},
): Promise<{ server: WebSocketServer; url: string; port: number }> {
  const server = await new Promise<WebSocketServer>((resolve) => {
    const s: WebSocketServer = new WebSocketServer({ port: 0, ...options }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return { server, url: `ws://127.0.0.1:${port}`, port };
}

export function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
}

export const UPGRADE_REQUEST =
  "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/** A raw TCP client that completes the handshake and then does nothing unless told to. */
export async function rawClient(port: number): Promise<{ socket: net.Socket; head: Buffer }> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise((r) => socket.once("connect", r));
  socket.write(UPGRADE_REQUEST);
  let got = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      if (got.includes("\r\n\r\n")) {
        socket.off("data", onData);
        socket.pause();
        resolve();
      }
    };
    socket.on("data", onData);
  });
  return { socket, head: got };
}

export function wsEcho(url: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on("open", () => ws.send(text));
    ws.on("message", (d: Buffer) => {
      resolve(d.toString());
      ws.close();
    });
    ws.on("error", reject);
  });
}
