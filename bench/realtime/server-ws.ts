/**
 * The plain `ws` realtime server for `npm run bench:realtime`:
 * `node --expose-gc server-ws.mjs naive <port>` (bundled by the runner with esbuild).
 *
 * What people write with ws: JSON commands `{"type":"subscribe","channel"}` (acknowledged with
 * `{"type":"subscribed","channel"}` so the load generator knows when it is in) and
 * `{"type":"publish","channel","data"}`; a `Map<channel, Set<ws>>`; every publish is serialised
 * once and sent to each subscriber. No slow-consumer handling: a subscriber that stops reading
 * keeps everything sent to it in memory (the point of the comparison). permessage-deflate off.
 */
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import { heapSpaces, parseServerArgs, ready } from "../load/server-common.js";

const { port } = parseServerArgs(["naive"]);

const channels = new Map<string, Set<WebSocket>>();

const wss = new WebSocketServer({ port, host: "127.0.0.1", perMessageDeflate: false }, () => {
  ready((wss.address() as AddressInfo).port, () => {
    let queuedBytes = 0;
    for (const c of wss.clients) queuedBytes += c.bufferedAmount;
    return { connections: wss.clients.size, queuedBytes, ...heapSpaces() };
  });
});

wss.on("connection", (ws) => {
  const mine = new Set<string>();
  ws.on("message", (raw) => {
    let msg: { type?: unknown; channel?: unknown; data?: unknown };
    try {
      msg = JSON.parse(raw.toString()) as typeof msg;
    } catch {
      return;
    }
    if (typeof msg.channel !== "string") return;
    const channel = msg.channel;
    if (msg.type === "subscribe") {
      let subs = channels.get(channel);
      if (subs === undefined) {
        subs = new Set();
        channels.set(channel, subs);
      }
      subs.add(ws);
      mine.add(channel);
      ws.send(JSON.stringify({ type: "subscribed", channel }));
    } else if (msg.type === "publish") {
      const subs = channels.get(channel);
      if (subs === undefined) return;
      const text = JSON.stringify({ type: "pub", channel, data: msg.data });
      for (const c of subs) c.send(text);
    }
  });
  ws.on("close", () => {
    for (const channel of mine) {
      const subs = channels.get(channel);
      subs?.delete(ws);
      if (subs?.size === 0) channels.delete(channel);
    }
  });
});
